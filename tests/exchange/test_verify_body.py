"""The verification bodies are read by hand when plainly valid and by the schema otherwise:
both readings must give the same answers and the same errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

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
