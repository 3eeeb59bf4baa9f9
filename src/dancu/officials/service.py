"""The verbs of official accounts: create, enrol, sign in (two factors), sessions, manage.

Sign-in is two steps on one server-side session: the password opens a session at stage
``password``; the TOTP code promotes it to ``full`` under a new token (so a token seen before
the second factor is worthless after it). Failures are throttled per client address and
locked out per username; the answer never says which factor failed or whether the name
exists. Services only flush; whoever opened the session commits.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from dancu.config import Settings
from dancu.db import execute_count
from dancu.enums import OfficialRole
from dancu.errors import ForbiddenError, Problem
from dancu.geo.models import Commune, Province
from dancu.officials import crypto
from dancu.officials.exceptions import (
    EnrolmentLinkInvalid,
    InvalidCredentials,
    InvalidOfficial,
    OfficialNotFound,
    SessionExpired,
    TooManyAttempts,
)
from dancu.officials.models import LoginFailure, Official, OfficialSession
from dancu.registry.scope import Scope

NATIONAL = "VN"
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{2,59}")
MIN_PASSWORD = 12
MAX_PASSWORD = 256
# Failed attempts are counted over this sliding window, per client address.
THROTTLE_WINDOW = dt.timedelta(minutes=15)
# Sessions are touched at most this often (one write per minute, not per request).
TOUCH_EVERY = dt.timedelta(seconds=60)
# Failed sign-ins older than this are forgotten (the throttle looks back 15 minutes).
FAILURES_KEPT = dt.timedelta(days=1)

# The unit level each role must be scoped to (None: any level).
_LEVEL_FOR_ROLE: dict[OfficialRole, str | None] = {
    OfficialRole.COMMUNE_OFFICER: "commune",
    OfficialRole.PROVINCE_OFFICER: "province",
    OfficialRole.MINISTRY_AUDITOR: "national",
    OfficialRole.SYSTEM_ADMIN: None,
}


@dataclass(frozen=True, slots=True)
class Unit:
    """An administrative unit an official is scoped to, with the organisation it implies."""

    code: str
    level: str  # national, province, commune
    name: str
    province_code: str | None

    @property
    def organization(self) -> str:
        return "Bộ Công an" if self.level == "national" else f"Công an {self.name}"


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A fresh one-time enrolment link's token (shown once, never stored) for an official."""

    official: Official
    token: str


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A session and its token (for the cookie): ``stage`` says whether TOTP is still due."""

    official: Official
    session: OfficialSession
    token: str


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


def unit(session: Session, code: str) -> Unit | None:
    """The unit with this code: ``VN``, a 2-digit province or a 5-digit commune (2025)."""
    code = code.strip().upper()
    if code == NATIONAL:
        return Unit(NATIONAL, "national", "Việt Nam", None)
    if len(code) == 2 and code.isdigit():
        province = session.get(Province, code)
        return Unit(code, "province", province.name, code) if province else None
    if len(code) == 5 and code.isdigit():
        commune = session.get(Commune, code)
        return Unit(code, "commune", commune.name, commune.province_code) if commune else None
    return None


def _check_new(session: Session, username: str, role: str, unit_code: str) -> Unit:
    problems: list[Problem] = []
    if not USERNAME.fullmatch(username):
        problems.append(
            Problem(None, "username", "3-60 characters: lower-case letters, digits, . _ -")
        )
    elif session.scalar(select(Official.id).where(Official.username == username)) is not None:
        problems.append(Problem(None, "username", "is already taken"))
    try:
        the_role: OfficialRole | None = OfficialRole(role)
    except ValueError:
        the_role = None
        problems.append(
            Problem(None, "role", f"expected one of {', '.join(r.value for r in OfficialRole)}")
        )
    found = unit(session, unit_code)
    if found is None:
        problems.append(
            Problem(None, "unit", "expected VN, a province code (2 digits) or a commune code (5)")
        )
    elif the_role is not None:
        level = _LEVEL_FOR_ROLE[the_role]
        if level is not None and found.level != level:
            problems.append(Problem(None, "unit", f"a {the_role.value} is scoped to a {level}"))
    if problems or found is None:
        raise InvalidOfficial("the official cannot be created", problems)
    return found


def create(
    session: Session,
    settings: Settings,
    *,
    username: str,
    role: str,
    unit_code: str,
    actor: str,
    full_name: str | None = None,
    now: dt.datetime | None = None,
) -> Enrolment:
    """A new official, not yet enrolled, and the one-time link to enrol with."""
    now = _now(now)
    username = username.strip().lower()
    found = _check_new(session, username, role, unit_code)
    official = Official(
        username=username,
        full_name=(full_name or "").strip() or None,
        role=OfficialRole(role).value,
        unit_code=found.code,
        organization=found.organization,
        failed_attempts=0,
        active=True,
        created_at=now,
        created_by=actor,
    )
    session.add(official)
    session.flush()
    return reset_enrolment(session, settings, official, now=now)


def reset_enrolment(
    session: Session, settings: Settings, official: Official, *, now: dt.datetime | None = None
) -> Enrolment:
    """Invalidate the password and second factor, sign out everywhere, and issue a new
    one-time enrolment link (a lost phone, a forgotten password, a new official)."""
    now = _now(now)
    token = crypto.new_token()
    official.password_hash = None
    official.totp_secret_encrypted = crypto.encrypt_secret(settings, crypto.new_totp_secret())
    official.totp_last_step = None
    official.enrolled_at = None
    official.enrolment_token_hash = crypto.token_hash(token)
    official.enrolment_expires_at = now + dt.timedelta(hours=settings.enrolment_link_hours)
    official.failed_attempts = 0
    official.locked_until = None
    sign_out_everywhere(session, official.id, now=now)
    session.flush()
    return Enrolment(official, token)


def enrolment_link(settings: Settings, token: str) -> str:
    return f"{settings.base_url.rstrip('/')}/enrol/{token}"


def by_enrolment_token(session: Session, token: str, *, now: dt.datetime | None = None) -> Official:
    """The official this unused, unexpired enrolment link belongs to."""
    now = _now(now)
    official = session.scalar(
        select(Official).where(Official.enrolment_token_hash == crypto.token_hash(token))
    )
    if (
        official is None
        or not official.active
        or official.enrolment_expires_at is None
        or official.enrolment_expires_at < now
    ):
        raise EnrolmentLinkInvalid(
            "this enrolment link is unknown, already used or expired; ask an administrator "
            "for a new one"
        )
    return official


def totp_uri(settings: Settings, official: Official) -> str:
    """The otpauth:// URI of the official's pending second factor (enrolment page only)."""
    secret = crypto.decrypt_secret(settings, official.totp_secret_encrypted or "")
    if secret is None:
        raise EnrolmentLinkInvalid("the enrolment is damaged; ask an administrator to reset it")
    return crypto.provisioning_uri(secret, official.username)


def complete_enrolment(
    session: Session,
    settings: Settings,
    *,
    token: str,
    password: str,
    password_again: str,
    code: str,
    now: dt.datetime | None = None,
) -> Official:
    """Set the password and confirm the authenticator app with a first code; the link is
    then spent. Every problem is reported by field and nothing is saved."""
    now = _now(now)
    official = by_enrolment_token(session, token, now=now)
    problems: list[Problem] = []
    if len(password) < MIN_PASSWORD:
        problems.append(Problem(None, "password", f"at least {MIN_PASSWORD} characters"))
    elif len(password) > MAX_PASSWORD:
        problems.append(Problem(None, "password", f"at most {MAX_PASSWORD} characters"))
    elif official.username in password.lower():
        problems.append(Problem(None, "password", "must not contain the username"))
    if password != password_again:
        problems.append(Problem(None, "password_again", "does not match the password"))
    secret = crypto.decrypt_secret(settings, official.totp_secret_encrypted or "")
    step = crypto.totp_step(secret, code, now) if secret else None
    if step is None:
        problems.append(Problem(None, "code", "is not the code the app shows now"))
    if problems:
        raise InvalidOfficial("the enrolment has errors", problems)
    official.password_hash = crypto.hash_password(settings, password)
    official.totp_last_step = step
    official.enrolled_at = now
    official.enrolment_token_hash = None
    official.enrolment_expires_at = None
    session.flush()
    return official


def _failures_since(
    session: Session, column: InstrumentedAttribute[str], value: str, since: dt.datetime
) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(LoginFailure)
            .where(column == value, LoginFailure.at >= since)
        )
        or 0
    )


def _throttle_ip(session: Session, settings: Settings, client_ip: str, now: dt.datetime) -> None:
    since = now - THROTTLE_WINDOW
    if _failures_since(session, LoginFailure.client_ip, client_ip, since) >= (
        settings.login_ip_max_failures
    ):
        raise TooManyAttempts(
            "too many failed sign-ins from this address; try again later",
            retry_after=int(THROTTLE_WINDOW.total_seconds()),
        )


def _locked(session: Session, settings: Settings, username: str, now: dt.datetime) -> None:
    """Refuse a locked username, known or not (an unknown name locks the same way, so the
    answer does not reveal which names exist)."""
    official = session.scalar(select(Official).where(Official.username == username))
    window = dt.timedelta(minutes=settings.login_lockout_minutes)
    if official is not None:
        until = official.locked_until
    else:
        recent = _failures_since(session, LoginFailure.username, username, now - window)
        until = now + window if recent >= settings.login_max_failures else None
    if until is not None and until > now:
        raise TooManyAttempts(
            "too many failed sign-ins for this account; try again later or ask an administrator",
            retry_after=max(1, int((until - now).total_seconds())),
        )


def _fail(
    session: Session,
    settings: Settings,
    username: str,
    client_ip: str,
    official: Official | None,
    now: dt.datetime,
) -> InvalidCredentials:
    session.add(LoginFailure(at=now, username=username[:60], client_ip=client_ip[:45]))
    if official is not None:
        official.failed_attempts += 1
        if official.failed_attempts >= settings.login_max_failures:
            official.locked_until = now + dt.timedelta(minutes=settings.login_lockout_minutes)
            official.failed_attempts = 0
            sign_out_everywhere(session, official.id, now=now)
    session.flush()
    return InvalidCredentials("wrong username, password or code")


def sign_in_password(
    session: Session,
    settings: Settings,
    *,
    username: str,
    password: str,
    client_ip: str,
    now: dt.datetime | None = None,
) -> SignedIn:
    """First factor. A failure is recorded (and must be committed by the caller even though
    an error is raised: the web layer commits before rendering the refusal)."""
    now = _now(now)
    username = username.strip().lower()[:60]
    purge_failures_if_due(session, now=now)
    _throttle_ip(session, settings, client_ip, now)
    _locked(session, settings, username, now)
    official = session.scalar(select(Official).where(Official.username == username))
    stored = official.password_hash if official is not None else None
    ok = crypto.verify_password(settings, stored, password)
    if official is None or not ok or not official.active or official.enrolled_at is None:
        raise _fail(session, settings, username, client_ip, official, now)
    if stored is not None and crypto.needs_rehash(settings, stored):
        official.password_hash = crypto.hash_password(settings, password)
    return _open_session(session, settings, official, "password", client_ip, now)


def sign_in_totp(
    session: Session,
    settings: Settings,
    *,
    token: str,
    code: str,
    client_ip: str,
    now: dt.datetime | None = None,
) -> SignedIn:
    """Second factor: the pending session is closed and a full one opened under a new token."""
    now = _now(now)
    _throttle_ip(session, settings, client_ip, now)
    found = _live(session, settings, token, now)
    if found is None or found[0].stage != "password":
        raise SessionExpired("sign in again")
    pending, official = found
    _locked(session, settings, official.username, now)
    secret = crypto.decrypt_secret(settings, official.totp_secret_encrypted or "")
    step = crypto.totp_step(secret, code, now) if secret else None
    if step is None or (official.totp_last_step is not None and step <= official.totp_last_step):
        raise _fail(session, settings, official.username, client_ip, official, now)
    official.totp_last_step = step
    official.failed_attempts = 0
    pending.revoked_at = now
    return _open_session(session, settings, official, "full", client_ip, now)


def _open_session(
    session: Session,
    settings: Settings,
    official: Official,
    stage: str,
    client_ip: str,
    now: dt.datetime,
) -> SignedIn:
    token = crypto.new_token()
    row = OfficialSession(
        token_hash=crypto.token_hash(token),
        official_id=official.id,
        stage=stage,
        created_at=now,
        last_seen_at=now,
        expires_at=now + dt.timedelta(hours=settings.session_max_hours),
        client_ip=client_ip[:45],
    )
    session.add(row)
    session.flush()
    return SignedIn(official, row, token)


def _live(
    session: Session, settings: Settings, token: str, now: dt.datetime
) -> tuple[OfficialSession, Official] | None:
    found = session.execute(
        select(OfficialSession, Official)
        .join(Official, Official.id == OfficialSession.official_id)
        .where(OfficialSession.token_hash == crypto.token_hash(token))
    ).first()
    if found is None:
        return None
    row, official = found
    idle = dt.timedelta(minutes=settings.session_idle_minutes)
    if (
        row.revoked_at is not None
        or row.expires_at <= now
        or row.last_seen_at + idle <= now
        or not official.active
    ):
        return None
    return row, official


def resolve(
    session: Session, settings: Settings, token: str, *, now: dt.datetime | None = None
) -> tuple[OfficialSession, Official] | None:
    """The live session and official behind a cookie token, or None (unknown, revoked,
    expired, idle too long, deactivated). Keeps the session alive (sliding idle timeout)."""
    now = _now(now)
    found = _live(session, settings, token, now)
    if found is not None and found[0].last_seen_at + TOUCH_EVERY <= now:
        found[0].last_seen_at = now
    return found


def sign_out(session: Session, token: str, *, now: dt.datetime | None = None) -> None:
    session.execute(
        update(OfficialSession)
        .where(
            OfficialSession.token_hash == crypto.token_hash(token),
            OfficialSession.revoked_at.is_(None),
        )
        .values(revoked_at=_now(now))
    )


def sign_out_everywhere(
    session: Session, official_id: int, *, now: dt.datetime | None = None
) -> None:
    """Revoke every session of this official, on every device."""
    session.execute(
        update(OfficialSession)
        .where(OfficialSession.official_id == official_id, OfficialSession.revoked_at.is_(None))
        .values(revoked_at=_now(now))
    )


def count(session: Session) -> int:
    """How many official accounts exist (active or not)."""
    return int(session.scalar(select(func.count()).select_from(Official)) or 0)


def get_or_raise(session: Session, official_id: int) -> Official:
    official = session.get(Official, official_id)
    if official is None:
        raise OfficialNotFound("no such official")
    return official


def by_username(session: Session, username: str) -> Official:
    official = session.scalar(select(Official).where(Official.username == username.strip().lower()))
    if official is None:
        raise OfficialNotFound("no official with this username")
    return official


def managed(session: Session, scope: Scope, official_id: str | int) -> Official:
    """The official with this id, if an administrator scoped to ``scope`` may manage them
    (their unit lies within it); otherwise 403, whether the id exists or not."""
    try:
        official = session.get(Official, int(official_id))
    except (TypeError, ValueError):
        official = None
    if official is None or not scope.covers(Scope.parse(official.unit_code)):
        raise ForbiddenError(
            f"no official with this id is managed from your unit ({scope.unit_code})",
            code="out_of_scope",
        )
    return official


def deactivate(session: Session, official: Official, *, now: dt.datetime | None = None) -> None:
    """An official who left: no sign-in, every session revoked; the account stays for the
    history and the access log, which name it."""
    official.active = False
    sign_out_everywhere(session, official.id, now=now)
    session.flush()


def purge_failures(session: Session, *, now: dt.datetime | None = None) -> int:
    """Forget failed sign-ins older than a day (the throttle looks back 15 minutes)."""
    cutoff = _now(now) - FAILURES_KEPT
    return execute_count(session, delete(LoginFailure).where(LoginFailure.at < cutoff))


def purge_failures_if_due(session: Session, *, now: dt.datetime | None = None) -> int:
    """Run by every sign-in: purge once the oldest failure is two days old, so the table holds
    at most about two days of failures and the (unindexed) delete runs about once a day. The
    check reads one row by primary key (failures are written in time order)."""
    now = _now(now)
    oldest = session.scalar(select(LoginFailure.at).order_by(LoginFailure.id).limit(1))
    if oldest is None or oldest >= now - 2 * FAILURES_KEPT:
        return 0
    return purge_failures(session, now=now)
