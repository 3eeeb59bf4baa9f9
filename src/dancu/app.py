"""The web application: ``create_app(settings)`` builds it; nothing heavy happens at import."""

from __future__ import annotations

import gc
import logging
import os
import random

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dancu import __version__
from dancu.config import Settings, get_settings
from dancu.db import make_engine, make_sessionmaker
from dancu.errors import DancuError
from dancu.exchange import lane
from dancu.exchange import routes as exchange_routes
from dancu.reconcile import router as reconcile_router
from dancu.web import backoffice, pages

log = logging.getLogger(__name__)


def _error(code: str, message: str, status: int, request: Request) -> JSONResponse:
    """The versioned public error format: {"error": {"code", "message", "request_id"}}."""
    request_id = getattr(request.state, "request_id", None)
    return JSONResponse(
        {"error": {"code": code, "message": message, "request_id": request_id}},
        status_code=status,
        headers={"X-Request-ID": request_id or ""},
    )


_ids = random.Random()
# a forked worker must not repeat its parent's sequence: it seeds its own from the OS
# (uvicorn's workers are spawned, and import this anew; gunicorn's and others' are forked)
if hasattr(os, "register_at_fork"):  # no fork, no hook: Windows
    os.register_at_fork(after_in_child=_ids.seed)


def _new_request_id() -> str:
    """32 hex digits, unique (128 random bits), not secret: drawn from a PRNG seeded from the
    OS once per process (``uuid4`` asks the kernel every time, a system call per request)."""
    return f"{_ids.getrandbits(128):032x}"


def _stamp(headers: MutableHeaders, request_id: str) -> None:
    """The request id and the security headers (the back office's pages' too)."""
    headers["X-Request-ID"] = request_id
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    backoffice.add_page_headers(headers)


def tag(scope: Scope, send: Send) -> Send:
    """Give an HTTP request a new id (``request.state.request_id``) and return ``send``
    that puts it and the security headers on the response: the one implementation, for the
    middleware and for the partner fast lane (``exchange.lane``)."""
    request_id = _new_request_id()
    scope.setdefault("state", {})["request_id"] = request_id

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            _stamp(MutableHeaders(scope=message), request_id)
        await send(message)

    return send_with_headers


class _RequestId:
    """``tag`` for every HTTP request (one middleware layer for the id and the headers).

    Plain ASGI rather than ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware runs
    each request through an extra task and stream, about a third of a small API request's
    cost (docs/benchmarks.md, partner verification).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, tag(scope, send))


class _App(FastAPI):
    """FastAPI with the partner API's fast lane (``exchange.lane``) in front of its whole
    middleware stack: the two hottest routes skip every layer but the lane."""

    def build_middleware_stack(self) -> ASGIApp:
        return lane.FastLane(super().build_middleware_stack(), owner=self, tag=tag)


def create_app(settings: Settings | None = None, *, fast_lane: bool = True) -> FastAPI:
    """Build the app against ``settings`` (the environment's by default); ``fast_lane=False``
    serves the hot partner routes through the whole stack too (the lane's tests compare)."""
    settings = settings or get_settings()
    engine = make_engine(settings.database_url, echo=settings.sql_echo)
    # dancu configures no OpenTelemetry provider; FastAPI's native telemetry would look for
    # one on every request (about 10 µs each, a few per cent of a verification). Off.
    app = (_App if fast_lane else FastAPI)(
        title="dancu", version=__version__, docs_url="/docs", redoc_url=None,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )  # fmt: skip
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = make_sessionmaker(engine)

    # Middleware added here never sees POST /api/v1/verify or GET /api/v1/ping: the partner
    # fast lane (exchange.lane) answers them in front of the stack. Whatever a new layer does
    # for those two, the lane must do too (tests/exchange/test_lane.py pins the list).
    app.add_middleware(_RequestId)

    @app.exception_handler(DancuError)
    async def dancu_error(request: Request, exc: DancuError) -> JSONResponse:
        response = _error(exc.code, exc.message, exc.status, request)
        response.headers.update(getattr(exc, "headers", None) or {})  # Retry-After...
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(code, str(exc.detail), exc.status_code, request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error("invalid_input", f"{where}: {first.get('msg')}", 400, request)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = getattr(request.state, "request_id", "-")
        log.error("unhandled error, request %s", request_id, exc_info=exc)
        response = _error("internal_error", "internal error; quote the request id", 500, request)
        # Starlette sends this from outside the middleware: the security headers here too
        _stamp(response.headers, response.headers["X-Request-ID"])
        return response

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers. Public by design; reveals nothing."""
        return {"status": "ok"}

    app.include_router(pages.router)
    backoffice.install(app, settings)
    exchange_routes.install(app, settings)
    reconcile_router.install(app)
    return app


def factory() -> FastAPI:
    """Entry point for uvicorn's ``--factory``.

    The objects made while importing and building the app (modules, routes, schemas,
    catalogues: hundreds of thousands) live as long as the process; ``gc.freeze`` moves them
    out of the cyclic collector's reach, so that its full collections, which would otherwise
    walk them all and pause every request in flight, stay short (docs/benchmarks.md: the
    verification's p99)."""
    app = create_app(get_settings())
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    return app
