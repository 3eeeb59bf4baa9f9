"""Signing in (password, then TOTP), enrolment, signing out, and the language toggle.

These pages are public by design (``PUBLIC_PATHS``) but every form is CSRF-protected: before
sign-in the token is bound to an anonymous pre-session cookie, after it to the session.
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from dancu.config import Settings
from dancu.errors import ForbiddenError
from dancu.officials import crypto
from dancu.officials import service as officials
from dancu.officials.exceptions import InvalidCredentials, SessionExpired, TooManyAttempts
from dancu.officials.models import Official
from dancu.officials.policy import Action
from dancu.web import i18n
from dancu.web.deps import (
    Authorize,
    DbSession,
    Principal,
    client_ip,
    pre_cookie,
    session_cookie,
    settings_of,
    submitted_csrf,
)
from dancu.web.ui import Form, PageRoute, attempt, locale_of, render, safe_next, url

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _set_cookie(response: Response, settings: Settings, name: str, value: str) -> None:
    response.set_cookie(
        name, value, httponly=True, secure=settings.cookie_secure, samesite="strict", path="/"
    )


def _pre_token(request: Request) -> tuple[str, bool]:
    """The anonymous pre-session token, and whether it is new (to be set as a cookie)."""
    existing = request.cookies.get(pre_cookie(settings_of(request)))
    if existing and len(existing) >= 32:
        return existing, False
    return crypto.new_token(), True


def _with_pre(request: Request, response: Response, token: str, new: bool) -> Response:
    if new:
        settings = settings_of(request)
        _set_cookie(response, settings, pre_cookie(settings), token)
    return response


def _bindings(request: Request) -> list[str]:
    settings = settings_of(request)
    found = (
        request.cookies.get(session_cookie(settings)),
        request.cookies.get(pre_cookie(settings)),
    )
    return [value for value in found if value]


def check_public_csrf(
    request: Request, csrf: Annotated[str | None, Depends(submitted_csrf)]
) -> None:
    """The CSRF check of the public forms. The sign-in and enrolment forms bind their token to
    the pre-session cookie, the code form and sign-out to the session: a token bound to either
    cookie the browser sent is accepted (both are http-only and same-site, so no other site can
    know it). A stale session cookie (an expired session) therefore does not block sign-in."""
    settings = settings_of(request)
    if not any(crypto.csrf_valid(settings, binding, csrf) for binding in _bindings(request)):
        raise ForbiddenError(
            "the form is out of date or was not sent by this site; reload and try again",
            code="csrf_failed",
        )


PublicCsrf = Depends(check_public_csrf)


def _throttled(request: Request, exc: TooManyAttempts) -> str:
    t = i18n.translator(locale_of(request))
    return t("login.throttled", minutes=max(1, math.ceil(exc.retry_after / 60)))


@router.get("/login")
def login_page(request: Request, next: str | None = None, notice: str | None = None) -> Response:
    token, new = _pre_token(request)
    t = i18n.translator(locale_of(request))
    notices = {"enrolled": "login.enrolled", "out": "login.signed_out", "expired": "login.expired"}
    response = render(
        request,
        "login.html",
        form=Form(),
        next_url=safe_next(next, ""),
        notice=t(notices[notice]) if notice in notices else None,
        csrf_token=crypto.csrf_token(settings_of(request), token),
    )
    return _with_pre(request, response, token, new)


@router.post("/login", dependencies=[PublicCsrf])
async def login_submit(request: Request, session: DbSession) -> Response:
    settings = settings_of(request)
    form = await Form.read(request)
    try:
        signed = officials.sign_in_password(
            session,
            settings,
            username=form.get("username"),
            password=form.get("password"),
            client_ip=client_ip(request),
        )
    except (InvalidCredentials, TooManyAttempts) as exc:
        # The failure is recorded (the throttle counts it) and committed with the request.
        t = i18n.translator(locale_of(request))
        failure = (
            _throttled(request, exc) if isinstance(exc, TooManyAttempts) else t("login.failed")
        )
        token, new = _pre_token(request)
        refused = render(
            request,
            "login.html",
            status=exc.status,
            form=Form({"username": form.get("username")}),
            failure=failure,
            next_url=safe_next(form.get("next"), ""),
            csrf_token=crypto.csrf_token(settings, token),
        )
        if isinstance(exc, TooManyAttempts):
            refused.headers["Retry-After"] = str(exc.retry_after)
        return _with_pre(request, refused, token, new)
    response = RedirectResponse(url("/login/totp", next=form.get("next")), status_code=303)
    _set_cookie(response, settings, session_cookie(settings), signed.token)
    return response


def _pending(request: Request, session: Session) -> str:
    """The token of the password-stage session, or SessionExpired (back to the first step)."""
    settings = settings_of(request)
    token = request.cookies.get(session_cookie(settings))
    found = officials.resolve(session, settings, token) if token else None
    if token is None or found is None or found[0].stage != "password":
        raise SessionExpired("sign in again")
    return token


@router.get("/login/totp")
def totp_page(request: Request, session: DbSession, next: str | None = None) -> Response:
    try:
        token = _pending(request, session)
    except SessionExpired:
        return RedirectResponse(url("/login", next=next), status_code=303)
    return render(
        request,
        "totp.html",
        form=Form(),
        next_url=safe_next(next, ""),
        csrf_token=crypto.csrf_token(settings_of(request), token),
    )


@router.post("/login/totp", dependencies=[PublicCsrf])
async def totp_submit(request: Request, session: DbSession) -> Response:
    settings = settings_of(request)
    form = await Form.read(request)
    try:
        token = _pending(request, session)
        signed = officials.sign_in_totp(
            session, settings, token=token, code=form.get("code"), client_ip=client_ip(request)
        )
    except SessionExpired:
        return RedirectResponse(url("/login", notice="expired"), status_code=303)
    except (InvalidCredentials, TooManyAttempts) as exc:
        t = i18n.translator(locale_of(request))
        failure = (
            _throttled(request, exc) if isinstance(exc, TooManyAttempts) else t("login.failed")
        )
        return render(
            request,
            "totp.html",
            status=exc.status,
            form=Form(),
            failure=failure,
            next_url=safe_next(form.get("next"), ""),
            csrf_token=crypto.csrf_token(settings, token),
        )
    home = "/admin/officials" if signed.official.role == "system_admin" else "/registry"
    response = RedirectResponse(safe_next(form.get("next"), home), status_code=303)
    _set_cookie(response, settings, session_cookie(settings), signed.token)
    response.delete_cookie(pre_cookie(settings), path="/")
    return response


@router.post("/logout", dependencies=[PublicCsrf])
def logout(request: Request, session: DbSession) -> Response:
    settings = settings_of(request)
    token = request.cookies.get(session_cookie(settings))
    if token:
        officials.sign_out(session, token)
    response = RedirectResponse(url("/login", notice="out"), status_code=303)
    response.delete_cookie(session_cookie(settings), path="/")
    return response


@router.post("/logout/all")
def logout_everywhere(
    request: Request,
    session: DbSession,
    me: Annotated[Principal, Depends(Authorize(Action.OWN_ACCOUNT))],
) -> Response:
    """Sign out on every device (a lost phone, a shared computer)."""
    officials.sign_out_everywhere(session, me.official_id)
    response = RedirectResponse(url("/login", notice="out"), status_code=303)
    response.delete_cookie(session_cookie(settings_of(request)), path="/")
    return response


@router.get("/enrol/{token}")
def enrol_page(request: Request, token: str, session: DbSession) -> Response:
    settings = settings_of(request)
    official = officials.by_enrolment_token(session, token)
    pre, new = _pre_token(request)
    page = _enrol_form(request, settings, official, token, pre, Form())
    return _with_pre(request, page, pre, new)


def _enrol_form(
    request: Request,
    settings: Settings,
    official: Official,
    token: str,
    pre: str,
    form: Form,
) -> Response:
    uri = officials.totp_uri(settings, official)
    return render(
        request,
        "enrol.html",
        status=400 if form.invalid else 200,
        form=form,
        official=official,
        token=token,
        qr=crypto.qr_svg(uri),
        secret=uri.split("secret=", 1)[1].split("&", 1)[0],
        csrf_token=crypto.csrf_token(settings, pre),
    )


@router.post("/enrol/{token}", dependencies=[PublicCsrf])
async def enrol_submit(request: Request, token: str, session: DbSession) -> Response:
    settings = settings_of(request)
    official = officials.by_enrolment_token(session, token)
    form = await Form.read(request)
    with attempt(session, form):
        officials.complete_enrolment(
            session,
            settings,
            token=token,
            password=form.get("password"),
            password_again=form.get("password_again"),
            code=form.get("code"),
        )
    if form.invalid:
        pre, new = _pre_token(request)
        page = _enrol_form(request, settings, official, token, pre, form)
        return _with_pre(request, page, pre, new)
    return RedirectResponse(url("/login", notice="enrolled"), status_code=303)


@router.get("/lang/{locale}")
def switch_language(request: Request, locale: str, next: str | None = None) -> Response:
    """Set the language cookie and go back; reads nothing, changes nothing else."""
    response = RedirectResponse(safe_next(next, "/login"), status_code=303)
    response.set_cookie(
        i18n.COOKIE,
        i18n.pick(locale),
        max_age=365 * 24 * 3600,
        httponly=True,
        secure=settings_of(request).cookie_secure,
        samesite="lax",
        path="/",
    )
    return response
