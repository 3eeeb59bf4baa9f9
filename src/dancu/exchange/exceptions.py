"""Errors of the partner exchange, each with its machine code and HTTP status.

``headers`` are added to the JSON error response: ``WWW-Authenticate`` on a 401 (RFC 6750
§3) and ``Retry-After`` on a 429 (RFC 6585 §4).
"""

from __future__ import annotations

from dancu.errors import ConflictError, DancuError, NotFoundError, ValidationFailed


class InvalidToken(DancuError):
    """No bearer token, or one that is malformed, expired, forged or signed by another key."""

    code = "invalid_token"
    status = 401

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class InsufficientScope(DancuError):
    """The token does not carry the product (scope) this endpoint needs."""

    code = "insufficient_scope"
    status = 403

    def __init__(self, scope: str) -> None:
        super().__init__(f"this endpoint needs the scope {scope}")
        self.headers = {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'}


class PurposeNotRegistered(DancuError):
    """The stated purpose is not one the client registered (purpose limitation, Law 91/2025)."""

    code = "purpose_not_registered"
    status = 403


class ClientSuspended(DancuError):
    """The client was suspended by an administrator; its tokens are refused at once."""

    code = "client_suspended"
    status = 403


class QuotaExceeded(DancuError):
    """The client is past its requests per minute or per day."""

    code = "quota_exceeded"
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


class BodyTooLarge(DancuError):
    code = "body_too_large"
    status = 413


class ClientGone(DancuError):
    """The client disconnected before its request was read (499 in nginx's terms)."""

    code = "client_disconnected"
    status = 400


class TooManyItems(ValidationFailed):
    code = "too_many_items"


class AccessLogUnavailable(DancuError):
    """The access log could not be written: nothing is answered without its entry."""

    code = "access_log_unavailable"
    status = 503

    def __init__(
        self, message: str = "the access log could not be written; nothing was answered, "
        "retry later",
    ) -> None:  # fmt: skip
        super().__init__(message)


class UnknownClient(NotFoundError):
    code = "client_not_found"


class UnknownOrganization(NotFoundError):
    code = "organization_not_found"


class DuplicateOrganization(ConflictError):
    code = "organization_exists"


class InvalidClientSettings(ValidationFailed):
    """A scope, purpose, quota or key set given for a client is not acceptable."""

    code = "invalid_client_settings"


class NoSigningKey(DancuError):
    code = "no_signing_key"
    status = 500
