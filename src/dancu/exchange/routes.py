"""HTTP for the partner exchange: the authorization server's endpoints and the verification
API (CONTRACTS §4). Thin: authenticate, authorise, parse, call a service, answer.

The two verification routes read their body themselves (size-capped, read by a msgspec
struct when valid, by pydantic's ``model_validate_json`` otherwise so that its errors are the
schema's: ``schemas``) instead of through FastAPI's parameter machinery: on the hot path
that machinery costs more than the verification. Their schemas still appear in /docs.
``/api/v1/verify`` and ``/api/v1/ping`` are also dispatched through plain Starlette routes
ahead of FastAPI's (see ``install``), and answers are built from precomputed JSON fragments.
"""

from __future__ import annotations

import asyncio
import logging
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import msgspec
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from dancu.audit.generations import Rotator
from dancu.config import Settings
from dancu.errors import Problem, ValidationFailed
from dancu.exchange import clients, oauth, quota
from dancu.exchange.exceptions import (
    AccessLogUnavailable,
    BodyTooLarge,
    ClientGone,
    ClientSuspended,
    InsufficientScope,
    PurposeNotRegistered,
    QuotaExceeded,
    TooManyItems,
)
from dancu.exchange.group_commit import GroupCommitter
from dancu.exchange.quota import RateLimiter
from dancu.exchange.schemas import (
    MAX_BATCH_ITEMS,
    Item,
    ReadBatch,
    ReadRequest,
    VerifyAnswer,
    VerifyBatchAnswer,
    VerifyBatchRequest,
    VerifyItem,
    VerifyRequest,
)
from dancu.exchange.tokens import AccessToken, ClientCache, ClientState, TokenValidator
from dancu.exchange.verify import (
    Answer,
    Batch,
    Job,
    active_clients,
    answer_batch,
)
from dancu.registry.agreement import CLAIM_COLUMNS, Claim, parse_claim, read_claims

log = logging.getLogger(__name__)

SCOPE_VERIFY = "population.verify"
_TOKEN_MAX_BODY = 65_536
_Model = TypeVar("_Model", bound=BaseModel)
_READ_REQUEST = msgspec.json.Decoder(ReadRequest)
_READ_BATCH = msgspec.json.Decoder(ReadBatch)
# a batch item's fields, each with its getter (for the claims a column at a time)
_ITEM_FIELDS = tuple((name, operator.attrgetter(name)) for name in VerifyItem.model_fields)
_CLAIM_COLUMNS = tuple(map(operator.attrgetter, CLAIM_COLUMNS))  # read_claims' columns
_PURPOSE_OF = operator.attrgetter("purpose")

router = APIRouter()


@dataclass(slots=True)
class Exchange:
    """The exchange's per-process state, kept on ``app.state.exchange``."""

    settings: Settings
    sessions: sessionmaker[Session]
    server: oauth.AuthorizationServer
    tokens: TokenValidator
    clients: ClientCache
    limiter: RateLimiter
    committer: GroupCommitter
    rotator: Rotator


def issuer_of(settings: Settings) -> str:
    return (settings.oauth_issuer or settings.base_url).rstrip("/")


def install(app: FastAPI, settings: Settings) -> Exchange:
    """Add the exchange's routes and per-process state to ``app`` (nothing runs yet: the
    group commit starts with the first verification)."""
    sessions: sessionmaker[Session] = app.state.sessions
    issuer = issuer_of(settings)
    server = oauth.AuthorizationServer(
        sessions,
        issuer=issuer,
        secret=settings.secret_key.get_secret_value(),
        token_seconds=settings.access_token_seconds,
    )
    state = Exchange(
        settings=settings,
        sessions=sessions,
        server=server,
        tokens=TokenValidator(
            sessions,
            issuer=issuer,
            audience=server.endpoints.audience,
            token_seconds=settings.access_token_seconds,
        ),
        clients=ClientCache(sessions, ttl=settings.exchange_client_cache_seconds),
        limiter=RateLimiter(),
        committer=GroupCommitter(sessions, batch_concurrency=settings.verify_batch_concurrency),
        rotator=Rotator(
            sessions.kw["bind"],
            max_bytes=settings.audit_generation_mb << 20,
            every=settings.audit_rotate_seconds,
        ),
    )
    app.state.exchange = state
    app.include_router(router)
    # Partner traffic is most of the traffic: match its routes first (the router tries routes
    # in order, and each miss costs a few microseconds).
    app.router.routes.insert(0, app.router.routes.pop())
    # ... and dispatch the two hottest through plain Starlette routes ahead of FastAPI's: the
    # same handlers (they read their own body and raise the same errors, answered by the
    # app's exception handlers), without FastAPI's per-request parameter and dependency
    # machinery. The APIRoutes above stay for the OpenAPI schema and /docs (never reached
    # for these paths and methods).
    app.router.routes[0:0] = [
        Route("/api/v1/verify", verify, methods=["POST"], include_in_schema=False),
        Route("/api/v1/ping", ping, methods=["GET"], include_in_schema=False),
    ]
    return state


def _exchange(request: Request) -> Exchange:
    state: Exchange = request.app.state.exchange
    return state


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or "")


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (before reading it all).

    Read from the ASGI ``receive`` channel directly rather than through Starlette's
    ``request.stream()``: an asynchronous generator costs about 2 µs per request, a few
    percent of a verification's CPU. Nothing else reads these routes' bodies."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is larger than {limit:,} bytes")
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.disconnect":  # nobody to answer; not a server error
            raise ClientGone("the client went away before sending its request")
        if kind != "http.request":
            continue
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is larger than {limit:,} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _verify_body(body: bytes) -> dict[str, Any]:
    """A single verification's body: read by its msgspec struct when valid (pydantic's
    validation costs more than the verification), through the schema otherwise so that
    every error is the schema's own (``schemas``)."""
    try:
        return msgspec.structs.asdict(_READ_REQUEST.decode(body))
    except ValueError:  # msgspec's DecodeError, or UnicodeDecodeError for text not UTF-8
        return _parse(VerifyRequest, body).__dict__


def _batch_body(body: bytes) -> tuple[str, Sequence[Item]]:
    """A batch's purpose and items, read as :func:`_verify_body` reads one body."""
    try:
        read = _READ_BATCH.decode(body)
    except ValueError:
        parsed = _parse(VerifyBatchRequest, body)
        return parsed.purpose, parsed.items
    return read.purpose, read.items


def _parse(model: type[_Model], body: bytes) -> _Model:
    """The body as ``model``, or 400 naming every bad or unknown field."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc = [str(p) for p in error.get("loc", ())]
            row = (
                int(loc[1]) + 1 if len(loc) > 1 and loc[0] == "items" and loc[1].isdigit() else None
            )
            field = ".".join(loc[2:] if row is not None else loc) or None
            reason = "unknown field" if error.get("type") == "extra_forbidden" else error["msg"]
            problems.append(Problem(row, field, reason))
        raise ValidationFailed("; ".join(str(p) for p in problems[:10]), problems) from None


async def _authorise(
    request: Request, ex: Exchange, scope: str | None
) -> tuple[AccessToken, ClientState]:
    """The caller's checked token and client: 401 without a valid token, 403 without the
    scope or when the client is suspended."""
    token = ex.tokens.validate(request.headers.get("authorization"))
    if scope is not None and scope not in token.scopes:
        raise InsufficientScope(scope)
    client = await ex.clients.get(token.client_id)
    if not client.active:
        raise ClientSuspended("this client is suspended")
    return token, client


def _purpose(client: ClientState, stated: str, row: int | None = None) -> str:
    purpose = clients.clean_purpose(stated)
    if not purpose:
        raise ValidationFailed("purpose: state why you verify", [Problem(row, "purpose", "empty")])
    if purpose not in client.purposes:
        raise PurposeNotRegistered(
            "purpose is not one this client registered; register it with the administrator"
            + (f" (item {row})" if row is not None else "")
        )
    return purpose


_RESULTS: dict[Answer, bytes] = {}


def _result_json(answer: Answer) -> bytes:
    """``{"result":…,"fields":{…},"deceased":…}`` exactly as ``JSONResponse`` renders it,
    made once per distinct answer (``verify.answer`` shares each: a few hundred)."""
    done = _RESULTS.get(answer)
    if done is None:
        done = bytes(JSONResponse(answer.as_dict()).body)
        if len(_RESULTS) < 4096:  # answers made elsewhere are rendered, not kept
            _RESULTS[answer] = done
    return done


def _answer_json(answer: Answer, request_id: str) -> bytes:
    """A verification's answer with its request id, as ``JSONResponse`` renders it (the
    request id is 32 hex digits, from ``app._new_request_id``, and needs no escaping)."""
    if not request_id.isalnum():  # not one of ours: let the encoder escape it
        return bytes(JSONResponse({**answer.as_dict(), "request_id": request_id}).body)
    return _result_json(answer)[:-1] + b',"request_id":"' + request_id.encode() + b'"}'


def _batch_json(answers: list[Answer], request_id: str) -> bytes:
    """A batch's answer, as ``JSONResponse`` renders it, from the per-answer fragments."""
    tail = JSONResponse({"request_id": request_id}).body[1:]
    return b'{"results":[' + b",".join(map(_result_json, answers)) + b"]," + tail


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


# ------------------------------------------------------------------ verification API
# Declared first: the router tries routes in declaration order, and these carry the traffic.


@router.post(
    "/api/v1/verify",
    tags=["verification"],
    response_model=VerifyAnswer,
    openapi_extra=_schema(VerifyRequest),
)
async def verify(request: Request) -> Response:
    """Does this person's data agree with the register? (CONTRACTS §4)"""
    ex = _exchange(request)
    token, client = await _authorise(request, ex, SCOPE_VERIFY)
    ex.limiter.take(client.client_id, per_minute=client.per_minute, per_day=client.per_day)
    data = _verify_body(await _body(request, ex.settings.verify_max_body_bytes))
    purpose = _purpose(client, data["purpose"])
    claim = parse_claim(data)
    request_id = _request_id(request)
    answer = await ex.committer.submit(
        Job(claim, token.client_id, client.organization, purpose, request_id)
    )
    return Response(_answer_json(answer, request_id), media_type="application/json")


@router.get("/api/v1/ping", tags=["verification"])
async def ping(request: Request) -> Response:
    """Authenticated no-op: checks the token and answers (for monitoring and benchmarks)."""
    token, _client = await _authorise(request, _exchange(request), None)
    return JSONResponse(
        {"status": "ok", "client_id": token.client_id, "request_id": _request_id(request)}
    )


def _verify_batch(sessions: sessionmaker[Session], batch: Batch) -> list[Answer]:
    """SQLite: a batch in one transaction (on a thread: its calls block): status, shared
    quota, register, and its log entry written in bulk before any answer. PostgreSQL's is
    the group committer's (``GroupCommitter.commit_batch``, on the event loop)."""
    client_id = batch.client_id
    try:
        with sessions() as session:
            quotas = active_clients(session, {client_id})
            if client_id not in quotas:
                raise ClientSuspended("this client is suspended")
            per_minute, per_day = quotas[client_id]
            size = len(batch.claims)
            allowed, retry = quota.consume(
                session, client_id, count=size, per_minute=per_minute, per_day=per_day
            )
            if allowed < size:  # all or nothing: the rollback un-counts them
                raise QuotaExceeded(
                    f"this batch of {size:,} would pass the quota; retry in {retry} s", retry
                )
            answers = answer_batch(session, batch)
            session.commit()
    except (ClientSuspended, QuotaExceeded):
        raise
    except Exception as exc:
        log.exception("batch verification of %d items failed", len(batch.claims))
        raise AccessLogUnavailable() from exc
    return answers


def read_batch(
    items: Sequence[Item],
    client: ClientState,
    client_id: str,
    batch_purpose: str,
    request_id: str,
) -> Batch:
    """A batch's items (as ``_batch_body`` read them) as a batch of ``client``, each item
    with its own purpose or the batch's; ``ValidationFailed`` naming every bad item (a
    purpose not registered is refused at once: ``PurposeNotRegistered``, a 403)."""
    # Most batches state one purpose for all and are readable: their claims read a field at
    # a time; any other is read item by item, which names every problem.
    stated = list(map(_PURPOSE_OF, items))
    if stated.count(None) == len(stated):
        read = read_claims(*(list(map(get, items)) for get in _CLAIM_COLUMNS))
        if read is not None:
            return Batch(
                client_id, client.organization, batch_purpose, request_id, read,
                [None] * len(read),
            )  # fmt: skip
    claims: list[Claim] = []
    purposes: list[str | None] = []
    problems: list[Problem] = []
    for position, (item, stated_here) in enumerate(zip(items, stated, strict=True), start=1):
        purpose = None
        if stated_here is not None:  # an empty one is a problem of its item, named with the rest
            try:
                purpose = _purpose(client, stated_here, position)
            except ValidationFailed as exc:
                problems.extend(exc.problems)
            if purpose == batch_purpose:
                purpose = None
        try:
            claims.append(parse_claim({k: get(item) for k, get in _ITEM_FIELDS}, row=position))
        except ValidationFailed as exc:
            problems.extend(exc.problems)
        purposes.append(purpose)
    if problems:
        shown = "; ".join(f"item {p.row}, {p.field}: {p.reason}" for p in problems[:10])
        raise ValidationFailed(f"{len(problems)} problem(s): {shown}", problems)
    return Batch(client_id, client.organization, batch_purpose, request_id, claims, purposes)


@router.post(
    "/api/v1/verify/batch",
    tags=["verification"],
    response_model=VerifyBatchAnswer,
    openapi_extra=_schema(VerifyBatchRequest),
)
async def verify_batch(request: Request) -> Response:
    """Up to 10,000 verifications in one request; answers in the same order."""
    ex = _exchange(request)
    token, client = await _authorise(request, ex, SCOPE_VERIFY)
    stated, items = _batch_body(await _body(request, ex.settings.verify_batch_max_body_bytes))
    if len(items) > MAX_BATCH_ITEMS:
        raise TooManyItems(
            f"a batch holds at most {MAX_BATCH_ITEMS:,} items, this one {len(items):,}; split it",
            [Problem(None, "items", f"more than {MAX_BATCH_ITEMS:,} items")],
        )
    if not items:
        raise ValidationFailed("items: give at least one item", [Problem(None, "items", "empty")])
    request_id = _request_id(request)
    purpose = _purpose(client, stated)
    await asyncio.sleep(0)  # the loop's other work runs between reading the body and the claims
    batch = read_batch(items, client, token.client_id, purpose, request_id)
    ex.limiter.take(
        client.client_id, per_minute=client.per_minute, per_day=client.per_day, count=len(items)
    )
    if ex.committer.postgres:
        answers = await ex.committer.commit_batch(batch)
    else:
        answers = await run_in_threadpool(_verify_batch, ex.sessions, batch)
    ex.rotator.poke()  # the items' generation closed once it is large (a thread of its own)
    return Response(_batch_json(answers, request_id), media_type="application/json")


# ---------------------------------------------------------------- authorization server


@router.get(oauth.METADATA_PATH, tags=["oauth"])
def authorization_server_metadata(request: Request) -> dict[str, Any]:
    """RFC 8414 metadata. Public by design."""
    return _exchange(request).server.metadata()


@router.get(oauth.JWKS_PATH, tags=["oauth"])
def jwks(request: Request) -> Response:
    """The keys that sign access tokens (RFC 7517). Public by design."""
    body = _exchange(request).server.jwks()
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=60"})


@router.post(oauth.TOKEN_PATH, tags=["oauth"])
async def token(request: Request) -> Response:
    """RFC 6749 §4.4 client credentials; client_secret_basic or private_key_jwt."""
    ex = _exchange(request)
    raw = await _body(request, _TOKEN_MAX_BODY)
    pairs = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
    fields = dict(pairs)
    if len(fields) != len(pairs):  # RFC 6749 §3.2: parameters must not repeat
        return JSONResponse(
            {"error": "invalid_request", "error_description": "a parameter is repeated"},
            status_code=400,
            headers={"Cache-Control": "no-store"},
        )
    status, body, headers = await run_in_threadpool(
        ex.server.token_response,
        oauth.TokenRequest(request.method, str(request.url), request.headers, fields),
    )
    return JSONResponse(body, status_code=status, headers=dict(headers))
