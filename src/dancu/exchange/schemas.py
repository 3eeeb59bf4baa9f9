"""The JSON bodies of the verification API (CONTRACTS §4); unknown fields are refused.

Each body has two readers that accept exactly the same documents (tests/exchange/
test_verify_body.py holds them to it): pydantic's schema, which /docs shows and which names
every problem of a bad body, and a msgspec struct, which reads a good body with every check
(types, lengths, unknown and missing fields) made in C while it parses. The routes read with
the struct and fall back to the schema only for a body the struct refuses.
"""

from __future__ import annotations

from typing import Annotated, Protocol

import msgspec
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


class Item(Protocol):
    """One batch item as either reader gives it (a ``VerifyItem`` or a ``ReadItem``)."""

    @property
    def personal_id(self) -> str: ...
    @property
    def full_name(self) -> str | None: ...
    @property
    def birth_date(self) -> str | None: ...
    @property
    def sex(self) -> str | None: ...
    @property
    def address(self) -> str | None: ...
    @property
    def purpose(self) -> str | None: ...


_Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]


class ReadItem(msgspec.Struct, forbid_unknown_fields=True):
    """:class:`VerifyItem` as msgspec reads it."""

    personal_id: _Text
    full_name: _Text | None = None
    birth_date: _Text | None = None
    sex: _Text | None = None
    address: _Text | None = None
    purpose: _Text | None = None


class ReadRequest(ReadItem, kw_only=True, forbid_unknown_fields=True):
    """:class:`VerifyRequest` as msgspec reads it: an item whose purpose is required
    (keyword-only, so that a required field may follow the optional ones)."""

    purpose: _Text


class ReadBatch(msgspec.Struct, forbid_unknown_fields=True):
    """:class:`VerifyBatchRequest` as msgspec reads it."""

    purpose: _Text
    items: list[ReadItem]


class VerifyAnswer(BaseModel):
    result: str = Field(description="match, mismatch or not_found")
    fields: dict[str, bool]
    deceased: bool
    request_id: str


class VerifyBatchAnswer(BaseModel):
    results: list[dict[str, object]]
    request_id: str
