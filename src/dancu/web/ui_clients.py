"""Pages of the national administrator: partner organisations and their API clients.

Partners (ministries, banks, telecom operators...) are national: only a system administrator
of national scope manages them (``policy.NATIONAL``). A new client's secret, and a rotated
one, is shown once on the page that answers the form (``Cache-Control: no-store``) and is
never written anywhere else: the exchange keeps its SHA-256 only.

Every change is recorded: the exchange's rows carry when (``created_at``, ``updated_at``,
``secret_rotated_at``) and this module logs who did what to which client, with the request
id (never a secret), on the ``dancu.web.ui_clients`` logger. A durable history table would
need a migration of the exchange domain (docs/exchange.md, "Managing clients in the back
office").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from dancu.enums import OrganizationKind
from dancu.errors import Problem, ValidationFailed
from dancu.exchange import clients
from dancu.exchange.exceptions import DuplicateOrganization
from dancu.exchange.models import ApiClient, Organization
from dancu.officials import policy
from dancu.officials.policy import Action
from dancu.web import i18n
from dancu.web.deps import DbSession, Principal
from dancu.web.ui import Form, PageRoute, attempt, field_label, locale_of, render, url
from dancu.web.ui_registry import as_

router = APIRouter(route_class=PageRoute, include_in_schema=False)
log = logging.getLogger(__name__)
PAGE_SIZE = 20
HOME = "/admin/clients"
# The notice the list shows after a change, by the ``done`` query parameter.
DONE = {
    "organization": "clients.org_added",
    "suspended": "clients.suspended_done",
    "reactivated": "clients.reactivated_done",
}


def national_admin(me: Annotated[Principal, as_(Action.MANAGE_CLIENTS)]) -> Principal:
    """Signed in, CSRF and role checked by ``Authorize``; then the unit must be national."""
    policy.authorize_at(me.role, Action.MANAGE_CLIENTS, me.scope.level)
    return me


Admin = Annotated[Principal, Depends(national_admin)]


@dataclass(frozen=True, slots=True)
class OrganizationRow:
    organization: Organization
    clients: list[ApiClient]


def organizations_page(
    session: Session, *, limit: int, offset: int
) -> tuple[list[OrganizationRow], bool]:
    """Organisations by name with all their clients (a partner has a few), and whether more
    organisations follow. Kept here because the exchange service lists without paging."""
    found = list(
        session.scalars(
            select(Organization).order_by(Organization.name).limit(limit + 1).offset(offset)
        )
    )
    orgs = found[:limit]
    by_org: dict[int, list[ApiClient]] = {org.id: [] for org in orgs}
    if by_org:
        query = (
            select(ApiClient)
            .where(ApiClient.organization_id.in_(by_org))
            .order_by(ApiClient.created_at, ApiClient.client_id)
        )
        for client in session.scalars(query):
            by_org[client.organization_id].append(client)
    return [OrganizationRow(org, by_org[org.id]) for org in orgs], len(found) > limit


def _record(me: Principal, change: str, subject: str) -> None:
    """Who changed which partner or client (the log line carries when). Never a secret."""
    log.info(
        "partner admin: %s %s by %s (unit %s, request %s)",
        change,
        subject,
        me.username,
        me.unit_code,
        me.request_id,
    )


def _count(form: Form, name: str, problems: list[Problem]) -> int:
    text = form.get(name).strip().replace(".", "").replace(",", "").replace(" ", "")
    if text.isascii() and text.isdigit() and int(text) >= 1:
        return int(text)
    problems.append(Problem(None, name, "a whole number of at least 1"))
    return 1


def _client_settings(session: Session, form: Form) -> dict[str, Any]:
    """The add-client form as ``clients.add`` arguments; what the form alone can tell is
    wrong is refused here, beside its field (the service checks scopes, purposes, keys)."""
    problems: list[Problem] = []
    organization = form.get("organization").strip()
    if not organization:
        problems.append(Problem(None, "organization", "required"))
    elif clients.get_organization(session, organization) is None:
        problems.append(Problem(None, "organization", "no such organisation"))
    per_minute = _count(form, "per_minute", problems)
    per_day = _count(form, "per_day", problems)
    jwks: dict[str, Any] | None = None
    text = form.get("jwks").strip()
    if text:
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:  # nested past 1,024 levels included
            problems.append(Problem(None, "jwks", "not valid JSON"))
        else:
            if isinstance(value, dict):
                jwks = value
            else:
                problems.append(Problem(None, "jwks", "not a JWK Set"))
    if problems:
        raise ValidationFailed("the client form has errors", problems)
    return {
        "organization": organization,
        "name": form.get("name").strip() or None,
        "scopes": form.getlist("scope"),
        "purposes": form.get("purpose").splitlines(),
        "per_minute": per_minute,
        "per_day": per_day,
        "jwks": jwks,
    }


def _blank_client_form() -> Form:
    return Form(
        {
            "per_minute": str(clients.DEFAULT_PER_MINUTE),
            "per_day": str(clients.DEFAULT_PER_DAY),
        },
        {"scope": sorted(clients.SCOPES)},
    )


def _page(
    request: Request,
    session: DbSession,
    me: Principal,
    *,
    org_form: Form | None = None,
    client_form: Form | None = None,
    action_form: Form | None = None,
    offset: int = 0,
    credentials: clients.Credentials | None = None,
    done: str | None = None,
) -> Response:
    org_form = org_form or Form()
    client_form = client_form or _blank_client_form()
    rows, more = organizations_page(session, limit=PAGE_SIZE, offset=offset)
    t = i18n.translator(locale_of(request))

    def label(name: str) -> str:
        key = "clients." + name
        return t(key) if key in i18n.VI else field_label(t, name)

    return render(
        request,
        "clients.html",
        status=max(org_form.status, client_form.status, action_form.status if action_form else 0),
        me=me,
        org_form=org_form,
        client_form=client_form,
        action_form=action_form,
        rows=rows,
        page={"offset": offset, "limit": PAGE_SIZE, "has_more": more},
        home=HOME,
        kinds=[(kind.value, t(f"org_kind.{kind.value}")) for kind in OrganizationKind],
        organizations=[(o.name, o.name) for o in clients.list_organizations(session)],
        scopes=sorted(clients.SCOPES),
        credentials=credentials,
        notice=t(DONE[done]) if done in DONE else None,
        field_label=label,
    )


@router.get(HOME)
def clients_page(
    request: Request, session: DbSession, me: Admin, offset: int = 0, done: str | None = None
) -> Response:
    return _page(request, session, me, offset=max(offset, 0), done=done)


@router.post(HOME + "/organizations")
async def organization_add(request: Request, session: DbSession, me: Admin) -> Response:
    form = await Form.read(request)
    with attempt(session, form):
        try:
            org = clients.create_organization(session, name=form.get("org"), kind=form.get("kind"))
        except DuplicateOrganization as exc:
            raise ValidationFailed(exc.message, [Problem(None, "org", "already exists")]) from None
        _record(me, "added organisation", repr(org.name))
    if form.invalid:
        return _page(request, session, me, org_form=form)
    return RedirectResponse(url(HOME, done="organization"), 303)


@router.post(HOME)
async def client_add(request: Request, session: DbSession, me: Admin) -> Response:
    form = await Form.read(request)
    credentials = None
    with attempt(session, form):
        credentials = clients.add(session, **_client_settings(session, form))
        _record(me, "added client", credentials.client_id)
    if form.invalid or credentials is None:
        return _page(request, session, me, client_form=form)
    return _page(request, session, me, credentials=credentials)


def _client_id(form: Form) -> str:
    return form.get("client_id").strip()


# What suspending and reactivating call: the service, and the notice the list then shows.
STATUS_CHANGES = {
    "suspended": clients.suspend,
    "reactivated": clients.reactivate,
}


async def _change_status(request: Request, session: Session, me: Principal, done: str) -> Response:
    client_id = _client_id(await Form.read(request))
    STATUS_CHANGES[done](session, client_id)
    _record(me, f"{done} client", client_id)
    return RedirectResponse(url(HOME, done=done), 303)


@router.post(HOME + "/suspend")
async def client_suspend(request: Request, session: DbSession, me: Admin) -> Response:
    """Refused at once at the token endpoint and the API (docs/exchange.md, "Suspension")."""
    return await _change_status(request, session, me, "suspended")


@router.post(HOME + "/reactivate")
async def client_reactivate(request: Request, session: DbSession, me: Admin) -> Response:
    return await _change_status(request, session, me, "reactivated")


@router.post(HOME + "/rotate")
async def client_rotate(request: Request, session: DbSession, me: Admin) -> Response:
    form = await Form.read(request)
    credentials = None
    with attempt(session, form):
        credentials = clients.rotate_secret(session, _client_id(form))
        _record(me, "rotated the secret of client", credentials.client_id)
    if form.invalid or credentials is None:
        return _page(request, session, me, action_form=form)
    return _page(request, session, me, credentials=credentials)
