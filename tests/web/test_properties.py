"""Properties of the back office's small parsers: redirect targets, purposes, CSRF, TOTP."""

from __future__ import annotations

import datetime as dt
import logging

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dancu.errors import ValidationFailed
from dancu.officials import crypto, purposes
from dancu.web.backoffice import RedactEnrolmentTokens
from dancu.web.ui import safe_next
from tests.officials.factories import settings_for

SETTINGS = settings_for("sqlite://")


@given(st.text())
def test_a_redirect_target_is_always_a_local_path(value: str) -> None:
    target = safe_next(value)
    assert target.startswith("/") and not target.startswith("//") and "\\" not in target
    assert target == value or target == "/registry"


@given(st.text(max_size=40), st.one_of(st.none(), st.text(max_size=250)))
def test_only_known_purposes_are_accepted(code: str, note: str | None) -> None:
    try:
        stated = purposes.stated(code, note)
    except ValidationFailed as exc:
        assert {p.field for p in exc.problems} <= {"purpose", "purpose_note"}
        return
    assert stated.split(":", 1)[0] in purposes.PURPOSES
    assert len(stated) <= 300


@given(st.text(min_size=1, max_size=64), st.text(min_size=1, max_size=64))
def test_a_csrf_token_is_bound_to_its_session(one: str, other: str) -> None:
    token = crypto.csrf_token(SETTINGS, one)
    assert crypto.csrf_valid(SETTINGS, one, token)
    if one != other:
        assert not crypto.csrf_valid(SETTINGS, other, token)
    assert not crypto.csrf_valid(SETTINGS, one, None)


@given(st.integers(min_value=1_600_000_000, max_value=2_500_000_000), st.text(max_size=10))
def test_totp_accepts_the_current_code_and_rejects_others(seconds: int, noise: str) -> None:
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    now = dt.datetime.fromtimestamp(seconds, dt.UTC)
    code = pyotp.TOTP(secret).at(now)
    assert crypto.totp_step(secret, code, now) == seconds // 30
    assert crypto.totp_step(secret, f" {code[:3]} {code[3:]} ", now) == seconds // 30
    far = now + dt.timedelta(minutes=5)
    assert crypto.totp_step(secret, code, far) is None or pyotp.TOTP(secret).at(far) == code
    if noise.strip() != code:
        assert crypto.totp_step(secret, noise, now) is None or noise.replace(" ", "") == code


@pytest.mark.parametrize("path", ["/registry?x=1", "/registry/citizens/001085000001"])
def test_local_paths_are_kept(path: str) -> None:
    assert safe_next(path) == path


def test_enrolment_tokens_never_reach_the_server_log() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1", "GET", "/enrol/Xm9-secret_token?x=1", "1.1", 200), None,
    )  # fmt: skip
    assert RedactEnrolmentTokens().filter(record)
    assert "secret_token" not in record.getMessage() and "/enrol/…" in record.getMessage()
