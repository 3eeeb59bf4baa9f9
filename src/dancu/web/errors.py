"""Errors of the back office's JSON API: the project's error format plus the fields at fault.

``{"error": {"code", "message", "request_id", "problems": [{"field", "reason"}]}}``: the
first three keys are the app's versioned format (src/dancu/app.py); ``problems`` is added so
that a client can show each reason beside its field. A pydantic error (a wrong JSON type, a
missing field, an unknown field) is reported the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from dancu.errors import DancuError, Problem, ValidationFailed
from dancu.officials.exceptions import TooManyAttempts


def problems_of(exc: Exception) -> list[Problem]:
    """The (field, reason) pairs of a refusal, whatever raised it."""
    if isinstance(exc, ValidationFailed):
        return list(exc.problems)
    if isinstance(exc, RequestValidationError):
        found = []
        for error in exc.errors():
            loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
            found.append(Problem(None, ".".join(loc) or None, str(error.get("msg", "invalid"))))
        return found
    return []


def json_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, DancuError):
        code, message, status = exc.code, exc.message, exc.status
    else:
        code, message, status = "invalid_input", "the request has errors", 400
    problems = problems_of(exc)
    if problems and not isinstance(exc, DancuError):
        first = problems[0]
        message = f"{first.field}: {first.reason}" if first.field else first.reason
    request_id = getattr(request.state, "request_id", None)
    body: dict[str, Any] = {"code": code, "message": message, "request_id": request_id}
    if problems:
        body["problems"] = [{"field": p.field, "reason": p.reason} for p in problems]
    headers = {"X-Request-ID": request_id or ""}
    if isinstance(exc, TooManyAttempts):
        headers["Retry-After"] = str(exc.retry_after)
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def route_class(on_error: Callable[[Request, Exception], Response]) -> type[APIRoute]:
    """A route class whose handler answers a refusal (a ``DancuError`` or a pydantic error)
    with ``on_error``: JSON for the API, a page for the pages."""

    class Catching(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def handle(request: Request) -> Response:
                try:
                    return await handler(request)
                except (DancuError, RequestValidationError) as exc:
                    return on_error(request, exc)

            return handle

    return Catching


ApiRoute = route_class(json_error)
"""A route whose refusals carry the fields at fault (see the module docstring)."""
