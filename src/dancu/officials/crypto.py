"""The secrets of the back office: password hashes, TOTP factors, tokens and CSRF tokens.

- Passwords: argon2id (RFC 9106) through argon2-cffi, with cost parameters from settings so
  that tests can run cheap and production strong; a hash made with older parameters is
  re-made at the next successful sign-in.
- TOTP (RFC 6238, 30-second steps, 6 digits, SHA-1 as every authenticator app expects):
  secrets from pyotp, stored encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a key
  derived by HKDF-SHA256 from the server's secret key. A code is accepted one step early or
  late for clock drift, and never twice (the caller keeps the last accepted step).
- Session and enrolment tokens: 256 random bits, stored as their SHA-256.
- CSRF: HMAC-SHA256 of the session (or pre-session) token under a key derived from the
  secret key; a synchroniser token that needs no storage and changes with every session.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from functools import lru_cache

import pyotp
import segno
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dancu.config import Settings

TOTP_ISSUER = "dancu"
TOTP_STEP_SECONDS = 30


def new_token() -> str:
    """A 256-bit random token, URL-safe: session cookies, enrolment links, pre-sessions."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored for a token: its SHA-256 in hex (the token itself is never stored)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _derive(settings: Settings, purpose: bytes) -> bytes:
    return _derive_cached(settings.secret_key.get_secret_value(), purpose)


@lru_cache(maxsize=16)
def _derive_cached(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret.encode("utf-8")
    )


@lru_cache(maxsize=4)
def _hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)


def hasher(settings: Settings) -> PasswordHasher:
    return _hasher(settings.argon2_time_cost, settings.argon2_memory_kib)


def hash_password(settings: Settings, password: str) -> str:
    return hasher(settings).hash(password)


def verify_password(settings: Settings, stored: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored``. With no stored hash (unknown user, not yet
    enrolled) a dummy hash is still checked, so the answer takes the same time."""
    ph = hasher(settings)
    try:
        return ph.verify(stored or _dummy_hash(settings), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(settings: Settings, stored: str) -> bool:
    return hasher(settings).check_needs_rehash(stored)


def _dummy_hash(settings: Settings) -> str:
    return _dummy_for(settings.argon2_time_cost, settings.argon2_memory_kib)


@lru_cache(maxsize=4)
def _dummy_for(time_cost: int, memory_kib: int) -> str:
    return _hasher(time_cost, memory_kib).hash(secrets.token_urlsafe(16))


def _fernet(settings: Settings) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_derive(settings, b"dancu.officials.totp")))


def new_totp_secret() -> str:
    """A fresh base32 TOTP secret (160 bits)."""
    return pyotp.random_base32(32)


def encrypt_secret(settings: Settings, secret: str) -> str:
    return _fernet(settings).encrypt(secret.encode("ascii")).decode("ascii")


def decrypt_secret(settings: Settings, stored: str) -> str | None:
    """The TOTP secret, or None if it was encrypted under another secret key."""
    try:
        return _fernet(settings).decrypt(stored.encode("ascii")).decode("ascii")
    except InvalidToken:
        return None


def provisioning_uri(secret: str, username: str) -> str:
    """The ``otpauth://totp/…`` URI an authenticator app reads from the enrolment QR."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=TOTP_ISSUER)


def qr_svg(uri: str) -> str:
    """The URI as an inline SVG QR code (no image file, no network)."""
    return str(segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff"))


def totp_step(secret: str, code: str, now: dt.datetime) -> int | None:
    """The time step whose code equals ``code`` (the current one, or one either side for
    clock drift), else None. The caller refuses a step it has already accepted."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // TOTP_STEP_SECONDS
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.at(step * TOTP_STEP_SECONDS), code):
            return step
    return None


def csrf_token(settings: Settings, binding: str) -> str:
    """The CSRF token of a session: HMAC of its token, so it needs no storage."""
    key = _derive(settings, b"dancu.officials.csrf")
    return hmac.new(key, binding.encode("utf-8"), hashlib.sha256).hexdigest()


def csrf_valid(settings: Settings, binding: str, given: str | None) -> bool:
    if not given:
        return False
    return hmac.compare_digest(csrf_token(settings, binding), given)
