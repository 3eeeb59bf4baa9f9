"""The JSON bodies of the verification API (CONTRACTS §4); unknown fields are refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MAX_BATCH_ITEMS = 10_000
MAX_TEXT = 300


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=MAX_TEXT)


class VerifyItem(_Strict):
    """One person to verify: the number and any of the fields to compare."""

    personal_id: str = Field(description="12-digit personal ID or 9/12-digit CMND number")
    full_name: str | None = None
    birth_date: str | None = Field(None, description="YYYY-MM-DD, DD/MM/YYYY, a year...")
    sex: str | None = Field(None, description="M/F, Nam/Nữ, male/female")
    address: str | None = Field(None, description="commune code or address (old or new units)")
    purpose: str | None = Field(None, description="in a batch: overrides the batch's purpose")


class VerifyRequest(VerifyItem):
    purpose: str = Field(description="one of the client's registered purposes")


class VerifyBatchRequest(_Strict):
    purpose: str
    items: list[VerifyItem] = Field(description=f"up to {MAX_BATCH_ITEMS:,} bodies")


class VerifyAnswer(BaseModel):
    result: str = Field(description="match, mismatch or not_found")
    fields: dict[str, bool]
    deceased: bool
    request_id: str


class VerifyBatchAnswer(BaseModel):
    results: list[dict[str, object]]
    request_id: str
