"""The one ``StrEnum`` base and the enumerations shared across domains."""

from __future__ import annotations

from enum import StrEnum


class Sex(StrEnum):
    MALE = "M"
    FEMALE = "F"


class LifeStatus(StrEnum):
    ALIVE = "alive"
    DECEASED = "deceased"


class DatePrecision(StrEnum):
    """How much of a birth date is known (Giấy khai sinh may carry only month/year or year)."""

    DAY = "day"
    MONTH = "month"
    YEAR = "year"


class Relationship(StrEnum):
    """Relationship to the head of household (quan hệ với chủ hộ)."""

    HEAD = "head"
    SPOUSE = "spouse"
    CHILD = "child"
    PARENT = "parent"
    SIBLING = "sibling"
    GRANDCHILD = "grandchild"
    OTHER = "other"


class ResidenceKind(StrEnum):
    """Law on Residence 68/2020: thường trú, tạm trú, nơi ở hiện tại, lưu trú, tạm vắng."""

    PERMANENT = "permanent"
    TEMPORARY = "temporary"
    CURRENT = "current"
    STAY = "stay"
    TEMPORARY_ABSENCE = "temporary_absence"


class CivilEventKind(StrEnum):
    BIRTH = "birth"
    DEATH = "death"
    MARRIAGE = "marriage"
    DIVORCE = "divorce"
    CORRECTION = "correction"


class ChangeSource(StrEnum):
    """Where a change to a person came from."""

    IMPORT = "import"
    OFFICIAL = "official"
    EVENT = "event"
    SEED = "seed"


class DuplicateStatus(StrEnum):
    OPEN = "open"
    NOT_SAME = "not_same"
    MERGED = "merged"


class ActorKind(StrEnum):
    """Who read a person's data, for the access log (nhật ký khai thác)."""

    OFFICIAL = "official"
    CLIENT = "client"
    CITIZEN = "citizen"
    SYSTEM = "system"


class AccessChannel(StrEnum):
    """Through which door a person's data was read, for the access log."""

    WEB = "web"
    API = "api"
    VERIFY = "verify"
    PORTAL = "portal"
    CLI = "cli"
    BATCH = "batch"


class OfficialRole(StrEnum):
    """What a back-office official may do (docs/backoffice.md); the unit scopes where."""

    COMMUNE_OFFICER = "commune_officer"
    PROVINCE_OFFICER = "province_officer"
    MINISTRY_AUDITOR = "ministry_auditor"
    SYSTEM_ADMIN = "system_admin"


class OrganizationKind(StrEnum):
    """What kind of organisation a partner is (bộ, địa phương, ngân hàng, nhà mạng...)."""

    MINISTRY = "ministry"
    LOCALITY = "locality"
    BANK = "bank"
    TELECOM = "telecom"
    HOSPITAL = "hospital"
    INSURER = "insurer"
    OTHER = "other"


class ClientStatus(StrEnum):
    """A partner API client: ``suspended`` is refused at the token endpoint and the API."""

    ACTIVE = "active"
    SUSPENDED = "suspended"


class ClientAuthMethod(StrEnum):
    """How a partner client authenticates at the token endpoint (RFC 7591 names)."""

    CLIENT_SECRET_BASIC = "client_secret_basic"
    PRIVATE_KEY_JWT = "private_key_jwt"


class ReconcileEngine(StrEnum):
    """Where ``dancu reconcile`` runs (``--engine``): DuckDB on this machine, or Apache Spark."""

    DUCKDB = "duckdb"
    SPARK = "spark"
