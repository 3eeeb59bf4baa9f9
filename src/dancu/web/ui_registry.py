"""Pages of the register: search, the citizen page, birth and death registration.

Reading a person's data needs a stated purpose: the search form asks for one, result links
carry it, and a citizen page opened without one asks first (and shows nothing until then).
Action forms show only the personal ID and the version the official read, so opening a form
is not a read; the change then redirects to the citizen page, which is.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from dancu.errors import ValidationFailed
from dancu.officials import flows, purposes, records
from dancu.officials.policy import Action
from dancu.web import i18n
from dancu.web.deps import Authorize, DbSession, Principal
from dancu.web.ui import Form, PageRoute, attempt, locale_of, render, url

router = APIRouter(route_class=PageRoute, include_in_schema=False)

# The notice a page shows after a change, by the ``done`` query parameter.
DONE = {
    "birth": "birth.done",
    "death": "death.done",
    "move": "move.done",
    "temporary": "temporary.done",
    "split": "split.done",
    "head": "head.done",
    "correct": "correct.done",
    "duplicate": "dup.decided",
}
PAGE_SIZE = 20


def as_(action: Action) -> object:
    return Depends(Authorize(action))


def notice(request: Request, done: str | None) -> str | None:
    return i18n.translator(locale_of(request))(DONE[done]) if done in DONE else None


def citizen_url(personal_id: str, purpose: str, done: str | None = None) -> str:
    return url(f"/registry/citizens/{personal_id}", purpose=purpose, done=done)


def unread(personal_id: str, version: str | None) -> Response | None:
    """A change form opened without the record version read (a typed or stale address)
    goes back through the citizen's page, whose links carry the version, instead of showing a
    form that could only be refused."""
    if version is not None and version.isdigit():
        return None
    return RedirectResponse(url(f"/registry/citizens/{personal_id}"), 303)


@router.get("/registry")
def search_page(
    request: Request,
    session: DbSession,
    me: Annotated[Principal, as_(Action.SEARCH)],
    q: str | None = None,
    birth_year: str | None = None,
    commune_code: str | None = None,
    purpose: str | None = None,
    purpose_note: str | None = None,
    offset: int = 0,
) -> Response:
    values = {
        "q": q or "",
        "birth_year": birth_year or "",
        "commune_code": commune_code or "",
        "purpose": purpose or "",
        "purpose_note": purpose_note or "",
    }
    form = Form(values)
    page = None
    searched = any((q, birth_year, commune_code))
    if searched:
        try:
            stated = purposes.stated(purpose, purpose_note)
            page = flows.search(
                session,
                me.actor("web"),
                flows.SearchQuery(q, birth_year, commune_code, PAGE_SIZE, max(offset, 0)),
                stated,
            )
        except ValidationFailed as exc:
            form.refuse(exc)
    params = {k: v for k, v in values.items() if v}
    return render(
        request,
        "search.html",
        status=form.status,
        me=me,
        form=form,
        page=page,
        params=params,
        searched=searched,
    )


@router.get("/registry/citizens/{personal_id}")
def citizen_page(
    request: Request,
    personal_id: str,
    session: DbSession,
    me: Annotated[Principal, as_(Action.READ_CITIZEN)],
    purpose: str | None = None,
    purpose_note: str | None = None,
    done: str | None = None,
    changes: int = 0,
) -> Response:
    form = Form({"purpose": purpose or "", "purpose_note": purpose_note or ""})
    try:
        stated = purposes.stated(purpose, purpose_note)
    except ValidationFailed as exc:
        if purpose:
            form.refuse(exc)
        return render(
            request,
            "purpose.html",
            status=form.status,
            me=me,
            form=form,
            personal_id=personal_id,
        )
    view = flows.read_citizen(
        session, me.actor("web"), personal_id, stated, timeline_offset=max(changes, 0)
    )
    return render(
        request,
        "citizen.html",
        me=me,
        view=view,
        purpose=purpose,
        purpose_note=purpose_note,
        notice=notice(request, done),
        page_size=records.TIMELINE_PAGE,
    )


_BIRTH_FIELDS = tuple(flows.BirthForm.__dataclass_fields__)


@router.get("/registry/births/new")
def birth_page(
    request: Request,
    me: Annotated[Principal, as_(Action.REGISTER_BIRTH)],
    household_code: str | None = None,
    father_id: str | None = None,
    mother_id: str | None = None,
) -> Response:
    defaults = {
        "household_code": household_code or "",
        "father_id": father_id or "",
        "mother_id": mother_id or "",
        "permanent_commune_code": me.unit_code if me.scope.level == "commune" else "",
        "relationship_to_head": "child",
    }
    return render(request, "birth.html", me=me, form=Form(defaults))


@router.post("/registry/births/new")
async def birth_submit(
    request: Request,
    session: DbSession,
    me: Annotated[Principal, as_(Action.REGISTER_BIRTH)],
) -> Response:
    form = await Form.read(request)
    values = {name: form.get(name) or None for name in _BIRTH_FIELDS}
    with attempt(session, form):
        child = flows.register_birth(session, me.actor("web"), flows.BirthForm(**values))
    if form.invalid:
        return render(request, "birth.html", status=form.status, me=me, form=form)
    return RedirectResponse(citizen_url(child.personal_id, "civil_status", "birth"), 303)


@router.get("/registry/citizens/{personal_id}/death")
def death_page(
    request: Request,
    personal_id: str,
    me: Annotated[Principal, as_(Action.RECORD_DEATH)],
    version: str | None = None,
) -> Response:
    if (back := unread(personal_id, version)) is not None:
        return back
    form = Form({"version": version or ""})
    return render(request, "death.html", me=me, form=form, personal_id=personal_id)


@router.post("/registry/citizens/{personal_id}/death")
async def death_submit(
    request: Request,
    personal_id: str,
    session: DbSession,
    me: Annotated[Principal, as_(Action.RECORD_DEATH)],
) -> Response:
    form = await Form.read(request)
    with attempt(session, form):
        flows.record_death(
            session,
            me.actor("web"),
            personal_id,
            death_date=form.get("death_date"),
            legal_basis=form.get("legal_basis"),
            version=form.get("version") or None,
        )
    if form.invalid:
        return render(
            request, "death.html", status=form.status, me=me, form=form, personal_id=personal_id
        )
    return RedirectResponse(citizen_url(personal_id, "civil_status", "death"), 303)
