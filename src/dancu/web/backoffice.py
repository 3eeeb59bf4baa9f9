"""Everything the back office adds to the app: the JSON API, the pages, their static files,
and a filter that keeps enrolment tokens out of the server's access log."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import plotly
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders

from dancu.config import Settings
from dancu.web import api, ui_admin, ui_auth, ui_clients, ui_registry, ui_review, ui_workflows

STATIC = Path(__file__).parent / "static"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
# Served to signed-in pages: scripts only from this site; no framing; forms post here only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
assets = APIRouter(include_in_schema=False)


@assets.get("/static/plotly.min.js")
def plotly_js() -> Response:
    """The chart library of the quality dashboard, from the plotly package (no CDN)."""
    return FileResponse(PLOTLY_JS, headers={"Cache-Control": "public, max-age=86400"})


# Routes open to anyone, and why. Every other route of the back office declares an
# ``Authorize(action)`` dependency (tests/web/test_authorisation_matrix.py checks both).
PUBLIC_PATHS = frozenset(
    {
        "/",  # the landing page: aggregate counts only
        "/healthz",  # liveness
        "/docs",  # the API's documentation (reveals routes, no data)
        "/docs/oauth2-redirect",
        "/openapi.json",
        "/login",  # first factor
        "/login/totp",  # second factor: needs the first factor's session
        "/logout",  # ends the caller's own session (CSRF-protected)
        "/enrol/{token}",  # the one-time enrolment link is the credential
        "/lang/{locale}",  # language toggle: sets a cookie, reads nothing
        "/static/plotly.min.js",  # the chart library, no data
    }
)
_ENROL_PATH = re.compile(r"/enrol/[A-Za-z0-9_-]+")


class RedactEnrolmentTokens(logging.Filter):
    """uvicorn logs every request line; an enrolment link is a one-time secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(
                _ENROL_PATH.sub("/enrol/…", a) if isinstance(a, str) else a for a in record.args
            )
        return True


def install(app: FastAPI, settings: Settings) -> None:  # noqa: ARG001 (kept for symmetry)
    """Add the back office's routes and static files to ``app`` (its pages' security headers
    are added by the app's middleware, :func:`add_page_headers`)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactEnrolmentTokens) for f in access.filters):
        access.addFilter(RedactEnrolmentTokens())
    app.include_router(api.router)
    app.include_router(ui_auth.router)
    app.include_router(ui_registry.router)
    app.include_router(ui_workflows.router)
    app.include_router(ui_review.router)
    app.include_router(ui_admin.router)
    app.include_router(ui_clients.router)
    app.include_router(assets)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")


def add_page_headers(headers: MutableHeaders) -> None:
    """CSP and no framing on every HTML page. Called by the app's one plain-ASGI middleware
    (``dancu.app``) for every response: Starlette's ``@app.middleware("http")``, which this
    was, cost about 775 µs of CPU per partner verification and 290 µs per no-op
    (docs/benchmarks.md)."""
    if headers.get("content-type", "").startswith("text/html"):
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Frame-Options", "DENY")
