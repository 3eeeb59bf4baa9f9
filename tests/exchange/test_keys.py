"""Signing keys: created on first use, rotated, published until their tokens expire, and
never stored in clear."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from dancu.exchange import keys
from dancu.exchange.exceptions import NoSigningKey

SECRET = "a-test-secret-of-at-least-32-characters!"
T0 = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.UTC)


def test_rotation_keeps_the_old_key_published_until_its_tokens_expire(session: Session) -> None:
    first = keys.create(session, secret=SECRET, now=T0)
    second = keys.rotate(session, secret=SECRET, now=T0 + dt.timedelta(hours=1))
    assert keys.current(session) == second
    assert first.retired_at is not None

    def kids(at: dt.datetime) -> list[str]:
        return [k.kid for k in keys.published(session, token_seconds=300, now=at)]

    rotated = T0 + dt.timedelta(hours=1)
    assert kids(rotated + dt.timedelta(seconds=300)) == [second.kid, first.kid]
    assert kids(rotated + dt.timedelta(seconds=300 + keys.LEEWAY_SECONDS + 1)) == [second.kid]


def test_the_private_key_is_stored_encrypted_and_needs_the_secret(session: Session) -> None:
    key = keys.ensure(session, secret=SECRET)
    assert "ENCRYPTED PRIVATE KEY" in key.private_pem
    assert "d" not in key.public_jwk
    assert keys.private_key(key, secret=SECRET).kid == key.kid
    with pytest.raises(NoSigningKey, match="rotate"):
        keys.private_key(key, secret="another-secret-of-at-least-32-characters")
    assert keys.ensure(session, secret=SECRET) == key
