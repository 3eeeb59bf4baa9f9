"""Bodies of the back office's JSON API (``/api/v1/registry``).

Values are JSON strings as an official would type them (dates ``YYYY-MM-DD``, codes as
text): the flows check them and name the field at fault, the same way for the API and the
pages. Unknown fields and wrong JSON types are refused (``extra="forbid"``, strict types).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class BirthCreate(Body):
    full_name: str
    birth_date: str = Field(description="YYYY-MM-DD, or YYYY-MM / YYYY when only that is known")
    sex: str = Field(description="M or F")
    permanent_commune_code: str = Field(description="5-digit commune code (2025 units)")
    permanent_address: str | None = None
    father_id: str | None = None
    mother_id: str | None = None
    household_code: str | None = Field(
        default=None, description="join this household; omitted: the child founds a new one"
    )
    relationship_to_head: str | None = None
    ethnicity: str | None = None
    religion: str | None = None
    nationality: str | None = None
    place_of_origin: str | None = None
    birth_place_code: str | None = Field(
        default=None, description="3-digit ID prefix; default: the commune's province"
    )
    registered_on: str | None = Field(default=None, description="YYYY-MM-DD; default today")
    legal_basis: str | None = None


class DeathCreate(Body):
    death_date: str = Field(description="YYYY-MM-DD")
    legal_basis: str | None = None
    version: int = Field(description="the record version you read (refused if it changed since)")


class Why(Body):
    reason: str = Field(description="why the change is made (written to the history)")
    legal_basis: str | None = None


class ResidenceChange(Why):
    """Leave the current household and commune for another (permanent residence)."""

    commune_code: str
    address: str | None = None
    household_code: str | None = Field(
        default=None, description="join this household; omitted: found a new one"
    )
    relationship_to_head: str | None = Field(
        default=None, description="required when joining a household"
    )
    moved_on: str | None = Field(default=None, description="YYYY-MM-DD; default today")
    version: int = Field(description="the record version you read (refused if it changed since)")


class HouseholdMove(Why):
    """The whole household moves to a new address."""

    commune_code: str
    address: str
    moved_on: str | None = None
    versions: dict[str, int] = Field(
        description="personal ID → the version you read, for every member the change touches"
    )


class TemporaryResidenceCreate(Why):
    commune_code: str
    address: str
    valid_from: str
    valid_until: str = Field(description="YYYY-MM-DD; at most two years after valid_from")
    version: int = Field(description="the record version you read (refused if it changed since)")


class HouseholdSplit(Why):
    new_head_id: str
    members: dict[str, str] = Field(
        default_factory=dict,
        description="each other leaving member: personal ID → relationship to the new head",
    )
    address: str | None = None
    split_on: str | None = None
    versions: dict[str, int] = Field(
        description="personal ID → the version you read, for every member the change touches"
    )


class HeadChange(Why):
    new_head_id: str
    relationships: dict[str, str] = Field(
        default_factory=dict,
        description="every other living member: personal ID → relationship to the new head",
    )
    versions: dict[str, int] = Field(
        description="personal ID → the version you read, for every member the change touches"
    )


class FieldCorrection(Body):
    field: str
    value: str
    reason: str
    legal_basis: str
    version: int = Field(description="the record version you read (refused if it changed since)")


class DuplicateDismissal(Body):
    reason: str


class DuplicateMerge(Body):
    keep_id: str = Field(description="the record to keep; the other is merged into it")
    reason: str
    versions: dict[str, int] = Field(
        description="personal ID → the version you read, for every member the change touches"
    )
