"""A fast lane for the partner API's two hottest routes, outside the app's middleware stack.

``POST /api/v1/verify`` and ``GET /api/v1/ping`` are most of the traffic, and before this
lane half of a verification's server CPU went to the layers every request walks: Starlette's
and FastAPI's middleware (server errors, telemetry, body limit, exception handlers, exit
stack), the router and its request wrapper, each wrapping ``send`` again. The lane sits in
front of all of them (``dancu.app`` builds it as the outermost layer of the stack) and calls
the same handlers directly, with what those layers would have given them: a request id and
the security headers (``tag``, the app's one function for both), and errors answered by the
app's own exception handlers, looked up as Starlette's ExceptionMiddleware does. Every other
request, and every other method on these paths, goes to the stack unchanged.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from dancu.exchange import routes

Endpoint = Callable[[Request], Awaitable[Response]]
#: gives a request its id and returns the ``send`` that stamps the response (``dancu.app.tag``)
Tag = Callable[[Scope, Send], Send]

#: (method, path) → handler; the same pairs ``routes.install`` routes first in the router
ROUTES: dict[tuple[str, str], Endpoint] = {
    ("POST", "/api/v1/verify"): routes.verify,
    ("GET", "/api/v1/ping"): routes.ping,
}


class FastLane:
    """Plain ASGI: the hot routes straight to their handlers, anything else to ``app``."""

    def __init__(self, app: ASGIApp, *, owner: Starlette, tag: Tag) -> None:
        self.app = app
        self.owner = owner  # whose exception handlers answer errors
        self.tag = tag

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = None
        # Under a root path the router matches the path without it: leave that to the router.
        if scope["type"] == "http" and not scope.get("root_path"):
            endpoint = ROUTES.get((scope["method"], scope["path"]))
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        send = self.tag(scope, send)
        request = Request(scope, receive, send)
        handlers = self.owner.exception_handlers
        try:
            response = await endpoint(request)
        except Exception as exc:  # answered, and an unexpected one logged, by the app's handler
            try:
                response = await _handle(handlers, request, exc)
            except Exception as failed:  # the handler failed: the app's 500, as the stack gives
                last = {Exception: handlers[Exception]} if Exception in handlers else {}
                response = await _handle(last, request, failed)
        await response(scope, receive, send)


async def _handle(handlers: Mapping[Any, Any], request: Request, exc: Exception) -> Response:
    """The registered handler's answer to ``exc``: by status for an ``HTTPException``, else
    by the nearest class in its MRO (``Exception``: the app's 500 handler)."""
    handler = handlers.get(exc.status_code) if isinstance(exc, HTTPException) else None
    if handler is None:
        handler = next((handlers[c] for c in type(exc).__mro__ if c in handlers), None)
    if handler is None:
        raise exc
    if inspect.iscoroutinefunction(handler):
        response: Response = await handler(request, exc)
    else:
        response = await run_in_threadpool(handler, request, exc)
    return response
