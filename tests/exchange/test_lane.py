"""The partner fast lane (``exchange.lane``): ``POST /api/v1/verify`` and ``GET /api/v1/ping``
answered in front of the middleware stack, exactly as the whole stack answers them.

Each request goes to the app (with the lane) and to the same app built without it
(``create_app(fast_lane=False)``, on the same database), and the answers are compared: status,
every header in order (the request id's value aside), and the body (its request id aside,
which must be the header's)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from joserfc.jwk import ECKey
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dancu import app as dancu_app
from dancu.app import create_app
from dancu.config import Settings
from dancu.db import unit_of_work
from dancu.errors import DancuError
from dancu.exchange import keys, routes
from dancu.exchange.quota import RateLimiter
from tests.exchange.helpers import ISSUER, PURPOSE, Partner, add_partner, bearer, forge, token_for
from tests.reconcile.helpers import ALIVE

pytestmark = pytest.mark.anyio

Call = Callable[[httpx.AsyncClient], Any]  # sends one request with the client given


@pytest.fixture
def reference(api_settings: Settings) -> Iterator[FastAPI]:
    """The same app without the lane: every request through the whole stack."""
    application = create_app(api_settings, fast_lane=False)
    yield application
    application.state.exchange.committer.stop()
    application.state.engine.dispose()


@pytest.fixture
async def plain(reference: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # The stack re-raises an unexpected error after answering 500 (for the server to log):
    # take the answer. The lane's client (``http``) keeps raising, so the lane must not.
    transport = httpx.ASGITransport(app=reference, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
        yield client


@pytest.fixture
async def token(app: FastAPI, partner: Partner) -> str:
    return await token_for(app, partner)


def _server_key(app: FastAPI) -> ECKey:
    secret = app.state.exchange.settings.secret_key.get_secret_value()
    with unit_of_work(app.state.sessions) as session:
        return keys.private_key(keys.ensure(session, secret=secret), secret=secret)


def _forged(app: FastAPI, partner: Partner, case: str) -> str:
    key, other, now = _server_key(app), ECKey.generate_key("P-256"), int(time.time())
    claims = {
        "iss": ISSUER, "aud": ISSUER + "/api/v1", "sub": partner.client_id,
        "client_id": partner.client_id, "scope": "population.verify",
    }  # fmt: skip
    if case == "expired":
        return forge({**claims, "iat": now - 900, "exp": now - 600}, key, kid=str(key.kid))
    if case == "forged":
        return forge(claims, other, kid=str(key.kid))
    return forge({**claims, "scope": "population.lookup"}, key, kid=str(key.kid))


def _seen(response: httpx.Response) -> tuple[int, list[tuple[str, str]], Any]:
    """Status, headers in order and body, each request id checked and set aside."""
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32 and request_id.isalnum()
    headers = [
        (name, "<request id>" if name == "x-request-id" else value)
        for name, value in response.headers.multi_items()
    ]
    body: Any = response.content
    if body and response.headers.get("content-type") == "application/json":
        body = response.json()
        holder = body.get("error", body)
        if "request_id" in holder:
            assert holder["request_id"] == request_id
            holder["request_id"] = "<request id>"
    return response.status_code, headers, body


def _verify(body: Any = None, *, content: bytes | None = None, token: str | None = None) -> Call:
    headers = {"Content-Type": "application/json", **(bearer(token) if token else {})}
    if content is None:
        content = httpx.Request("POST", "/", json=body).content
    return lambda c: c.post("/api/v1/verify", content=content, headers=headers)


def _cases(app: FastAPI, partner: Partner, token: str) -> dict[str, tuple[int, Call]]:
    """name → (the status expected, the request)."""
    ok = {"personal_id": ALIVE, "full_name": "Nguyễn Văn Thử", "sex": "M", "purpose": PURPOSE}
    tokens = {case: _forged(app, partner, case) for case in ("expired", "forged", "scope")}
    auth = bearer(token)
    return {
        "verify": (200, _verify(ok, token=token)),
        "verify, not JSON": (400, _verify(content=b'{"personal_id": ', token=token)),
        "verify, unknown field": (400, _verify({**ok, "colour": "đỏ"}, token=token)),
        "verify, no token": (401, _verify(ok)),
        "verify, expired token": (401, _verify(ok, token=tokens["expired"])),
        "verify, forged token": (401, _verify(ok, token=tokens["forged"])),
        "verify, no scope": (403, _verify(ok, token=tokens["scope"])),
        "verify, purpose": (403, _verify({**ok, "purpose": "tiếp thị sản phẩm"}, token=token)),
        "verify, too large": (413, _verify(content=b" " * 16_385, token=token)),
        "ping": (200, lambda c: c.get("/api/v1/ping", headers=auth)),
        "ping, no token": (401, lambda c: c.get("/api/v1/ping")),
        "GET verify": (405, lambda c: c.get("/api/v1/verify", headers=auth)),
        "POST ping": (405, lambda c: c.post("/api/v1/ping", headers=auth)),
        "HEAD ping": (200, lambda c: c.head("/api/v1/ping", headers=auth)),
        "OPTIONS verify": (405, lambda c: c.options("/api/v1/verify", headers=auth)),
        "healthz": (200, lambda c: c.get("/healthz")),
        "verify/": (307, lambda c: c.post("/api/v1/verify/", headers=auth)),
        "no such path": (404, lambda c: c.post("/api/v1/verified", headers=auth)),
    }


async def test_the_lane_answers_as_the_whole_stack(
    app: FastAPI, http: httpx.AsyncClient, plain: httpx.AsyncClient, partner: Partner, token: str
) -> None:
    ids = set()
    cases = _cases(app, partner, token)
    for name, (status, send) in cases.items():
        fast, slow = await send(http), await send(plain)
        assert fast.status_code == status, (name, fast.text)
        assert _seen(fast) == _seen(slow), name
        ids |= {fast.headers["x-request-id"], slow.headers["x-request-id"]}
    assert len(ids) == 2 * len(cases)  # a new id for every request


async def test_the_security_headers_and_the_challenge_are_there(
    app: FastAPI, http: httpx.AsyncClient, partner: Partner, token: str
) -> None:
    """What the comparison above must not miss by both answers lacking it."""
    for case in ("verify", "verify, no scope"):
        response = await _cases(app, partner, token)[case][1](http)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["content-length"] == str(len(response.content))
    assert "insufficient_scope" in response.headers["www-authenticate"]


async def test_past_the_quota_is_the_same_429(
    app: FastAPI, reference: FastAPI, http: httpx.AsyncClient, plain: httpx.AsyncClient
) -> None:
    now = time.time()  # one clock for both, so that both say the same Retry-After
    answers = []
    for application, client in ((app, http), (reference, plain)):
        application.state.exchange.limiter = RateLimiter(clock=lambda: now)
        with unit_of_work(application.state.sessions) as session:
            partner = add_partner(session, per_minute=1)
        send = _verify(
            {"personal_id": ALIVE, "purpose": PURPOSE}, token=await token_for(app, partner)
        )
        assert (await send(client)).status_code == 200
        answers.append(await send(client))
    assert answers[0].status_code == 429
    assert 1 <= int(answers[0].headers["retry-after"]) <= 60
    assert _seen(answers[0]) == _seen(answers[1])


async def test_an_unexpected_error_is_the_500_of_the_stack_and_logged(
    app: FastAPI,
    http: httpx.AsyncClient,
    plain: httpx.AsyncClient,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(routes, "parse_claim", broken)
    send = _verify({"personal_id": ALIVE, "purpose": PURPOSE}, token=token)
    with caplog.at_level(logging.ERROR, logger="dancu.app"):
        fast = await send(http)  # raises if the error escaped the lane
        slow = await send(plain)
    assert fast.status_code == 500
    assert fast.json()["error"]["code"] == "internal_error"
    assert fast.headers["x-content-type-options"] == "nosniff"
    assert _seen(fast) == _seen(slow)
    logged = [r for r in caplog.records if r.name == "dancu.app"]
    assert [r.getMessage() for r in logged] == [
        f"unhandled error, request {response.headers['x-request-id']}" for response in (fast, slow)
    ]
    assert all(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in logged)


async def _call(app: ASGIApp, token: str, chunks: list[bytes] | None = None) -> list[Message]:
    """A verification whose body comes in ``chunks`` (no Content-Length: as a client
    streaming it would send it); with none, whose client goes away before sending it."""
    scope: Scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "https", "path": "/api/v1/verify", "raw_path": b"/api/v1/verify",
        "root_path": "", "query_string": b"", "client": ("127.0.0.1", 50000),
        "server": ("testserver", 443),
        "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {token}".encode()),
                    (b"content-type", b"application/json")],
    }  # fmt: skip
    sent: list[Message] = []
    pending = list(chunks or [])

    async def receive() -> Message:
        if not pending:
            return {"type": "http.disconnect"}
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_a_client_that_goes_away_is_no_crash(
    app: FastAPI, reference: FastAPI, token: str
) -> None:
    fast, slow = await _call(app, token), await _call(reference, token)
    assert fast[0]["status"] == 400
    for messages in (fast, slow):
        for name, value in messages[0]["headers"]:
            if name.lower() == b"x-request-id":
                messages[0]["headers"].remove((name, value))
                break
        else:
            pytest.fail("no request id")
        messages[1]["body"] = messages[1]["body"].split(b'"request_id"')[0]
    assert fast == slow


@pytest.mark.parametrize(
    ("chunks", "status"),
    [
        (
            [b'{"personal_id": "', ALIVE.encode(), b'", "purpose": "' + PURPOSE.encode() + b'"}'],
            200,
        ),
        ([b"", b'{"personal_id": "' + ALIVE.encode() + b'",', b' "purpose": "x"', b"}"], 403),
        ([b"{" + b" " * 10_000] * 2 + [b"}"], 413),  # past 16 KiB, with no length declared
        ([b'{"personal_id": "' + ALIVE.encode() + b'"'], 400),  # sent in one, but not JSON
    ],
    ids=["in three", "an empty first", "too large", "unfinished"],
)
async def test_a_body_in_chunks_is_read_whole_and_capped(
    app: FastAPI, reference: FastAPI, token: str, chunks: list[bytes], status: int
) -> None:
    """A body arriving in several pieces is read whole (the lane and the stack alike), and
    one growing past the limit is refused while it arrives."""
    for application in (app, reference):
        sent = await _call(application, token, chunks)
        assert sent[0]["status"] == status, sent[1]["body"]


class _Recorder:
    """A middleware inside the stack that notes what reaches it."""

    def __init__(self, app: ASGIApp, seen: list[str]) -> None:
        self.app, self.seen = app, seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


async def test_only_the_two_routes_take_the_lane(
    app: FastAPI, http: httpx.AsyncClient, partner: Partner
) -> None:
    """The comparison above would pass without any lane: this shows that the two hot routes
    skip the stack, and that nothing else does."""
    seen: list[str] = []
    app.add_middleware(_Recorder, seen=seen)  # before the app's first request
    cases = _cases(app, partner, await token_for(app, partner))
    seen.clear()
    for name in ("verify", "verify, no token", "ping", "GET verify", "HEAD ping", "healthz"):
        await cases[name][1](http)
    assert seen == ["GET /api/v1/verify", "HEAD /api/v1/ping", "GET /healthz"]


async def test_under_a_root_path_the_router_decides(
    app: FastAPI, reference: FastAPI, token: str
) -> None:
    """Mounted at /api, ``/api/v1/verify`` is the route ``/v1/verify``, which does not exist."""
    answers = []
    for application in (app, reference):
        transport = httpx.ASGITransport(app=application, root_path="/api")
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            answers.append(await _verify({"personal_id": ALIVE}, token=token)(client))
    assert answers[0].status_code == 404
    assert _seen(answers[0]) == _seen(answers[1])


async def test_a_failing_error_handler_is_still_the_apps_500(
    app: FastAPI, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the handler of an expected error itself fails, the lane answers with the app's
    500 (as the stack's outermost layer would), never a bare server error."""

    async def broken(request: Any, exc: Exception) -> Any:
        raise RuntimeError("a broken handler")

    monkeypatch.setitem(app.exception_handlers, DancuError, broken)
    response = await _verify({"personal_id": ALIVE, "purpose": PURPOSE}, token="bad")(http)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert response.headers["x-request-id"] == response.json()["error"]["request_id"]


def test_the_stack_has_no_middleware_the_lane_would_skip(app: FastAPI) -> None:
    """A middleware added to the app would not see the lane's two routes: adding one means
    deciding what the lane does about it, then updating this list."""
    assert [m.cls for m in app.user_middleware] == [dancu_app._RequestId]
