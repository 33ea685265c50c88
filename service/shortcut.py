"""A direct path to ``POST /generate`` for the plain request, past FastAPI's per-request work.

Usage (``create_app`` does this; innermost, so that the request log, metrics, API keys and the
body limit still see every request)::

    app.add_middleware(GenerateShortcut, route=route_of(model_router, "POST", "/generate"))

Why: on a 2-core CPU the event loop is what limits a small model's throughput, and a profile of
a plain one-seed ``POST /generate`` put about half of the loop's time per request in FastAPI's
route matching (every route's regex, twice), dependency resolution and the exception and
exit-stack wrappers around the endpoint, all of them the same for every such request.

What it takes: ``POST /generate`` with no query string, a JSON ``Content-Type``
(``application/json`` or ``application/*+json``, the types FastAPI parses as JSON) and a body that
parses and validates as :class:`~service.schemas.GenerateRequest`. It then does what the route's
dependencies would (``get_engine``: 503 until ready; ``get_settings``) and calls the route's own
function, :func:`service.routes.generate`, so that every rule, limit and answer is the route's.
An error the route raises is answered by the app's own exception handlers (the JSON error body).

Everything else (another path, a query string, another media type, a body that is not JSON or
breaks the schema, a client that leaves before the body arrived) goes to the app unchanged, with
the body messages read so far handed on as they were: its answers are FastAPI's, word for word.
``test_shortcut.py`` checks both paths give the same answers, and that the route's dependencies
are still the ones the shortcut stands in for.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, get_route_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import routes
from service.dependencies import get_engine, get_settings, is_json
from service.schemas import GenerateRequest


def route_of(router: Any, method: str, path: str) -> APIRoute:
    """The :class:`APIRoute` of ``router`` that answers ``method`` on ``path``."""
    for route in router.routes:
        if isinstance(route, APIRoute) and route.path == path and method in (route.methods or ()):
            return route
    raise LookupError(f"no route {method} {path}")


class GenerateShortcut:
    """ASGI middleware: plain ``POST /generate`` requests straight to the route's function."""

    def __init__(self, app: ASGIApp, route: BaseRoute) -> None:
        self.app = app
        self.route = route  # scope["route"], as the router sets it (metrics count by its path)

    def _takes(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("query_string"):
            return False
        if get_route_path(scope) != "/generate":
            return False
        for name, value in scope["headers"]:
            if name == b"content-type":
                # FastAPI parses a body as JSON only for application/json and application/*+json.
                media_type = value.decode("latin-1").split(";")[0].strip().lower()
                return media_type.startswith("application/") and is_json(media_type)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._takes(scope):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        chunks: list[bytes] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":  # the client left (or the body limit hit)
                await self.app(scope, _replay(messages, receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        try:
            body = GenerateRequest.model_validate(json.loads(b"".join(chunks)))
        except (ValueError, RecursionError, ValidationError):  # JSONDecodeError: a ValueError
            # FastAPI words the 400 or 422 itself, from the same body.
            await self.app(scope, _replay(messages, receive), send)
            return
        scope["route"] = self.route
        scope["endpoint"] = routes.generate
        scope["path_params"] = {}
        request = Request(scope, receive)
        try:
            engine = await get_engine(request)
            response = await routes.generate(body, request, engine, await get_settings(request))
        except Exception as exc:
            handler = _handler_of(request, exc)
            if handler is None:
                raise  # as from the router: ServerErrorMiddleware answers 500
            if inspect.iscoroutinefunction(handler):
                response = await handler(request, exc)
            else:
                response = await run_in_threadpool(handler, request, exc)
        await response(scope, receive, send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` again, then the client's next ones."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def _handler_of(request: Request, exc: Exception) -> Any:
    """The app's exception handler for ``exc`` (the most specific class first), or None."""
    handlers = request.app.exception_handlers
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None
