"""The back office's JSON API, ``/api/v1/registry``: the same flows as the pages.

Authentication is the pages' session cookie (sign in through ``/login``); unsafe methods
also need the ``X-CSRF-Token`` header, whose value ``GET /api/v1/registry/session`` returns.
Every read of a person's data states a ``purpose`` (a code of ``officials.purposes``) and is
written to the access log before the answer leaves. docs/backoffice.md has examples.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from dancu.officials import flows, purposes, records, residence_flows, review, schemas
from dancu.officials import service as officials
from dancu.officials.policy import Action
from dancu.registry import workflows
from dancu.registry.models import Citizen, CivilEvent, DuplicateCandidate, Residence
from dancu.web.deps import Authorize, DbSession, Principal, session_cookie, settings_of
from dancu.web.errors import ApiRoute

PREFIX = "/api/v1/registry"
router = APIRouter(prefix=PREFIX, route_class=ApiRoute, tags=["registry (officials)"])

Purpose = Annotated[str | None, Query(description="why: " + ", ".join(purposes.PURPOSES))]
PurposeNote = Annotated[str | None, Query(description="optional: a dossier number, a note")]


def _as(action: Action) -> Any:
    return Depends(Authorize(action))


def _residence(r: Residence) -> dict[str, Any]:
    return {
        "kind": r.kind,
        "commune_code": r.commune_code,
        "address": r.address,
        "household_code": r.household_code,
        "valid_from": r.valid_from,
        "valid_to": r.valid_to,
        "ended_at": r.ended_at,
    }


def _event(e: CivilEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "kind": e.kind,
        "personal_id": e.personal_id,
        "other_personal_id": e.other_personal_id,
        "event_date": e.event_date,
        "recorded_at": e.recorded_at,
        "actor": e.actor,
        "legal_basis": e.legal_basis,
    }


def citizen_detail(view: records.CitizenView) -> dict[str, Any]:
    """The citizen detail document (the citizen page's content, as JSON)."""
    household = view.household
    record = {
        **view.record,
        "birth_date": records.birth_date_text(
            view.citizen.birth_date, view.citizen.birth_date_precision
        ),
    }
    return encoded(
        {
            "record": record,
            "version": view.citizen.version,
            "commune_name": view.commune_name,
            "merged_into": view.merged_into,
            "findings": view.findings,
            "household": None
            if household is None
            else {
                "code": household.code,
                "head_id": household.head_id,
                "commune_code": household.commune_code,
                "address": household.address,
                "members": [
                    {
                        **vars_of(m),
                        "birth_date": records.birth_date_text(m.birth_date, m.birth_date_precision),
                    }
                    for m in household.members
                ],
            },
            "residences": [_residence(r) for r in view.residences],
            "timeline": [vars_of(c) for c in view.timeline],
            "timeline_offset": view.timeline_offset,
            "timeline_next": view.timeline_offset + len(view.timeline)
            if view.timeline_more
            else None,
            "events": [_event(e) for e in view.events],
            "open_duplicates": [
                {"id": d.id, "other_id": _other(d, view.citizen.personal_id), "reason": d.reason}
                for d in view.open_duplicates
            ],
        }
    )


def encoded(document: dict[str, Any]) -> dict[str, Any]:
    """Dates and times as ISO text."""
    result: dict[str, Any] = jsonable_encoder(document)
    return result


def _other(candidate: DuplicateCandidate, personal_id: str) -> str:
    if candidate.personal_id_a == personal_id:
        return candidate.personal_id_b
    return candidate.personal_id_a


def vars_of(item: Any) -> dict[str, Any]:
    return {name: getattr(item, name) for name in item.__slots__}


def _changed(citizen: Citizen, status: int = 200) -> Response:
    """What a change answers: the identifiers and the new version, no personal data."""
    body = {
        "personal_id": citizen.personal_id,
        "household_code": citizen.household_code,
        "status": citizen.status,
        "version": citizen.version,
    }
    return JSONResponse(body, status_code=status)


@router.get("/session", summary="Who is signed in, and the CSRF token for unsafe methods")
def get_session(me: Annotated[Principal, _as(Action.OWN_ACCOUNT)]) -> dict[str, Any]:
    return {
        "username": me.username,
        "full_name": me.full_name,
        "role": me.role,
        "unit_code": me.unit_code,
        "organization": me.organization,
        "csrf_token": me.csrf_token,
    }


@router.post("/session/revoke-all", status_code=204, summary="Sign out on every device")
def revoke_all(
    request: Request, session: DbSession, me: Annotated[Principal, _as(Action.OWN_ACCOUNT)]
) -> Response:
    officials.sign_out_everywhere(session, me.official_id)
    response = Response(status_code=204)
    response.delete_cookie(session_cookie(settings_of(request)), path="/")
    return response


@router.get("/citizens", summary="Search citizens in your unit (a read: purpose required)")
def search_citizens(
    request: Request,
    session: DbSession,
    me: Annotated[Principal, _as(Action.SEARCH)],
    purpose: Purpose = None,
    purpose_note: PurposeNote = None,
    q: Annotated[str | None, Query(description="ID number, legacy number or name")] = None,
    birth_year: str | None = None,
    commune_code: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    stated = purposes.stated(purpose, purpose_note)
    page = flows.search(
        session,
        me.actor("api"),
        flows.SearchQuery(q, birth_year, commune_code, limit, offset),
        stated,
    )
    following = _next(request, page.has_more, offset, limit)
    return encoded(
        {
            "items": [records.summary(c) for c in page.items],
            "limit": page.limit,
            "offset": page.offset,
            "next": following,
        }
    )


@router.get("/citizens/{personal_id}", summary="A citizen's record, household, history")
def get_citizen(
    personal_id: str,
    session: DbSession,
    me: Annotated[Principal, _as(Action.READ_CITIZEN)],
    purpose: Purpose = None,
    purpose_note: PurposeNote = None,
    timeline_offset: Annotated[
        int, Query(ge=0, description="skip this many changes (newest first)")
    ] = 0,
) -> dict[str, Any]:
    stated = purposes.stated(purpose, purpose_note)
    view = flows.read_citizen(
        session, me.actor("api"), personal_id, stated, timeline_offset=timeline_offset
    )
    return citizen_detail(view)


@router.post("/births", status_code=201, summary="Register a birth (allocates the ID number)")
def register_birth(
    body: schemas.BirthCreate,
    session: DbSession,
    me: Annotated[Principal, _as(Action.REGISTER_BIRTH)],
) -> Response:
    child = flows.register_birth(session, me.actor("api"), flows.BirthForm(**body.model_dump()))
    return _changed(child, 201)


@router.post("/citizens/{personal_id}/death", summary="Record a death")
def record_death(
    personal_id: str,
    body: schemas.DeathCreate,
    session: DbSession,
    me: Annotated[Principal, _as(Action.RECORD_DEATH)],
) -> Response:
    person = flows.record_death(
        session,
        me.actor("api"),
        personal_id,
        death_date=body.death_date,
        legal_basis=body.legal_basis,
        version=body.version,
    )
    return _changed(person)


def _changes(changes: workflows.Changes) -> Response:
    """What a residence or household change answers: who and what changed, new versions."""
    body = {
        "citizens": [
            {"personal_id": c.personal_id, "household_code": c.household_code, "version": c.version}
            for c in dict.fromkeys(changes.citizens)
        ],
        "households": sorted({h.code for h in changes.households}),
    }
    return JSONResponse(body)


def _why(body: schemas.Why) -> residence_flows.Why:
    return residence_flows.Why(body.reason, body.legal_basis)


@router.post("/citizens/{personal_id}/permanent-residence", summary="Move (permanent residence)")
def change_permanent_residence(
    personal_id: str,
    body: schemas.ResidenceChange,
    session: DbSession,
    me: Annotated[Principal, _as(Action.CHANGE_RESIDENCE)],
) -> Response:
    form = residence_flows.MoveForm(
        body.commune_code,
        body.address,
        body.household_code,
        body.relationship_to_head,
        body.moved_on,
        body.version,
        _why(body),
    )
    return _changes(residence_flows.change_residence(session, me.actor("api"), personal_id, form))


@router.post("/households/{household_code}/move", summary="Move a whole household")
def move_household(
    household_code: str,
    body: schemas.HouseholdMove,
    session: DbSession,
    me: Annotated[Principal, _as(Action.CHANGE_RESIDENCE)],
) -> Response:
    form = residence_flows.HouseholdMoveForm(
        body.commune_code, body.address, body.moved_on, dict(body.versions), _why(body)
    )
    return _changes(residence_flows.move_household(session, me.actor("api"), household_code, form))


@router.post("/citizens/{personal_id}/temporary-residence", summary="Register a stay (tạm trú)")
def register_temporary_residence(
    personal_id: str,
    body: schemas.TemporaryResidenceCreate,
    session: DbSession,
    me: Annotated[Principal, _as(Action.TEMPORARY_RESIDENCE)],
) -> Response:
    form = residence_flows.TemporaryForm(
        body.commune_code, body.address, body.valid_from, body.valid_until, body.version, _why(body)
    )
    return _changes(
        residence_flows.register_temporary_residence(session, me.actor("api"), personal_id, form)
    )


@router.post("/households/{household_code}/split", summary="Split a household")
def split_household(
    household_code: str,
    body: schemas.HouseholdSplit,
    session: DbSession,
    me: Annotated[Principal, _as(Action.SPLIT_HOUSEHOLD)],
) -> Response:
    form = residence_flows.SplitForm(
        body.new_head_id,
        dict(body.members),
        body.address,
        body.split_on,
        dict(body.versions),
        _why(body),
    )
    return _changes(residence_flows.split_household(session, me.actor("api"), household_code, form))


@router.post("/households/{household_code}/head", summary="Change the head of a household")
def change_head(
    household_code: str,
    body: schemas.HeadChange,
    session: DbSession,
    me: Annotated[Principal, _as(Action.CHANGE_HEAD)],
) -> Response:
    form = residence_flows.HeadForm(
        body.new_head_id, dict(body.relationships), dict(body.versions), _why(body)
    )
    return _changes(residence_flows.change_head(session, me.actor("api"), household_code, form))


@router.post("/citizens/{personal_id}/corrections", summary="Correct a field (reason, legal basis)")
def correct_field(
    personal_id: str,
    body: schemas.FieldCorrection,
    session: DbSession,
    me: Annotated[Principal, _as(Action.CORRECT_FIELD)],
) -> Response:
    person = flows.correct_field(
        session,
        me.actor("api"),
        personal_id,
        field=body.field,
        value=body.value,
        reason=body.reason,
        legal_basis=body.legal_basis,
        version=body.version,
    )
    return _changed(person)


def _next(request: Request, page_has_more: bool, offset: int, limit: int) -> str | None:
    if not page_has_more:
        return None
    params = {k: v for k, v in request.query_params.items() if k != "offset"}
    params["offset"] = str(offset + limit)
    return f"{request.url.path}?{urlencode(params)}"


@router.get("/duplicates", summary="Open duplicate candidates in your unit")
def list_duplicates(
    request: Request,
    session: DbSession,
    me: Annotated[Principal, _as(Action.READ_DUPLICATES)],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    page = review.list_duplicates(session, me.actor("api"), limit=limit, offset=offset)
    return encoded(
        {
            "items": [
                {
                    "id": c.id,
                    "personal_id_a": c.personal_id_a,
                    "personal_id_b": c.personal_id_b,
                    "reason": c.reason,
                    "found_at": c.found_at,
                }
                for c in page.items
            ],
            "limit": limit,
            "offset": offset,
            "next": _next(request, page.has_more, offset, limit),
        }
    )


@router.get("/duplicates/{candidate_id}", summary="Two records side by side (a logged read)")
def compare_duplicates(
    candidate_id: str,
    session: DbSession,
    me: Annotated[Principal, _as(Action.READ_DUPLICATES)],
) -> dict[str, Any]:
    found = review.compare(session, me.actor("api"), candidate_id)
    return encoded(
        {
            "id": found.candidate.id,
            "reason": found.candidate.reason,
            "status": found.candidate.status,
            "fields": [vars_of(row) for row in found.rows],
            "versions": {
                found.left.personal_id: found.left.version,
                found.right.personal_id: found.right.version,
            },
        }
    )


@router.post("/duplicates/{candidate_id}/dismiss", summary='"Not the same person"')
def dismiss_duplicate(
    candidate_id: str,
    body: schemas.DuplicateDismissal,
    session: DbSession,
    me: Annotated[Principal, _as(Action.RESOLVE_DUPLICATE)],
) -> dict[str, Any]:
    row = review.dismiss(session, me.actor("api"), candidate_id, reason=body.reason)
    return {"id": row.id, "status": row.status}


@router.post("/duplicates/{candidate_id}/merge", summary="Merge the pair into keep_id")
def merge_duplicate(
    candidate_id: str,
    body: schemas.DuplicateMerge,
    session: DbSession,
    me: Annotated[Principal, _as(Action.RESOLVE_DUPLICATE)],
) -> Response:
    kept = review.merge_pair(
        session,
        me.actor("api"),
        candidate_id,
        keep_id=body.keep_id,
        reason=body.reason,
        versions=dict(body.versions),
    )
    return _changed(kept)


@router.get("/quality", summary="Data quality of your unit, per commune (counts only)")
def quality_overview(
    session: DbSession, me: Annotated[Principal, _as(Action.READ_QUALITY)]
) -> dict[str, Any]:
    found = review.quality_overview(session, me.actor("api"))
    return encoded(
        {
            "unit": found.scope.unit_code,
            "refreshed_at": found.refreshed_at,
            "live": found.live,
            "people": found.people,
            "completeness": round(found.completeness, 4),
            "totals": found.totals,
            "communes": [
                {
                    "commune_code": c.commune_code,
                    "commune_name": c.commune_name,
                    "people": c.people,
                    "alive": c.alive,
                    "completeness": round(c.completeness, 4),
                    "counts": c.counts,
                }
                for c in found.communes
            ],
        }
    )


@router.get("/quality/findings", summary="The people behind a quality count (logged reads)")
def quality_findings(
    request: Request,
    session: DbSession,
    me: Annotated[Principal, _as(Action.READ_QUALITY)],
    kind: str,
    commune_code: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    page = review.quality_findings(
        session, me.actor("api"), kind, commune_code, limit=limit, offset=offset
    )
    return encoded(
        {
            "kind": kind,
            "items": [{**records.summary(f.person), "detail": f.detail} for f in page.items],
            "limit": limit,
            "offset": offset,
            "next": _next(request, page.has_more, offset, limit),
        }
    )


@router.get("/access-log", summary="Who read whose data (auditors)")
def access_log(
    request: Request,
    session: DbSession,
    me: Annotated[Principal, _as(Action.READ_ACCESS_LOG)],
    personal_id: str | None = None,
    organization: str | None = None,
    actor: str | None = None,
    since: Annotated[str | None, Query(description="YYYY-MM-DD")] = None,
    until: Annotated[str | None, Query(description="YYYY-MM-DD, included")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    query = review.AccessQuery(personal_id, organization, actor, since, until, limit, offset)
    page = review.access_log(session, me.actor("api"), query)
    return encoded(
        {
            "items": [
                {
                    "id": e.id,
                    "item": e.item,
                    "occurred_at": e.occurred_at,
                    "actor": e.actor,
                    "actor_kind": e.actor_kind,
                    "organization": e.organization,
                    "personal_id": e.personal_id,
                    "fields": e.fields,
                    "purpose": e.purpose,
                    "channel": e.channel,
                }
                for e in page.items
            ],
            "limit": limit,
            "offset": offset,
            "next": _next(request, page.has_more, offset, limit),
        }
    )
