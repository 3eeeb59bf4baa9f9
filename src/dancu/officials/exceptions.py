"""Errors of the back office's accounts; each says what to do next and reveals nothing more.

A failed sign-in never says whether the username exists or which factor was wrong.
"""

from __future__ import annotations

from dancu.errors import DancuError, NotFoundError, UnauthorizedError, ValidationFailed


class InvalidCredentials(UnauthorizedError):
    code = "invalid_credentials"


class SessionExpired(UnauthorizedError):
    code = "session_expired"


class TooManyAttempts(DancuError):
    """Too many failed sign-ins from this address or for this username; ``retry_after`` is
    the number of seconds until the next attempt is accepted."""

    code = "too_many_attempts"
    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class EnrolmentLinkInvalid(NotFoundError):
    """The enrolment link is unknown, used or expired: ask an administrator for a new one."""

    code = "enrolment_link_invalid"


class InvalidOfficial(ValidationFailed):
    """A new official or an enrolment form has bad fields; ``problems`` names each."""

    code = "invalid_official"


class OfficialNotFound(NotFoundError):
    code = "official_not_found"
