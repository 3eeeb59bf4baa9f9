"""Official accounts: creation, enrolment, two-factor sign-in, throttling, lockout, sessions."""

from __future__ import annotations

import datetime as dt

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dancu.config import Settings
from dancu.officials import crypto
from dancu.officials import service as officials
from dancu.officials.exceptions import (
    EnrolmentLinkInvalid,
    InvalidCredentials,
    InvalidOfficial,
    SessionExpired,
    TooManyAttempts,
)
from dancu.officials.models import LoginFailure, Official
from tests.officials.factories import PASSWORD, enrolled, settings_for, sign_in


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for(database_url)


def _fields(exc: pytest.ExceptionInfo[InvalidOfficial]) -> set[str | None]:
    return {p.field for p in exc.value.problems}


def test_create_checks_every_field_and_saves_nothing(session: Session, settings: Settings) -> None:
    with pytest.raises(InvalidOfficial) as exc:
        officials.create(
            session, settings, username="X Y", role="king", unit_code="99999", actor="t"
        )
    assert _fields(exc) == {"username", "role", "unit"}
    assert session.scalar(select(Official.id)) is None


def test_role_must_match_the_level_of_its_unit(session: Session, settings: Settings) -> None:
    with pytest.raises(InvalidOfficial) as exc:
        officials.create(
            session, settings, username="xa01", role="commune_officer", unit_code="01", actor="t"
        )
    assert _fields(exc) == {"unit"}


def test_username_is_unique(session: Session, settings: Settings) -> None:
    officials.create(
        session, settings, username="adm", role="system_admin", unit_code="VN", actor="t"
    )
    with pytest.raises(InvalidOfficial) as exc:
        officials.create(
            session, settings, username="ADM", role="system_admin", unit_code="VN", actor="t"
        )
    assert _fields(exc) == {"username"}


def test_secrets_are_never_stored_in_the_clear(session: Session, settings: Settings) -> None:
    who = enrolled(session, settings, username="kin", role="system_admin", unit_code="VN")
    row = who.official
    assert row.password_hash is not None and row.password_hash.startswith("$argon2id$")
    assert PASSWORD not in row.password_hash
    assert row.totp_secret_encrypted is not None and who.secret not in row.totp_secret_encrypted
    assert row.enrolment_token_hash is None  # spent


def test_enrolment_link_is_single_use_and_expires(session: Session, settings: Settings) -> None:
    now = dt.datetime.now(dt.UTC)
    enrolment = officials.create(
        session, settings, username="moi", role="system_admin", unit_code="VN", actor="t", now=now
    )
    later = now + dt.timedelta(hours=settings.enrolment_link_hours, seconds=1)
    with pytest.raises(EnrolmentLinkInvalid):
        officials.by_enrolment_token(session, enrolment.token, now=later)
    secret = crypto.decrypt_secret(settings, enrolment.official.totp_secret_encrypted or "")
    assert secret is not None
    officials.complete_enrolment(
        session,
        settings,
        token=enrolment.token,
        password=PASSWORD,
        password_again=PASSWORD,
        code=pyotp.TOTP(secret).at(now),
        now=now,
    )
    with pytest.raises(EnrolmentLinkInvalid):
        officials.by_enrolment_token(session, enrolment.token, now=now)


def test_enrolment_refuses_weak_password_mismatch_and_wrong_code(
    session: Session, settings: Settings
) -> None:
    enrolment = officials.create(
        session, settings, username="yeu", role="system_admin", unit_code="VN", actor="t"
    )
    with pytest.raises(InvalidOfficial) as exc:
        officials.complete_enrolment(
            session,
            settings,
            token=enrolment.token,
            password="short",
            password_again="other",
            code="000000",
        )
    assert _fields(exc) == {"password", "password_again", "code"}
    assert enrolment.official.password_hash is None
    assert enrolment.official.enrolled_at is None


def test_sign_in_needs_both_factors(session: Session, settings: Settings) -> None:
    who = enrolled(session, settings, username="hai", role="system_admin", unit_code="VN")
    now = dt.datetime.now(dt.UTC)
    first = officials.sign_in_password(
        session, settings, username="hai", password=PASSWORD, client_ip="192.0.2.9", now=now
    )
    assert first.session.stage == "password"
    # A password-stage session is not a signed-in session.
    found = officials.resolve(session, settings, first.token, now=now)
    assert found is not None and found[0].stage == "password"
    with pytest.raises(InvalidCredentials):
        officials.sign_in_totp(
            session, settings, token=first.token, code="123456", client_ip="192.0.2.9", now=now
        )
    full = officials.sign_in_totp(
        session, settings, token=first.token, code=who.code(now), client_ip="192.0.2.9", now=now
    )
    assert full.session.stage == "full"
    assert full.token != first.token
    # The pending session is spent, and the same code cannot be used again.
    with pytest.raises(SessionExpired):
        officials.sign_in_totp(
            session, settings, token=first.token, code=who.code(now), client_ip="192.0.2.9"
        )


def test_a_code_is_never_accepted_twice(session: Session, settings: Settings) -> None:
    who = enrolled(session, settings, username="ba-a", role="system_admin", unit_code="VN")
    now = dt.datetime.now(dt.UTC)
    sign_in(session, settings, who)
    first = officials.sign_in_password(
        session, settings, username="ba-a", password=PASSWORD, client_ip="192.0.2.9", now=now
    )
    replay = who.official.totp_last_step
    assert replay is not None
    replay_time = dt.datetime.fromtimestamp(replay * 30, dt.UTC)
    with pytest.raises(InvalidCredentials):
        officials.sign_in_totp(
            session,
            settings,
            token=first.token,
            code=who.code(replay_time),
            client_ip="192.0.2.9",
            now=replay_time,
        )


def test_unknown_user_wrong_password_and_unenrolled_look_the_same(
    session: Session, settings: Settings
) -> None:
    enrolled(session, settings, username="bon", role="system_admin", unit_code="VN")
    officials.create(
        session, settings, username="nam", role="system_admin", unit_code="VN", actor="t"
    )
    messages = set()
    for username, password in (("bon", "wrong-password!"), ("nobody", PASSWORD), ("nam", "x")):
        with pytest.raises(InvalidCredentials) as exc:
            officials.sign_in_password(
                session, settings, username=username, password=password, client_ip="192.0.2.3"
            )
        messages.add(exc.value.message)
    assert len(messages) == 1


def test_lockout_after_repeated_failures(session: Session, settings: Settings) -> None:
    enrolled(session, settings, username="sau", role="system_admin", unit_code="VN")
    now = dt.datetime.now(dt.UTC)
    for _ in range(settings.login_max_failures):
        with pytest.raises(InvalidCredentials):
            officials.sign_in_password(
                session, settings, username="sau", password="nope", client_ip="192.0.2.4", now=now
            )
    # Locked: even the right password is refused, with how long to wait.
    with pytest.raises(TooManyAttempts) as exc:
        officials.sign_in_password(
            session, settings, username="sau", password=PASSWORD, client_ip="192.0.2.5", now=now
        )
    assert 0 < exc.value.retry_after <= settings.login_lockout_minutes * 60
    after = now + dt.timedelta(minutes=settings.login_lockout_minutes, seconds=1)
    ok = officials.sign_in_password(
        session, settings, username="sau", password=PASSWORD, client_ip="192.0.2.5", now=after
    )
    assert ok.session.stage == "password"


def test_unknown_usernames_lock_out_too(session: Session, settings: Settings) -> None:
    now = dt.datetime.now(dt.UTC)
    for _ in range(settings.login_max_failures):
        with pytest.raises(InvalidCredentials):
            officials.sign_in_password(
                session, settings, username="ghost", password="x", client_ip="192.0.2.6", now=now
            )
    with pytest.raises(TooManyAttempts):
        officials.sign_in_password(
            session, settings, username="ghost", password="x", client_ip="192.0.2.7", now=now
        )


def test_throttle_per_client_address(session: Session, database_url: str) -> None:
    settings = settings_for(database_url, login_ip_max_failures=3, login_max_failures=50)
    enrolled(session, settings, username="bay", role="system_admin", unit_code="VN")
    now = dt.datetime.now(dt.UTC)
    for n in range(3):
        with pytest.raises(InvalidCredentials):
            officials.sign_in_password(
                session,
                settings,
                username=f"u{n}x",
                password="x",
                client_ip="198.51.100.1",
                now=now,
            )
    with pytest.raises(TooManyAttempts):
        officials.sign_in_password(
            session, settings, username="bay", password=PASSWORD, client_ip="198.51.100.1", now=now
        )
    # Another address is not affected.
    officials.sign_in_password(
        session, settings, username="bay", password=PASSWORD, client_ip="198.51.100.2", now=now
    )


def test_sessions_expire_when_idle_and_sign_out_everywhere(
    session: Session, settings: Settings
) -> None:
    who = enrolled(session, settings, username="tam", role="system_admin", unit_code="VN")
    one, two = sign_in(session, settings, who), sign_in(session, settings, who)
    now = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)
    assert officials.resolve(session, settings, one, now=now) is not None
    idle = now + dt.timedelta(minutes=settings.session_idle_minutes + 1)
    assert officials.resolve(session, settings, one, now=idle) is None
    officials.sign_out_everywhere(session, who.official.id)
    assert officials.resolve(session, settings, one, now=now) is None
    assert officials.resolve(session, settings, two, now=now) is None


def test_deactivated_official_cannot_sign_in(session: Session, settings: Settings) -> None:
    who = enrolled(session, settings, username="chin", role="system_admin", unit_code="VN")
    token = sign_in(session, settings, who)
    officials.deactivate(session, who.official)
    assert officials.resolve(session, settings, token) is None
    with pytest.raises(InvalidCredentials):
        officials.sign_in_password(
            session, settings, username="chin", password=PASSWORD, client_ip="192.0.2.8"
        )


def test_reset_enrolment_revokes_password_factor_and_sessions(
    session: Session, settings: Settings
) -> None:
    who = enrolled(session, settings, username="muoi", role="system_admin", unit_code="VN")
    token = sign_in(session, settings, who)
    old_secret = who.official.totp_secret_encrypted
    enrolment = officials.reset_enrolment(session, settings, who.official)
    assert officials.resolve(session, settings, token) is None
    assert who.official.password_hash is None
    assert who.official.totp_secret_encrypted != old_secret
    assert officials.by_enrolment_token(session, enrolment.token) is who.official


def test_totp_secret_under_another_key_is_unreadable(database_url: str) -> None:
    one = settings_for(database_url)
    other = settings_for(database_url, secret_key="another-secret-key-0123456789-xyz")
    stored = crypto.encrypt_secret(one, "JBSWY3DPEHPK3PXP")
    assert crypto.decrypt_secret(one, stored) == "JBSWY3DPEHPK3PXP"
    assert crypto.decrypt_secret(other, stored) is None


def _failures(session: Session) -> list[dt.datetime]:
    return list(session.scalars(select(LoginFailure.at).order_by(LoginFailure.id)))


def test_sign_in_forgets_failures_older_than_a_day(session: Session, settings: Settings) -> None:
    """Old failed sign-ins are purged by the sign-ins themselves (no job to schedule): once the
    oldest is two days old, everything older than a day goes; newer rows stay counted."""
    enrolled(session, settings, username="tam", role="system_admin", unit_code="VN")
    now = dt.datetime.now(dt.UTC)

    def fail(at: dt.datetime) -> None:
        with pytest.raises(InvalidCredentials):
            officials.sign_in_password(
                session, settings, username="tam", password="nope", client_ip="192.0.2.9", now=at
            )

    fail(now - dt.timedelta(days=3))
    fail(now - dt.timedelta(hours=30))
    assert len(_failures(session)) == 2  # the oldest was not yet two days old then
    fail(now)  # now it is: everything older than a day goes before this failure is counted
    assert _failures(session) == [now]
    signed = officials.sign_in_password(
        session, settings, username="tam", password=PASSWORD, client_ip="192.0.2.9", now=now
    )
    assert signed.session.stage == "password"
    assert _failures(session) == [now]
    assert officials.purge_failures_if_due(session, now=now + dt.timedelta(days=1)) == 0
    assert officials.purge_failures_if_due(session, now=now + dt.timedelta(days=3)) == 1
