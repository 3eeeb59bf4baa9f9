"""The web application: ``create_app(settings)`` builds it; nothing heavy happens at import."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dancu import __version__
from dancu.config import Settings, get_settings
from dancu.db import make_engine, make_sessionmaker
from dancu.errors import DancuError
from dancu.web import pages

log = logging.getLogger(__name__)


def _error(code: str, message: str, status: int, request: Request) -> JSONResponse:
    """The versioned public error format: {"error": {"code", "message", "request_id"}}."""
    request_id = getattr(request.state, "request_id", None)
    return JSONResponse(
        {"error": {"code": code, "message": message, "request_id": request_id}},
        status_code=status,
        headers={"X-Request-ID": request_id or ""},
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app against ``settings`` (the environment's by default)."""
    settings = settings or get_settings()
    engine = make_engine(settings.database_url, echo=settings.sql_echo)
    app = FastAPI(title="dancu", version=__version__, docs_url="/docs", redoc_url=None)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = make_sessionmaker(engine)

    @app.middleware("http")
    async def request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request.state.request_id = uuid.uuid4().hex
        response = await call_next(request)
        response.headers["X-Request-ID"] = request.state.request_id
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    @app.exception_handler(DancuError)
    async def dancu_error(request: Request, exc: DancuError) -> JSONResponse:
        return _error(exc.code, exc.message, exc.status, request)

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
        log.error(
            "unhandled error, request %s",
            getattr(request.state, "request_id", "-"),
            exc_info=exc,
        )
        return _error("internal_error", "internal error; quote the request id", 500, request)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers. Public by design; reveals nothing."""
        return {"status": "ok"}

    app.include_router(pages.router)
    return app


def factory() -> FastAPI:
    """Entry point for uvicorn's ``--factory``."""
    return create_app(get_settings())
