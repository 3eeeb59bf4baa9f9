"""The verification bodies are read by msgspec structs when valid and by the pydantic schema
otherwise: both readings must give the same answers and the same errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import msgspec
import pytest
from fastapi import FastAPI
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from dancu.errors import ValidationFailed
from dancu.exchange import routes
from dancu.exchange.schemas import (
    ReadBatch,
    ReadItem,
    ReadRequest,
    VerifyBatchRequest,
    VerifyItem,
    VerifyRequest,
)
from tests.exchange.helpers import PURPOSE, Partner, bearer, token_for
from tests.exchange.test_verify_api import _error
from tests.reconcile.helpers import ALIVE

pytestmark = pytest.mark.anyio

_CLAIM = {"personal_id": ALIVE, "full_name": "Nguyễn Văn Thử", "birth_date": "14/03/1985"}


@pytest.fixture
async def token(app: FastAPI, partner: Partner) -> str:
    return await token_for(app, partner)


async def _post(http: httpx.AsyncClient, token: str, path: str, body: bytes) -> httpx.Response:
    headers = {**bearer(token), "Content-Type": "application/json"}
    return await http.post(path, content=body, headers=headers)


def _fields(item: object) -> dict[str, Any]:
    return {name: getattr(item, name) for name in VerifyItem.model_fields}


def _strip(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "request_id"}


async def test_escaped_and_raw_unicode_give_the_same_answer(
    http: httpx.AsyncClient, token: str
) -> None:
    body = {**_CLAIM, "purpose": PURPOSE}
    raw = await _post(http, token, "/api/v1/verify", json.dumps(body, ensure_ascii=False).encode())
    escaped = await _post(http, token, "/api/v1/verify", json.dumps(body).encode())
    assert raw.status_code == escaped.status_code == 200
    assert _strip(raw.json()) == _strip(escaped.json())
    assert raw.json()["result"] == "match"


async def test_a_null_optional_field_is_as_if_absent(http: httpx.AsyncClient, token: str) -> None:
    with_null = {**_CLAIM, "sex": None, "purpose": PURPOSE}
    response = await _post(http, token, "/api/v1/verify", json.dumps(with_null).encode())
    assert response.status_code == 200, response.text
    assert set(response.json()["fields"]) == {"full_name", "birth_date"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"personal_id": "\\ud800", "purpose": "x"}', None),  # lone surrogate: not JSON text
        (b'{"personal_id": null, "purpose": "x"}', "personal_id"),
        (b'{"personal_id": "079085000001", "purpose": null}', "purpose"),
        (b'{"personal_id": "079085000001", "purpose": "x", "sex": 1}', "sex"),
        (b'["079085000001"]', None),
        (b'\xff\xfe{"personal_id": "079085000001"}', None),
    ],
)
async def test_bodies_off_the_plain_path_get_the_schemas_error(
    http: httpx.AsyncClient, token: str, body: bytes, field: str | None
) -> None:
    error = _error(await _post(http, token, "/api/v1/verify", body), 400, "invalid_input")
    if field is not None:
        assert field in error["message"]


async def test_a_text_past_300_characters_is_refused_by_both_endpoints(
    http: httpx.AsyncClient, token: str
) -> None:
    long_name = {**_CLAIM, "full_name": "A" * 301}
    single = await _post(http, token, "/api/v1/verify", json.dumps(
        {**long_name, "purpose": PURPOSE}).encode())  # fmt: skip
    assert "full_name" in _error(single, 400, "invalid_input")["message"]
    batch = await _post(http, token, "/api/v1/verify/batch", json.dumps(
        {"purpose": PURPOSE, "items": [_CLAIM, long_name]}).encode())  # fmt: skip
    message = _error(batch, 400, "invalid_input")["message"]
    assert "full_name" in message


async def test_a_batch_item_with_a_null_purpose_takes_the_batchs(
    http: httpx.AsyncClient, token: str
) -> None:
    body = {"purpose": PURPOSE, "items": [{**_CLAIM, "purpose": None}, _CLAIM]}
    response = await _post(http, token, "/api/v1/verify/batch", json.dumps(body).encode())
    assert response.status_code == 200, response.text
    assert [r["result"] for r in response.json()["results"]] == ["match", "match"]


@pytest.mark.parametrize("path", ["/api/v1/verify", "/api/v1/verify/batch"])
@pytest.mark.parametrize(
    "body",
    [b"[" * 10_000, b'{"items":' * 1_500, b'{"purpose": NaN, "items": []}', b"1" * 400],
    ids=["deep-array", "deep-object", "nan", "huge-number"],
)
async def test_json_no_reader_can_take_is_a_400(
    http: httpx.AsyncClient, token: str, path: str, body: bytes
) -> None:
    response = await _post(http, token, path, body)
    _error(response, 400, "invalid_input")


# lengths count characters: 300 of any plane, written raw or escaped, and no more
_TEXT = st.text(max_size=3) | st.sampled_from(
    ["A" * 300, "A" * 301, "ữ" * 300, "ữ" * 301, "😀" * 300, "😀" * 301]
)
_VALUE = st.none() | _TEXT | st.integers() | st.floats(allow_nan=False) | st.booleans()
_ITEM = (
    st.fixed_dictionaries(
        {"personal_id": _TEXT | st.none()},
        optional=dict.fromkeys([*VerifyItem.model_fields, "unknown"][1:], _VALUE),
    )
    | st.dictionaries(st.sampled_from([*VerifyItem.model_fields, "unknown"]), _VALUE, max_size=3)
    | st.integers()
)


@settings(max_examples=300, deadline=None)
@given(purpose=_TEXT | _VALUE, items=st.lists(_ITEM, max_size=4), raw=st.booleans())
@example(purpose="x", items=[{"personal_id": None}], raw=False)
@example(purpose="x", items=[{"personal_id": "1", "sex": None}, {"personal_id": None}], raw=False)
@example(purpose="x", items=[{"personal_id": "1", "full_name": "A" * 301}], raw=False)
@example(purpose="x", items=[{"personal_id": "1", "unknown": "1"}], raw=False)
@example(purpose="x", items=[{"personal_id": "1", "sex": 1}], raw=False)
@example(purpose="x", items=[{"sex": "M"}], raw=False)
@example(purpose="x", items=[], raw=False)
@example(purpose="x", items=[{"personal_id": "1", "full_name": "😀" * 300}], raw=True)
def test_the_struct_reads_a_batch_body_as_the_schema_reads_it(
    purpose: Any, items: list[Any], raw: bool
) -> None:
    """Whatever the body (text escaped or raw UTF-8), the struct (``_batch_body``) accepts
    exactly what the schema accepts, as the schema reads it, and refuses the rest with the
    schema's own error."""
    body = json.dumps({"purpose": purpose, "items": items}, ensure_ascii=not raw).encode()
    _assert_batch_read_alike(body, struct_reads=True)


def _assert_batch_read_alike(body: bytes, *, struct_reads: bool = False) -> None:
    """``struct_reads``: the struct itself must read a body the schema accepts (not only
    the fallback to the schema; a body with a key repeated may differ there)."""
    try:
        parsed = VerifyBatchRequest.model_validate_json(body)
    except ValidationError:
        with pytest.raises(ValidationFailed):
            routes._batch_body(body)
        return
    if struct_reads:
        routes._READ_BATCH.decode(body)
    stated, read = routes._batch_body(body)
    assert stated == parsed.purpose
    assert [_fields(item) for item in read] == [item.__dict__ for item in parsed.items]


@settings(max_examples=300, deadline=None)
@given(body=st.fixed_dictionaries({"purpose": _TEXT | _VALUE}) | _ITEM, raw=st.booleans())
@example(body={"personal_id": "1", "purpose": None}, raw=False)
@example(body={"personal_id": "1", "purpose": "x", "sex": None}, raw=False)
@example(body={"personal_id": None, "purpose": "x"}, raw=False)
def test_the_struct_reads_a_single_body_as_the_schema_reads_it(body: Any, raw: bool) -> None:
    """As for a batch: a single verification's struct (``_verify_body``) accepts
    exactly what the schema accepts, as the schema reads it."""
    text = json.dumps(body, ensure_ascii=not raw).encode()
    try:
        parsed = VerifyRequest.model_validate_json(text)
    except ValidationError:
        with pytest.raises(ValidationFailed):
            routes._verify_body(text)
        return
    routes._READ_REQUEST.decode(text)  # the struct itself reads it, not only the fallback
    assert routes._verify_body(text) == parsed.__dict__


def test_the_structs_have_the_schemas_fields() -> None:
    """The msgspec structs declare what the pydantic schema declares: the same fields, the
    same required ones (a field added to one and not the other fails here)."""
    for model, struct in [
        (VerifyItem, ReadItem),
        (VerifyRequest, ReadRequest),
        (VerifyBatchRequest, ReadBatch),
    ]:
        info = msgspec.inspect.type_info(struct)
        assert isinstance(info, msgspec.inspect.StructType)
        assert {f.name for f in info.fields} == set(model.model_fields)
        assert {f.name for f in info.fields if f.required} == {
            name for name, field in model.model_fields.items() if field.is_required()
        }


@pytest.mark.parametrize(
    "body",
    [
        b'{"purpose": "a", "items": [{"personal_id": "1", "sex": null, "sex": "M"}]}',
        b'{"purpose": "a", "items": [{"personal_id": "1"}], "purpose": "b"}',
        b'{"purpose": "a", "items": [], "items": [{"personal_id": "2"}]}',
        b' {"purpose" : "a" , "items" : [ ] }\n ',
        b'{"purpose": "\\u0000", "items": []}',
        b'{"purpose": "\xed\xa0\x80", "items": []}',  # a surrogate encoded in UTF-8
        b'{"purpose": "\xc0\xaf", "items": []}',  # an overlong encoding
        b'{"purpose": "a\x01", "items": []}',  # a raw control character
        b'\xef\xbb\xbf{"purpose": "a", "items": []}',  # a byte order mark
        b'{"purpose": "a", "items": []} x',
    ],
    ids=[
        "repeated-field", "repeated-purpose", "repeated-items", "spaces", "escaped-nul",
        "utf8-surrogate", "overlong", "control", "bom", "trailing",
    ],
)  # fmt: skip
def test_bodies_json_dumps_cannot_write_read_alike(body: bytes) -> None:
    """Repeated keys (the last wins), spacing and text JSON allows or refuses: the struct
    reads what the schema reads, and refuses what it refuses."""
    _assert_batch_read_alike(body)


def test_a_valid_body_is_read_without_the_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    """The struct reads a good body whole: the schema (slow) is only for bad ones."""

    def refuse(model: Any, body: bytes) -> Any:
        raise AssertionError("the schema read a valid body")

    monkeypatch.setattr(routes, "_parse", refuse)
    single = {**_CLAIM, "purpose": PURPOSE}
    assert routes._verify_body(json.dumps(single).encode())["full_name"] == _CLAIM["full_name"]
    stated, items = routes._batch_body(json.dumps({"purpose": PURPOSE, "items": [_CLAIM]}).encode())
    assert stated == PURPOSE and items[0].personal_id == ALIVE
