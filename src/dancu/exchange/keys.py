"""The ES256 keys that sign access tokens (RFC 9068 §2.1), and their rotation.

The newest key signs. Rotating adds a new key and marks the previous one retired; a retired
key stays in the published JWKS (and is trusted for verification) until every token it
signed has expired (retirement + token lifetime + leeway), so a rotation never breaks a
token still valid. Private keys are stored as PKCS#8 PEM encrypted with a password derived
from ``DANCU_SECRET_KEY`` (HKDF-SHA256), never in clear and never logged.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc.jwk import ECKey
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from dancu.exchange.exceptions import NoSigningKey
from dancu.exchange.models import SigningKey

log = logging.getLogger(__name__)

ALG = "ES256"
LEEWAY_SECONDS = 60


def _password(secret: str) -> bytes:
    """The key-encryption password: HKDF-SHA256 of the server secret, for this use only."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"dancu.exchange.signing-key"
    ).derive(secret.encode("utf-8"))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A published verification key: its ``kid`` and its JWK (RFC 7517)."""

    kid: str
    jwk: dict[str, object]


def create(session: Session, *, secret: str, now: dt.datetime | None = None) -> SigningKey:
    """Generate a new P-256 key pair; it signs from now on. The previous signing key is
    retired (still trusted until its tokens expire)."""
    now = now or _now()
    for current in session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None))):
        current.retired_at = now
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = ECKey.import_key(private.public_key())
    kid = jwk.thumbprint()  # RFC 7638: stable, derived from the key itself
    public = {**jwk.as_dict(private=False), "kid": kid, "alg": ALG, "use": "sig"}
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(_password(secret)),
    ).decode("ascii")
    key = SigningKey(kid=kid, alg=ALG, public_jwk=public, private_pem=pem, created_at=now)
    session.add(key)
    session.flush()
    log.info("signing key %s created", kid)
    return key


rotate = create


def current(session: Session) -> SigningKey | None:
    """The key that signs now: the newest one not retired."""
    return session.scalars(
        select(SigningKey)
        .where(SigningKey.retired_at.is_(None))
        .order_by(SigningKey.created_at.desc())
        .limit(1)
    ).first()


def ensure(session: Session, *, secret: str) -> SigningKey:
    """The signing key, created on first use (a fresh install signs without a setup step)."""
    key = current(session)
    return key if key is not None else create(session, secret=secret)


def published(
    session: Session, *, token_seconds: int, now: dt.datetime | None = None
) -> list[PublicKey]:
    """The keys a resource server must trust now: the signing key and every retired key
    whose tokens may still be valid, newest first (the JWKS, RFC 7517 §5)."""
    now = now or _now()
    horizon = now - dt.timedelta(seconds=token_seconds + LEEWAY_SECONDS)
    rows = session.scalars(
        select(SigningKey)
        .where(or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > horizon))
        .order_by(SigningKey.created_at.desc())
    )
    return [PublicKey(row.kid, dict(row.public_jwk)) for row in rows]


def private_key(key: SigningKey, *, secret: str) -> ECKey:
    """The signing key's private half as a JWK with its ``kid``, decrypted for signing."""
    try:
        loaded = serialization.load_pem_private_key(
            key.private_pem.encode("ascii"), password=_password(secret)
        )
    except ValueError:
        raise NoSigningKey(
            "the signing key cannot be decrypted: DANCU_SECRET_KEY changed since it was "
            "created; run `dancu exchange keys rotate`"
        ) from None
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise NoSigningKey("the stored signing key is not an EC key")
    return ECKey.import_key(loaded, parameters={"kid": key.kid, "alg": ALG, "use": "sig"})
