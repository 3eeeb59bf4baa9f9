"""Pages of duplicate review, the data-quality dashboard and the auditors' access log."""

from __future__ import annotations

import json
from typing import Annotated

import plotly.graph_objects as go
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from dancu.errors import Problem, ValidationFailed
from dancu.officials import review
from dancu.officials.policy import Action
from dancu.registry import quality
from dancu.web.deps import DbSession, Principal
from dancu.web.ui import Form, PageRoute, attempt, locale_of, render, url
from dancu.web.ui_registry import as_, notice

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PAGE_SIZE = 50


@router.get("/registry/duplicates")
def duplicates_page(
    request: Request,
    session: DbSession,
    me: Annotated[Principal, as_(Action.READ_DUPLICATES)],
    offset: int = 0,
    done: str | None = None,
) -> Response:
    page = review.list_duplicates(session, me.actor("web"), limit=PAGE_SIZE, offset=max(offset, 0))
    return render(request, "duplicates.html", me=me, page=page, notice=notice(request, done))


def _compare(
    request: Request,
    session: DbSession,
    me: Principal,
    candidate_id: str,
    form: Form,
    decided: str | None = None,
) -> Response:
    """The pair side by side; ``decided`` names the refused form ("dismiss", "merge")."""
    found = review.compare(session, me.actor("web"), candidate_id)
    return render(
        request,
        "duplicate.html",
        status=form.status,
        me=me,
        found=found,
        form=form,
        decided=decided,
    )


@router.get("/registry/duplicates/{candidate_id}")
def duplicate_page(
    request: Request,
    candidate_id: str,
    session: DbSession,
    me: Annotated[Principal, as_(Action.READ_DUPLICATES)],
) -> Response:
    return _compare(request, session, me, candidate_id, Form())


@router.post("/registry/duplicates/{candidate_id}/dismiss")
async def duplicate_dismiss(
    request: Request,
    candidate_id: str,
    session: DbSession,
    me: Annotated[Principal, as_(Action.RESOLVE_DUPLICATE)],
) -> Response:
    form = await Form.read(request)
    with attempt(session, form):
        review.dismiss(session, me.actor("web"), candidate_id, reason=form.get("reason"))
    if form.invalid:
        return _compare(request, session, me, candidate_id, form, "dismiss")
    return RedirectResponse(url("/registry/duplicates", done="duplicate"), 303)


@router.post("/registry/duplicates/{candidate_id}/merge")
async def duplicate_merge(
    request: Request,
    candidate_id: str,
    session: DbSession,
    me: Annotated[Principal, as_(Action.RESOLVE_DUPLICATE)],
) -> Response:
    form = await Form.read(request)
    versions: dict[str, str | int] = {
        key[2:]: value for key, value in form.values.items() if key.startswith("v_") and value
    }
    with attempt(session, form):
        review.merge_pair(
            session,
            me.actor("web"),
            candidate_id,
            keep_id=form.get("keep_id"),
            reason=form.get("reason"),
            versions=versions,
        )
    if form.invalid:
        return _compare(request, session, me, candidate_id, form, "merge")
    return RedirectResponse(url("/registry/duplicates", done="duplicate"), 303)


def _chart(overview: quality.QualityOverview, locale: str) -> str:
    """The counts per commune as a stacked bar chart (plotly figure JSON, safe in a script)."""
    index = 0 if locale == "vi" else 1
    names = [c.commune_name for c in overview.communes if c.people]
    figure = go.Figure(
        data=[
            go.Bar(
                name=quality.LABELS[kind][index],
                x=names,
                y=[c.counts[kind] for c in overview.communes if c.people],
            )
            for kind in quality.KINDS
        ],
        layout=go.Layout(
            barmode="stack",
            margin={"l": 40, "r": 10, "t": 10, "b": 120},
            legend={"orientation": "h", "y": -0.35},
            height=460,
        ),
    )
    return str(figure.to_json()).replace("</", "<\\/")


@router.get("/registry/quality")
def quality_page(
    request: Request,
    session: DbSession,
    me: Annotated[Principal, as_(Action.READ_QUALITY)],
) -> Response:
    overview = review.quality_overview(session, me.actor("web"))
    locale = locale_of(request)
    index = 0 if locale == "vi" else 1
    return render(
        request,
        "quality.html",
        me=me,
        overview=overview,
        kinds=[(kind, quality.LABELS[kind][index]) for kind in quality.KINDS],
        chart=_chart(overview, locale),
    )


@router.get("/registry/quality/findings")
def findings_page(
    request: Request,
    session: DbSession,
    me: Annotated[Principal, as_(Action.READ_QUALITY)],
    kind: str = "",
    commune_code: str | None = None,
    offset: int = 0,
) -> Response:
    page = review.quality_findings(
        session,
        me.actor("web"),
        kind,
        commune_code,
        limit=PAGE_SIZE,
        offset=max(offset, 0),
    )
    index = 0 if locale_of(request) == "vi" else 1
    return render(
        request,
        "findings.html",
        me=me,
        page=page,
        label=quality.LABELS[kind][index],
        params={"kind": kind, "commune_code": commune_code or ""},
        purpose=review.QUALITY_PURPOSE,
    )


@router.get("/audit")
def access_log_page(
    request: Request,
    session: DbSession,
    me: Annotated[Principal, as_(Action.READ_ACCESS_LOG)],
    personal_id: str | None = None,
    organization: str | None = None,
    actor: str | None = None,
    since: str | None = None,
    until: str | None = None,
    offset: int = 0,
) -> Response:
    values = {
        "personal_id": personal_id or "",
        "organization": organization or "",
        "actor": actor or "",
        "since": since or "",
        "until": until or "",
    }
    form = Form(values)
    page = None
    if personal_id or organization or actor:
        query = review.AccessQuery(
            personal_id, organization, actor, since, until, PAGE_SIZE, max(offset, 0)
        )
        try:
            page = review.access_log(session, me.actor("web"), query)
        except ValidationFailed as exc:
            form.refuse(exc)
    elif request.query_params:
        # Submitted without any of the three: the log is searched by one of its indexes only.
        need = "give a personal ID, an organisation or a reader"
        fields = ("personal_id", "actor", "organization")
        form.refuse(ValidationFailed(need, [Problem(None, f, need) for f in fields]))
    return render(
        request,
        "access_log.html",
        status=form.status,
        me=me,
        form=form,
        page=page,
        params={k: v for k, v in values.items() if v},
        dumps=json.dumps,
    )
