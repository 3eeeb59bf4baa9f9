"""POST /api/v1/verify and /api/v1/verify/batch exactly as CONTRACTS §4 says: every answer
and every error checked against a JSON Schema, and the access log written before answering."""

from __future__ import annotations

import base64
import itertools
import time
from typing import Any

import httpx
import jsonschema
import pytest
from fastapi import FastAPI
from joserfc.jwk import ECKey
from sqlalchemy import select, text, update

from dancu.audit import generations
from dancu.audit import service as audit
from dancu.audit.models import AccessLog, AccessLogItem
from dancu.db import unit_of_work
from dancu.exchange import clients, keys, quota
from dancu.exchange import verify as verify_service
from dancu.exchange.models import ApiClient
from tests.exchange.helpers import (
    ISSUER,
    OTHER_PURPOSE,
    PURPOSE,
    Partner,
    add_partner,
    bearer,
    forge,
    token_for,
)
from tests.reconcile.helpers import (
    ALIVE,
    DEAD,
    NINE_DIGIT_LEGACY,
    OLD_CARD,
    OLD_CARD_LEGACY,
    UNKNOWN,
)

pytestmark = pytest.mark.anyio

_FIELDS = {
    "type": "object",
    "propertyNames": {"enum": ["full_name", "birth_date", "sex", "address"]},
    "additionalProperties": {"type": "boolean"},
}
ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["result", "fields", "deceased"],
    "properties": {
        "result": {"enum": ["match", "mismatch", "not_found"]},
        "fields": _FIELDS,
        "deceased": {"type": "boolean"},
    },
    "additionalProperties": False,
}
ANSWER_SCHEMA: dict[str, Any] = {
    **ITEM_SCHEMA,
    "required": [*ITEM_SCHEMA["required"], "request_id"],
    "properties": {**ITEM_SCHEMA["properties"], "request_id": {"type": "string", "minLength": 8}},
}
BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["results", "request_id"],
    "properties": {
        "results": {"type": "array", "items": ITEM_SCHEMA},
        "request_id": {"type": "string", "minLength": 8},
    },
    "additionalProperties": False,
}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "request_id"],
            "properties": {
                "code": {"type": "string", "pattern": "^[a-z_]+$"},
                "message": {"type": "string", "minLength": 1},
                "request_id": {"type": "string", "minLength": 8},
            },
            "additionalProperties": False,
        }
    },
    "additionalProperties": False,
}


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    jsonschema.validate(body, ERROR_SCHEMA)
    assert body["error"]["code"] == code
    assert body["error"]["request_id"] == response.headers["X-Request-ID"]
    return dict(body["error"])


async def _verify(http: httpx.AsyncClient, token: str, **body: Any) -> httpx.Response:
    body.setdefault("purpose", PURPOSE)
    return await http.post("/api/v1/verify", json=body, headers=bearer(token))


@pytest.fixture
async def token(app: FastAPI, partner: Partner) -> str:
    return await token_for(app, partner)


async def _answer(http: httpx.AsyncClient, token: str, **body: Any) -> dict[str, Any]:
    response = await _verify(http, token, **body)
    assert response.status_code == 200, response.text
    answer = response.json()
    jsonschema.validate(answer, ANSWER_SCHEMA)
    assert answer["request_id"] == response.headers["X-Request-ID"]
    return dict(answer)


async def test_a_match_answers_every_given_field(http: httpx.AsyncClient, token: str) -> None:
    answer = await _answer(
        http, token, personal_id=ALIVE, full_name="NGUYEN VAN THU", birth_date="14/03/1985",
        sex="Nam", address="Phường Phúc Xá, Quận Ba Đình, Hà Nội",
    )  # fmt: skip
    assert answer["result"] == "match"
    assert answer["fields"] == dict.fromkeys(("full_name", "birth_date", "sex", "address"), True)
    assert answer["deceased"] is False


async def test_a_mismatch_names_the_field_and_reveals_nothing(
    http: httpx.AsyncClient, token: str
) -> None:
    response = await _verify(http, token, personal_id=ALIVE, birth_date="1984", sex="F")
    answer = response.json()
    assert (answer["result"], answer["fields"]) == ("mismatch", {"birth_date": False, "sex": False})
    for register_value in ("Thử", "Thu", "1985", "00097", "Hồng Hà"):
        assert register_value not in response.text


async def test_only_the_number_is_a_match_with_no_fields(
    http: httpx.AsyncClient, token: str
) -> None:
    answer = await _answer(http, token, personal_id=ALIVE)
    assert (answer["result"], answer["fields"]) == ("match", {})


async def test_an_unknown_number_is_not_found(http: httpx.AsyncClient, token: str) -> None:
    answer = await _answer(http, token, personal_id=UNKNOWN, sex="M")
    assert answer == {**answer, "result": "not_found", "fields": {"sex": False}, "deceased": False}


async def test_a_deceased_person_is_flagged(http: httpx.AsyncClient, token: str) -> None:
    answer = await _answer(http, token, personal_id=DEAD, full_name="Trần Thị Mất")
    assert (answer["result"], answer["deceased"]) == ("match", True)


@pytest.mark.parametrize("number", [OLD_CARD_LEGACY, NINE_DIGIT_LEGACY])
async def test_legacy_cmnd_numbers_are_answered(
    http: httpx.AsyncClient, token: str, number: str
) -> None:
    answer = await _answer(http, token, personal_id=number)
    assert answer["result"] == "match"


async def test_the_access_log_holds_the_entry_when_the_answer_arrives(
    app: FastAPI, http: httpx.AsyncClient, token: str, partner: Partner
) -> None:
    answer = await _answer(
        http, token, personal_id=OLD_CARD_LEGACY, full_name="Lê Văn Cũ", purpose=OTHER_PURPOSE
    )
    with app.state.sessions() as session:
        page = audit.search(session, actor=partner.client_id, limit=10)
    (entry,) = [e for e in page.items if e.request_id == answer["request_id"]]
    assert (entry.personal_id, entry.organization, entry.purpose, entry.channel) == (
        OLD_CARD, partner.organization, OTHER_PURPOSE, "verify",
    )  # fmt: skip
    assert (entry.actor_kind, entry.result, entry.fields) == (
        "client", "match", ["full_name", "status"],
    )  # fmt: skip
    with app.state.sessions() as session:
        assert audit.verify(session).intact


async def test_the_citizen_sees_who_checked_them(
    app: FastAPI, http: httpx.AsyncClient, token: str, partner: Partner
) -> None:
    await _answer(http, token, personal_id=ALIVE, sex="M")
    with app.state.sessions() as session:
        mine = audit.for_person(session, ALIVE, limit=500)
        by_org = audit.search(session, organization=partner.organization, personal_id=ALIVE)
    assert partner.organization in {e.organization for e in mine.items}
    assert [e.purpose for e in by_org.items] == [PURPOSE]


async def test_no_answer_without_its_log_entry(
    http: httpx.AsyncClient, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(verify_service.bulk, "link", broken)
    response = await _verify(http, token, personal_id=ALIVE, sex="M")
    error = _error(response, 503, "access_log_unavailable")
    assert "match" not in response.text and "nothing was answered" in error["message"]


# --------------------------------------------------------------------------- input


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"personal_id": ALIVE, "purpose": PURPOSE, "nickname": "x"}, "nickname"),
        ({"purpose": PURPOSE}, "personal_id"),
        ({"personal_id": ALIVE}, "purpose"),
        ({"personal_id": ALIVE, "purpose": PURPOSE, "birth_date": "31/02/1985"}, "birth_date"),
        ({"personal_id": ALIVE, "purpose": PURPOSE, "sex": "X"}, "sex"),
        ({"personal_id": "12345", "purpose": PURPOSE}, "personal_id"),
        ({"personal_id": 79085000001, "purpose": PURPOSE}, "personal_id"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field(
    http: httpx.AsyncClient, token: str, body: dict[str, Any], field: str
) -> None:
    response = await http.post("/api/v1/verify", json=body, headers=bearer(token))
    error = _error(response, 400, "invalid_input")
    assert field in error["message"]


async def test_a_body_that_is_not_json_is_a_400(http: httpx.AsyncClient, token: str) -> None:
    response = await http.post("/api/v1/verify", content=b"{nope", headers=bearer(token))
    _error(response, 400, "invalid_input")


async def test_a_body_past_the_limit_is_a_413(http: httpx.AsyncClient, token: str) -> None:
    response = await _verify(http, token, personal_id=ALIVE, full_name="A" * 20_000)
    _error(response, 413, "body_too_large")


# --------------------------------------------------------------------------- tokens


async def test_no_token_is_a_401(http: httpx.AsyncClient) -> None:
    response = await http.post("/api/v1/verify", json={"personal_id": ALIVE, "purpose": PURPOSE})
    _error(response, 401, "invalid_token")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_DEEP = _b64(b"[" * 3_000)  # JSON nested past Python's recursion limit
_HEADER = _b64(b'{"alg":"ES256","typ":"at+jwt","kid":"k"}')
_SIGNATURE = _b64(b"x")


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer not.a.jwt", "Basic abc", "Bearer a.b.c",
     f"Bearer {_DEEP}.{_b64(b'{}')}.{_SIGNATURE}", f"Bearer {_HEADER}.{_DEEP}.{_SIGNATURE}"],
)  # fmt: skip
async def test_a_malformed_token_is_a_401(http: httpx.AsyncClient, header: str) -> None:
    response = await http.post(
        "/api/v1/verify", json={"personal_id": ALIVE, "purpose": PURPOSE},
        headers={"Authorization": header},
    )  # fmt: skip
    _error(response, 401, "invalid_token")


def _server_key(app: FastAPI) -> ECKey:
    secret = app.state.exchange.settings.secret_key.get_secret_value()
    with unit_of_work(app.state.sessions) as session:
        return keys.private_key(keys.ensure(session, secret=secret), secret=secret)


def _claims(partner: Partner, **overrides: Any) -> dict[str, Any]:
    claims = {
        "iss": ISSUER, "aud": ISSUER + "/api/v1", "sub": partner.client_id,
        "client_id": partner.client_id, "scope": "population.verify",
    }  # fmt: skip
    claims.update(overrides)
    return claims


async def test_the_servers_own_key_is_trusted(
    app: FastAPI, http: httpx.AsyncClient, partner: Partner
) -> None:
    """The forging helper is sound: with the server's key its tokens pass (so the refusals
    below are about the key or claims, not the helper)."""
    key = _server_key(app)
    token = forge(_claims(partner), key, kid=str(key.kid))
    assert (await _verify(http, token, personal_id=ALIVE)).status_code == 200


@pytest.mark.parametrize(
    "case", ["expired", "forged", "unknown_key", "wrong_issuer", "wrong_audience", "not_at_jwt"]
)
async def test_bad_tokens_are_a_401(
    app: FastAPI, http: httpx.AsyncClient, partner: Partner, case: str
) -> None:
    key = _server_key(app)
    other = ECKey.generate_key("P-256")
    now = int(time.time())
    token = {
        "expired": lambda: forge(
            _claims(partner, iat=now - 900, exp=now - 600), key, kid=str(key.kid)
        ),
        "forged": lambda: forge(_claims(partner), other, kid=str(key.kid)),
        "unknown_key": lambda: forge(_claims(partner), other, kid="not-a-key-of-ours"),
        "wrong_issuer": lambda: forge(
            _claims(partner, iss="https://evil.example"), key, kid=str(key.kid)
        ),
        "wrong_audience": lambda: forge(
            _claims(partner, aud="https://other.example"), key, kid=str(key.kid)
        ),
        "not_at_jwt": lambda: forge(_claims(partner), key, kid=str(key.kid), typ="JWT"),
    }[case]()
    _error(await _verify(http, token, personal_id=ALIVE), 401, "invalid_token")


async def test_a_token_of_a_client_that_does_not_exist_is_a_401(
    app: FastAPI, http: httpx.AsyncClient, partner: Partner
) -> None:
    key = _server_key(app)
    ghost = Partner("dc_ghost", None, "")
    token = forge(_claims(ghost), key, kid=str(key.kid))
    _error(await _verify(http, token, personal_id=ALIVE), 401, "invalid_token")


async def test_a_token_without_the_scope_is_a_403(
    app: FastAPI, http: httpx.AsyncClient, partner: Partner
) -> None:
    key = _server_key(app)
    token = forge(_claims(partner, scope="population.lookup"), key, kid=str(key.kid))
    response = await _verify(http, token, personal_id=ALIVE)
    _error(response, 403, "insufficient_scope")
    assert "insufficient_scope" in response.headers["WWW-Authenticate"]
    assert (await http.get("/api/v1/ping", headers=bearer(token))).status_code == 200


async def test_an_unregistered_purpose_is_a_403(http: httpx.AsyncClient, token: str) -> None:
    response = await _verify(http, token, personal_id=ALIVE, purpose="tiếp thị sản phẩm")
    _error(response, 403, "purpose_not_registered")


async def test_a_suspended_client_is_refused_at_once(
    app: FastAPI, http: httpx.AsyncClient, token: str, partner: Partner
) -> None:
    assert (await _verify(http, token, personal_id=ALIVE)).status_code == 200
    with unit_of_work(app.state.sessions) as session:
        clients.suspend(session, partner.client_id)
    _error(await _verify(http, token, personal_id=ALIVE), 403, "client_suspended")


async def test_a_suspension_made_by_another_process_is_refused_at_once(
    app: FastAPI, http: httpx.AsyncClient, partner: Partner, token: str, api_settings: Any
) -> None:
    """Suspended behind this process's back (the CLI, another worker): its cache still says
    active, but the group commit re-reads the status in the log's transaction."""
    app.state.exchange.clients._ttl = 3600.0
    assert (await _verify(http, token, personal_id=ALIVE)).status_code == 200
    with unit_of_work(app.state.sessions) as session:
        session.execute(
            update(ApiClient).where(ApiClient.client_id == partner.client_id)
            .values(status="suspended")
        )  # fmt: skip
    _error(await _verify(http, token, personal_id=ALIVE), 403, "client_suspended")
    with app.state.sessions() as session:
        assert all(e.request_id for e in audit.search(session, actor=partner.client_id).items)
        assert len(audit.search(session, actor=partner.client_id).items) == 1


# --------------------------------------------------------------------------- quota


async def test_past_the_quota_is_a_429_with_retry_after(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    with unit_of_work(app.state.sessions) as session:
        partner = add_partner(session, per_minute=2)
    token = await token_for(app, partner)
    for _ in range(2):
        assert (await _verify(http, token, personal_id=ALIVE)).status_code == 200
    response = await _verify(http, token, personal_id=ALIVE)
    _error(response, 429, "quota_exceeded")
    assert 1 <= int(response.headers["Retry-After"]) <= 60


async def test_the_quota_is_shared_with_other_workers(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    """Another worker used most of the minute: this one refuses at the group commit, which
    counts in the database, though its own in-process count is low."""
    with unit_of_work(app.state.sessions) as session:
        partner = add_partner(session, per_minute=3)
    token = await token_for(app, partner)
    with unit_of_work(app.state.sessions) as session:
        assert quota.consume(session, partner.client_id, count=2, per_minute=3, per_day=9)[0] == 2
    assert (await _verify(http, token, personal_id=ALIVE)).status_code == 200
    response = await _verify(http, token, personal_id=ALIVE)
    _error(response, 429, "quota_exceeded")
    assert int(response.headers["Retry-After"]) >= 1
    with app.state.sessions() as session:
        assert len(audit.search(session, actor=partner.client_id).items) == 1


# --------------------------------------------------------------------------- batch


async def _batch(http: httpx.AsyncClient, token: str, body: dict[str, Any]) -> httpx.Response:
    return await http.post("/api/v1/verify/batch", json=body, headers=bearer(token))


@pytest.mark.parametrize("chunk", [None, 1], ids=["one-statement", "a-statement-a-number"])
async def test_a_batch_answers_in_order_and_logs_every_item(
    app: FastAPI,
    http: httpx.AsyncClient,
    token: str,
    partner: Partner,
    monkeypatch: pytest.MonkeyPatch,
    chunk: int | None,
) -> None:
    if chunk is not None:  # the register read in several statements, as 10,000 numbers are
        monkeypatch.setattr(verify_service, "_PG_CHUNK", chunk)
        monkeypatch.setattr(verify_service, "_CHUNK", chunk)
    items = [
        {"personal_id": ALIVE, "sex": "Nam"},
        {"personal_id": UNKNOWN, "full_name": "Ai Đó"},
        {"personal_id": DEAD, "birth_date": "1985", "purpose": OTHER_PURPOSE},
        {"personal_id": NINE_DIGIT_LEGACY, "sex": "M"},
    ]
    response = await _batch(http, token, {"purpose": PURPOSE, "items": items})
    assert response.status_code == 200, response.text
    body = response.json()
    jsonschema.validate(body, BATCH_SCHEMA)
    assert [(r["result"], r["fields"], r["deceased"]) for r in body["results"]] == [
        ("match", {"sex": True}, False),
        ("not_found", {"full_name": False}, False),
        ("match", {"birth_date": True}, True),
        ("mismatch", {"sex": False}, False),
    ]
    with app.state.sessions() as session:
        logged = audit.search(session, actor=partner.client_id, limit=10).items
        intact = audit.verify(session).intact
    assert len({e.id for e in logged}) == 1, "a batch is one entry of the chain"
    assert [e.item for e in logged] == [1, 2, 3, 4]
    assert [e.request_id for e in logged] == [f"{body['request_id']}:{n}" for n in range(1, 5)]
    assert [e.purpose for e in logged] == [PURPOSE, PURPOSE, OTHER_PURPOSE, PURPOSE]
    assert [e.result for e in logged] == ["match", "not_found", "match", "mismatch"]
    assert intact


async def test_a_batch_writes_its_items_to_the_current_generation_which_the_server_rotates(
    app: FastAPI, http: httpx.AsyncClient, token: str, partner: Partner
) -> None:
    """PostgreSQL: after a batch the server closes a generation past its size (here any
    size, the check always due) on a thread of its own; the next batch's items go to the
    new generation, and the log still reads as one."""
    engine = app.state.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("generations are partitions of PostgreSQL")
    exchange = app.state.exchange
    ticks = itertools.count(0, 60).__next__  # a minute passes between two looks
    exchange.rotator = generations.Rotator(engine, max_bytes=0, every=1, clock=ticks)
    with engine.connect() as connection:
        before = generations.current(connection)
    items = [{"personal_id": ALIVE, "sex": "Nam"}, {"personal_id": DEAD}]
    first = await _batch(http, token, {"purpose": PURPOSE, "items": items})
    assert first.status_code == 200, first.text
    deadline = time.monotonic() + 30
    while True:  # the rotation runs beside the requests
        with engine.connect() as connection:
            now = generations.current(connection)
        if now > before or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert now == before + 1
    exchange.rotator = generations.Rotator(engine, max_bytes=0, every=3600)
    second = await _batch(http, token, {"purpose": PURPOSE, "items": items})
    assert second.status_code == 200, second.text
    with app.state.sessions() as session:
        placed = session.execute(
            select(AccessLogItem.entry_id, text("access_log_item.tableoid::regclass::text"))
            .join(AccessLog, AccessLog.id == AccessLogItem.entry_id)
            .where(AccessLog.actor == partner.client_id)
            .order_by(AccessLogItem.entry_id, AccessLogItem.item)
        ).all()
        logged = audit.search(session, actor=partner.client_id, limit=10).items
        intact = audit.verify(session).intact
    assert [where for _, where in placed] == [
        generations.partition(before), generations.partition(before),
        generations.partition(before + 1), generations.partition(before + 1),
    ]  # fmt: skip
    assert len(logged) == 4 and intact


async def test_a_batch_entry_states_the_batchs_purpose_and_an_item_its_own(
    app: FastAPI, http: httpx.AsyncClient, token: str, partner: Partner
) -> None:
    """The entry holds the batch's purpose even when its first item states another; only
    the items with a purpose of their own store one (the others read the entry's)."""
    items = [
        {"personal_id": ALIVE, "purpose": OTHER_PURPOSE},
        {"personal_id": DEAD, "purpose": PURPOSE},
        {"personal_id": UNKNOWN},
    ]
    response = await _batch(http, token, {"purpose": PURPOSE, "items": items})
    assert response.status_code == 200, response.text
    with app.state.sessions() as session:
        entry = session.scalars(select(AccessLog).where(AccessLog.actor == partner.client_id)).one()
        stored = session.scalars(
            select(AccessLogItem.purpose)
            .where(AccessLogItem.entry_id == entry.id)
            .order_by(AccessLogItem.item)
        ).all()
        logged = audit.search(session, actor=partner.client_id, limit=10).items
    assert entry.purpose == PURPOSE
    assert stored == [OTHER_PURPOSE, None, None]
    assert [e.purpose for e in logged] == [OTHER_PURPOSE, PURPOSE, PURPOSE]


async def test_a_batch_over_10000_items_is_refused(http: httpx.AsyncClient, token: str) -> None:
    items = [{"personal_id": ALIVE}] * 10_001
    error = _error(await _batch(http, token, {"purpose": PURPOSE, "items": items}), 400,
                   "too_many_items")  # fmt: skip
    assert "10,000" in error["message"]


async def test_a_batch_names_the_bad_item(http: httpx.AsyncClient, token: str) -> None:
    items = [
        {"personal_id": ALIVE},
        {"personal_id": ALIVE, "sex": "?"},
        {"personal_id": ALIVE, "x": 1},
    ]
    error = _error(await _batch(http, token, {"purpose": PURPOSE, "items": items}), 400,
                   "invalid_input")  # fmt: skip
    assert "row 3" in error["message"] and "x" in error["message"]


async def test_a_batch_item_with_a_bad_value_is_named(http: httpx.AsyncClient, token: str) -> None:
    items = [{"personal_id": ALIVE}, {"personal_id": ALIVE, "sex": "?"}]
    error = _error(await _batch(http, token, {"purpose": PURPOSE, "items": items}), 400,
                   "invalid_input")  # fmt: skip
    assert "item 2, sex" in error["message"]


async def test_a_batch_names_an_empty_item_purpose_with_the_other_problems(
    http: httpx.AsyncClient, token: str
) -> None:
    items = [
        {"personal_id": ALIVE, "sex": "?"},
        {"personal_id": ALIVE, "purpose": "   "},
        {"personal_id": ALIVE, "purpose": "  ", "birth_date": "30/02/2023"},
    ]
    error = _error(await _batch(http, token, {"purpose": PURPOSE, "items": items}), 400,
                   "invalid_input")  # fmt: skip
    for named in ("item 1, sex", "item 2, purpose", "item 3, purpose", "item 3, birth_date"):
        assert named in error["message"]


async def test_a_batch_with_an_unregistered_item_purpose_is_a_403(
    http: httpx.AsyncClient, token: str
) -> None:
    items = [{"personal_id": ALIVE, "purpose": "bán dữ liệu"}]
    _error(await _batch(http, token, {"purpose": PURPOSE, "items": items}), 403,
           "purpose_not_registered")  # fmt: skip


async def test_a_batch_counts_every_item_against_the_quota(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    with unit_of_work(app.state.sessions) as session:
        partner = add_partner(session, per_minute=3)
    token = await token_for(app, partner)
    items = [{"personal_id": ALIVE}] * 4
    response = await _batch(http, token, {"purpose": PURPOSE, "items": items})
    _error(response, 429, "quota_exceeded")
    assert int(response.headers["Retry-After"]) >= 1


async def test_the_noop_endpoint_needs_a_token(http: httpx.AsyncClient, token: str) -> None:
    _error(await http.get("/api/v1/ping"), 401, "invalid_token")
    answer = (await http.get("/api/v1/ping", headers=bearer(token))).json()
    assert answer["status"] == "ok"


async def test_the_lean_routes_are_still_documented_and_refuse_other_methods(
    http: httpx.AsyncClient, token: str
) -> None:
    """/api/v1/verify and /api/v1/ping are dispatched ahead of FastAPI's router: /docs still
    describes them, and another method gets the API's JSON error."""
    paths = (await http.get("/openapi.json")).json()["paths"]
    assert "requestBody" in paths["/api/v1/verify"]["post"]
    assert "get" in paths["/api/v1/ping"]
    response = await http.get("/api/v1/verify", headers=bearer(token))
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    answer = await _verify(http, token, personal_id=ALIVE, sex="M")
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["request_id"] == answer.headers["X-Request-ID"]
