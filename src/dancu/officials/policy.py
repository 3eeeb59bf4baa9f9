"""Who may do what: one table from (role, action) to allowed. Where is the scope's business.

Every back-office route names exactly one ``Action``; the web layer refuses it unless
``allowed(role, action)``, and the flows then refuse any person, household or commune
outside the official's unit (``dancu.registry.scope``). The authorisation-matrix test walks
the app's route table against this table, so a route without an action fails the build.

Decisions (docs/backoffice.md):
- The ministry auditor reads everything in the country, the access log included, and
  changes nothing.
- The system administrator manages accounts and reads no personal data (separation of
  duties: whoever can create an account cannot also use the register unnoticed).
- Commune and province officers keep the register of their unit; they do not read the
  access log (auditors do) and do not manage accounts.
- Partner organisations and their API clients belong to the whole country: only a system
  administrator of national scope manages them (``NATIONAL``); a province's administrator
  neither sees nor changes them.
"""

from __future__ import annotations

from enum import StrEnum

from dancu.enums import OfficialRole
from dancu.errors import ForbiddenError


class Action(StrEnum):
    """Everything an official can ask the back office to do."""

    OWN_ACCOUNT = "own_account"  # see who I am, sign out everywhere
    SEARCH = "search"
    READ_CITIZEN = "read_citizen"
    REGISTER_BIRTH = "register_birth"
    RECORD_DEATH = "record_death"
    CHANGE_RESIDENCE = "change_residence"
    TEMPORARY_RESIDENCE = "temporary_residence"
    SPLIT_HOUSEHOLD = "split_household"
    CHANGE_HEAD = "change_head"
    CORRECT_FIELD = "correct_field"
    READ_DUPLICATES = "read_duplicates"
    RESOLVE_DUPLICATE = "resolve_duplicate"
    READ_QUALITY = "read_quality"
    READ_ACCESS_LOG = "read_access_log"
    MANAGE_OFFICIALS = "manage_officials"
    MANAGE_CLIENTS = "manage_clients"  # partner organisations and their API clients


READS = frozenset(
    {
        Action.OWN_ACCOUNT,
        Action.SEARCH,
        Action.READ_CITIZEN,
        Action.READ_DUPLICATES,
        Action.READ_QUALITY,
    }
)
CHANGES = frozenset(
    {
        Action.REGISTER_BIRTH,
        Action.RECORD_DEATH,
        Action.CHANGE_RESIDENCE,
        Action.TEMPORARY_RESIDENCE,
        Action.SPLIT_HOUSEHOLD,
        Action.CHANGE_HEAD,
        Action.CORRECT_FIELD,
        Action.RESOLVE_DUPLICATE,
    }
)

RULES: dict[OfficialRole, frozenset[Action]] = {
    OfficialRole.COMMUNE_OFFICER: READS | CHANGES,
    OfficialRole.PROVINCE_OFFICER: READS | CHANGES,
    OfficialRole.MINISTRY_AUDITOR: READS | {Action.READ_ACCESS_LOG},
    OfficialRole.SYSTEM_ADMIN: frozenset(
        {Action.OWN_ACCOUNT, Action.MANAGE_OFFICIALS, Action.MANAGE_CLIENTS}
    ),
}

# Actions on what belongs to the whole country: allowed only to an official of national
# scope (unit "VN"), whatever the role allows.
NATIONAL = frozenset({Action.MANAGE_CLIENTS})

# Actions that concern one person, household or duplicate pair, and so also need scope.
PERSONAL = frozenset(
    {
        Action.READ_CITIZEN,
        Action.RECORD_DEATH,
        Action.CHANGE_RESIDENCE,
        Action.TEMPORARY_RESIDENCE,
        Action.SPLIT_HOUSEHOLD,
        Action.CHANGE_HEAD,
        Action.CORRECT_FIELD,
        Action.READ_DUPLICATES,
        Action.RESOLVE_DUPLICATE,
    }
)


def allowed(role: str, action: Action) -> bool:
    """Whether an official with ``role`` may ever do ``action`` (scope aside)."""
    try:
        return action in RULES[OfficialRole(role)]
    except ValueError:
        return False


def allowed_at(role: str, action: Action, level: str) -> bool:
    """Whether an official with ``role`` and a unit at ``level`` ("national", "province",
    "commune") may do ``action``: the role allows it and, for ``NATIONAL`` actions, the
    official's unit is the country."""
    return allowed(role, action) and (action not in NATIONAL or level == "national")


def authorize_at(role: str, action: Action, level: str) -> None:
    """Refuse with 403 unless ``allowed_at``."""
    authorize(role, action)
    if not allowed_at(role, action, level):
        raise ForbiddenError(
            "only an administrator of national scope may do this", code="national_only"
        )


def authorize(role: str, action: Action) -> None:
    """Refuse with 403 unless the role allows the action."""
    if not allowed(role, action):
        raise ForbiddenError("your role does not allow this", code="role_forbidden")
