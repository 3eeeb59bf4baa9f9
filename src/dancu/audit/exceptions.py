"""Errors of the access log; each names the field and the problem, and nothing is written."""

from __future__ import annotations

from dancu.errors import ConflictError, ValidationFailed


class InvalidAccessEntry(ValidationFailed):
    """An entry to append is incomplete or malformed; ``problems`` lists every one found.

    ``Problem.row`` is the entry's position (from 1) in the batch given to ``record``.
    """

    code = "invalid_access_entry"


class InvalidAccessQuery(ValidationFailed):
    """A query of the log has a bad limit, offset, time range or filter."""

    code = "invalid_access_query"


class ChainConflict(ConflictError):
    """Another writer appended at the position this one computed; nothing was written.

    The append lock prevents this; the primary key on the chain position is the last line of
    defence (for example a transaction that read the head from an older snapshot).
    """

    code = "access_log_conflict"


# What every writer that meets ``ChainConflict`` says (``record``, the bulk writers, the
# verification group commit).
CHAIN_CONFLICT = (
    "another writer appended to the access log at the same position; nothing was written, "
    "roll back and try again"
)


class InvalidAnchor(ValidationFailed):
    """An external anchor (entry id and hash) given to ``verify`` is malformed."""

    code = "invalid_anchor"
