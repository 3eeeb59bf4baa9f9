"""One root error for the whole project; each domain subclasses it.

Services raise these, never ``HTTPException``; the web layer renders them as a stable JSON
error and the CLI as a message on stderr with exit code 1.
"""

from __future__ import annotations


class DancuError(Exception):
    """A failure the caller can act on: machine ``code``, human ``message``, HTTP ``status``."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class NotFoundError(DancuError):
    code = "not_found"
    status = 404


class ConflictError(DancuError):
    code = "conflict"
    status = 409


class UnauthorizedError(DancuError):
    """No valid credentials: sign in (or present a valid token) first."""

    code = "unauthorized"
    status = 401


class ForbiddenError(DancuError):
    """Authenticated, but this role or scope may not do this."""

    code = "forbidden"
    status = 403


class ValidationFailed(DancuError):
    """Bad input; ``problems`` lists every (row, field, reason) found."""

    code = "invalid_input"
    status = 400

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class Problem:
    """One thing wrong with one row or field of the input."""

    __slots__ = ("field", "reason", "row")

    def __init__(self, row: int | None, field: str | None, reason: str) -> None:
        self.row = row
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field:
            where.append(f"column {self.field}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason

    def __repr__(self) -> str:
        return f"Problem({self.row!r}, {self.field!r}, {self.reason!r})"

    def as_dict(self) -> dict[str, object]:
        return {"row": self.row, "field": self.field, "reason": self.reason}
