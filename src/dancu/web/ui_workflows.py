"""Pages of the residence and household workflows and of corrections.

Each is a GET that shows the form (with the version the official read, from the citizen
page's link) and a POST that runs the flow in a savepoint: refused, the form comes back with
each reason beside its field; done, the official lands on the citizen page with a notice.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from dancu.officials import flows, residence_flows
from dancu.officials.policy import Action
from dancu.web.deps import DbSession, Principal
from dancu.web.ui import Form, PageRoute, attempt, render
from dancu.web.ui_registry import as_, citizen_url, unread

router = APIRouter(route_class=PageRoute, include_in_schema=False)
RESIDENCE_PURPOSE = "residence_procedure"


def _why(form: Form) -> residence_flows.Why:
    return residence_flows.Why(form.get("reason"), form.get("legal_basis"))


def _person_form(
    request: Request, template: str, me: Principal, personal_id: str, form: Form
) -> Response:
    return render(request, template, status=form.status, me=me, form=form, personal_id=personal_id)


@router.get("/registry/citizens/{personal_id}/move")
def move_page(
    request: Request,
    personal_id: str,
    me: Annotated[Principal, as_(Action.CHANGE_RESIDENCE)],
    version: str | None = None,
) -> Response:
    if (back := unread(personal_id, version)) is not None:
        return back
    form = Form({"version": version or "", "commune_code": me.unit_code})
    return _person_form(request, "move.html", me, personal_id, form)


@router.post("/registry/citizens/{personal_id}/move")
async def move_submit(
    request: Request,
    personal_id: str,
    session: DbSession,
    me: Annotated[Principal, as_(Action.CHANGE_RESIDENCE)],
) -> Response:
    form = await Form.read(request)
    command = residence_flows.MoveForm(
        form.get("commune_code"),
        form.get("address"),
        form.get("household_code"),
        form.get("relationship_to_head"),
        form.get("moved_on"),
        form.get("version") or None,
        _why(form),
    )
    with attempt(session, form):
        residence_flows.change_residence(session, me.actor("web"), personal_id, command)
    if form.invalid:
        return _person_form(request, "move.html", me, personal_id, form)
    return RedirectResponse(citizen_url(personal_id, RESIDENCE_PURPOSE, "move"), 303)


@router.get("/registry/citizens/{personal_id}/temporary")
def temporary_page(
    request: Request,
    personal_id: str,
    me: Annotated[Principal, as_(Action.TEMPORARY_RESIDENCE)],
    version: str | None = None,
) -> Response:
    if (back := unread(personal_id, version)) is not None:
        return back
    form = Form({"version": version or "", "commune_code": me.unit_code})
    return _person_form(request, "temporary.html", me, personal_id, form)


@router.post("/registry/citizens/{personal_id}/temporary")
async def temporary_submit(
    request: Request,
    personal_id: str,
    session: DbSession,
    me: Annotated[Principal, as_(Action.TEMPORARY_RESIDENCE)],
) -> Response:
    form = await Form.read(request)
    command = residence_flows.TemporaryForm(
        form.get("commune_code"),
        form.get("address"),
        form.get("valid_from"),
        form.get("valid_until"),
        form.get("version") or None,
        _why(form),
    )
    with attempt(session, form):
        residence_flows.register_temporary_residence(session, me.actor("web"), personal_id, command)
    if form.invalid:
        return _person_form(request, "temporary.html", me, personal_id, form)
    return RedirectResponse(citizen_url(personal_id, RESIDENCE_PURPOSE, "temporary"), 303)


@router.get("/registry/citizens/{personal_id}/correct")
def correct_page(
    request: Request,
    personal_id: str,
    me: Annotated[Principal, as_(Action.CORRECT_FIELD)],
    version: str | None = None,
) -> Response:
    if (back := unread(personal_id, version)) is not None:
        return back
    form = Form({"version": version or ""})
    return _person_form(request, "correct.html", me, personal_id, form)


@router.post("/registry/citizens/{personal_id}/correct")
async def correct_submit(
    request: Request,
    personal_id: str,
    session: DbSession,
    me: Annotated[Principal, as_(Action.CORRECT_FIELD)],
) -> Response:
    form = await Form.read(request)
    with attempt(session, form):
        flows.correct_field(
            session,
            me.actor("web"),
            personal_id,
            field=form.get("field"),
            value=form.get("value"),
            reason=form.get("reason"),
            legal_basis=form.get("legal_basis"),
            version=form.get("version") or None,
        )
    if form.invalid:
        return _person_form(request, "correct.html", me, personal_id, form)
    return RedirectResponse(citizen_url(personal_id, "civil_status", "correct"), 303)


def _household_form(
    request: Request,
    session: DbSession,
    me: Principal,
    template: str,
    household_code: str,
    form: Form,
) -> Response:
    view = residence_flows.household_members(
        session, me.actor("web"), household_code, RESIDENCE_PURPOSE
    )
    return render(request, template, status=form.status, me=me, form=form, household=view)


def _done(form: Form, done: str) -> Response:
    """After a split or a change of head: the new head's page."""
    return RedirectResponse(citizen_url(form.get("new_head_id"), RESIDENCE_PURPOSE, done), 303)


def _per_member(form: Form, prefix: str) -> dict[str, str]:
    return {
        key[len(prefix) :]: value
        for key, value in form.values.items()
        if key.startswith(prefix) and value
    }


@router.get("/registry/households/{household_code}/move")
def household_move_page(
    request: Request,
    household_code: str,
    session: DbSession,
    me: Annotated[Principal, as_(Action.CHANGE_RESIDENCE)],
) -> Response:
    form = Form({"commune_code": me.unit_code})
    return _household_form(request, session, me, "household_move.html", household_code, form)


@router.post("/registry/households/{household_code}/move")
async def household_move_submit(
    request: Request,
    household_code: str,
    session: DbSession,
    me: Annotated[Principal, as_(Action.CHANGE_RESIDENCE)],
) -> Response:
    form = await Form.read(request)
    command = residence_flows.HouseholdMoveForm(
        form.get("commune_code"),
        form.get("address"),
        form.get("moved_on"),
        _per_member(form, "v_"),
        _why(form),
    )
    with attempt(session, form):
        changes = residence_flows.move_household(session, me.actor("web"), household_code, command)
    if form.invalid:
        return _household_form(request, session, me, "household_move.html", household_code, form)
    first = changes.citizens[0].personal_id if changes.citizens else ""
    return RedirectResponse(citizen_url(first, RESIDENCE_PURPOSE, "move"), 303)


@router.get("/registry/households/{household_code}/split")
def split_page(
    request: Request,
    household_code: str,
    session: DbSession,
    me: Annotated[Principal, as_(Action.SPLIT_HOUSEHOLD)],
) -> Response:
    return _household_form(request, session, me, "split.html", household_code, Form())


@router.post("/registry/households/{household_code}/split")
async def split_submit(
    request: Request,
    household_code: str,
    session: DbSession,
    me: Annotated[Principal, as_(Action.SPLIT_HOUSEHOLD)],
) -> Response:
    form = await Form.read(request)
    relationships = _per_member(form, "rel_")
    members = {pid: relationships.get(pid, "") for pid in form.getlist("leave")}
    command = residence_flows.SplitForm(
        form.get("new_head_id"),
        members,
        form.get("address"),
        form.get("split_on"),
        _per_member(form, "v_"),
        _why(form),
    )
    with attempt(session, form):
        residence_flows.split_household(session, me.actor("web"), household_code, command)
    if form.invalid:
        return _household_form(request, session, me, "split.html", household_code, form)
    return _done(form, "split")


@router.get("/registry/households/{household_code}/head")
def head_page(
    request: Request,
    household_code: str,
    session: DbSession,
    me: Annotated[Principal, as_(Action.CHANGE_HEAD)],
) -> Response:
    return _household_form(request, session, me, "head.html", household_code, Form())


@router.post("/registry/households/{household_code}/head")
async def head_submit(
    request: Request,
    household_code: str,
    session: DbSession,
    me: Annotated[Principal, as_(Action.CHANGE_HEAD)],
) -> Response:
    form = await Form.read(request)
    command = residence_flows.HeadForm(
        form.get("new_head_id"),
        _per_member(form, "rel_"),
        _per_member(form, "v_"),
        _why(form),
    )
    with attempt(session, form):
        residence_flows.change_head(session, me.actor("web"), household_code, command)
    if form.invalid:
        return _household_form(request, session, me, "head.html", household_code, form)
    return _done(form, "head")
