"""Pages of the administrators: officials of their unit, add, deactivate, reset enrolment.

A new or reset official's enrolment link is shown once, on the page that answers the form,
and stored only as a hash: the administrator hands it over on a safe channel.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from dancu.enums import OfficialRole
from dancu.officials import admin
from dancu.officials import service as officials
from dancu.officials.policy import Action
from dancu.web import i18n
from dancu.web.deps import DbSession, Principal, settings_of
from dancu.web.ui import Form, PageRoute, attempt, locale_of, render, url
from dancu.web.ui_registry import as_

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PAGE_SIZE = 50


def _page(
    request: Request,
    session: DbSession,
    me: Principal,
    form: Form,
    *,
    offset: int = 0,
    link: str | None = None,
    linked: str | None = None,
) -> Response:
    rows, more = admin.list_managed(session, me.actor("web"), limit=PAGE_SIZE, offset=offset)
    t = i18n.translator(locale_of(request))
    return render(
        request,
        "officials.html",
        status=form.status,
        me=me,
        form=form,
        officials=rows,
        more=more,
        offset=offset,
        roles=[(role.value, t(f"role.{role.value}")) for role in OfficialRole],
        link=link,
        linked=linked,
    )


@router.get("/admin/officials")
def officials_page(
    request: Request,
    session: DbSession,
    me: Annotated[Principal, as_(Action.MANAGE_OFFICIALS)],
    offset: int = 0,
) -> Response:
    return _page(request, session, me, Form({"unit": me.unit_code}), offset=max(offset, 0))


@router.post("/admin/officials")
async def official_add(
    request: Request,
    session: DbSession,
    me: Annotated[Principal, as_(Action.MANAGE_OFFICIALS)],
) -> Response:
    form = await Form.read(request)
    settings = settings_of(request)
    link = None
    with attempt(session, form):
        enrolment = admin.add(
            session,
            settings,
            me.actor("web"),
            username=form.get("username"),
            role=form.get("role"),
            unit_code=form.get("unit"),
            full_name=form.get("full_name") or None,
        )
        link = officials.enrolment_link(settings, enrolment.token)
    if form.invalid or link is None:
        return _page(request, session, me, form)
    return _page(request, session, me, Form({"unit": me.unit_code}), link=link,
                 linked=form.get("username").strip().lower())  # fmt: skip


@router.post("/admin/officials/{official_id}/deactivate")
def official_deactivate(
    official_id: str,
    session: DbSession,
    me: Annotated[Principal, as_(Action.MANAGE_OFFICIALS)],
) -> Response:
    admin.deactivate(session, me.actor("web"), official_id)
    return RedirectResponse(url("/admin/officials"), 303)


@router.post("/admin/officials/{official_id}/reset")
def official_reset(
    request: Request,
    official_id: str,
    session: DbSession,
    me: Annotated[Principal, as_(Action.MANAGE_OFFICIALS)],
) -> Response:
    settings = settings_of(request)
    enrolment = admin.reset(session, settings, me.actor("web"), official_id)
    link = officials.enrolment_link(settings, enrolment.token)
    form = Form({"unit": me.unit_code})
    return _page(request, session, me, form, link=link, linked=enrolment.official.username)
