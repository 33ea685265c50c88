"""A direct path to ``POST /generate`` for the plain request, past FastAPI's per-request work.

Usage (``create_app`` does this; innermost, so that the request log, metrics, API keys and the
body limit still see every request)::

    app.add_middleware(GenerateShortcut, route=route_of(app.router, "POST", "/generate"))

Why: on a 2-core CPU the event loop is what limits a small model's throughput, and a profile of
a plain one-seed ``POST /generate`` put about half of the loop's time per request in FastAPI's
route matching (every route's regex, twice), dependency resolution and the exception and
exit-stack wrappers around the endpoint, all of them the same for every such request.

What it takes: ``POST /generate`` with no query string, a JSON ``Content-Type``
(``application/json`` or ``application/*+json``, the types FastAPI parses as JSON) and a body that
parses and validates as the route's body model. It then does what the route's dependencies
would and calls the route's own function (``route.endpoint``), so that every rule, limit and
answer is the route's. Everything it needs comes from the route object: the endpoint, the body
model and parameter names, and the dependencies. It stands in for the dependencies it knows
(:data:`HONOURED`: resolved by calling them, or implied by what it takes: JSON only, no query
string); a route with any other dependency is refused when the app is built, so a dependency
added to the route can never be skipped.
An error the route raises is answered by the app's own exception handlers (the JSON error body).

Everything else (another path, a query string, another media type, a body that is not JSON or
breaks the schema, a client that leaves before the body arrived) goes to the app unchanged, with
the body messages read so far handed on as they were: its answers are FastAPI's, word for word.
``test_shortcut.py`` checks both paths give the same answers.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.routing import get_route_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.dependencies import get_engine, get_settings, json_content, known_query_only
from service.api.media_types import is_json, media_type

# Dependencies the shortcut honours: resolved by calling them with the request...
RESOLVED = (get_engine, get_settings)
# ...or implied by what it takes (a JSON Content-Type; no query string, so no unknown parameter).
IMPLIED = (json_content, known_query_only)
HONOURED = frozenset((*RESOLVED, *IMPLIED))


def route_of(router: Any, method: str, path: str) -> APIRoute:
    """The :class:`APIRoute` of ``router`` that answers ``method`` on ``path``."""
    for route in router.routes:
        if isinstance(route, APIRoute) and route.path == path and method in (route.methods or ()):
            return route
    raise LookupError(f"no route {method} {path}")


def unhonoured(route: APIRoute, included_with: Sequence[Any] = ()) -> list[str]:
    """Names of the dependencies (and parameters) of ``route`` the shortcut cannot stand in for;
    ``included_with``: the ``Depends`` the app adds when it includes the route's router."""
    dependant = route.dependant
    problems = [
        getattr(d.call, "__name__", repr(d.call))
        for d in dependant.dependencies
        if d.call not in HONOURED or d.dependencies
    ]
    problems += [
        getattr(d.dependency, "__name__", repr(d.dependency))
        for d in included_with
        if d.dependency not in HONOURED
    ]
    extra = dependant.path_params + dependant.query_params + dependant.header_params
    problems += [f"parameter {p.name}" for p in extra + dependant.cookie_params]
    bodies = dependant.body_params
    if len(bodies) != 1:
        problems.append(f"{len(bodies)} body parameters (it parses exactly one)")
    elif not (
        isinstance(bodies[0].field_info.annotation, type)
        and issubclass(bodies[0].field_info.annotation, BaseModel)
    ):
        problems.append("a body that is not one pydantic model")
    return problems


class GenerateShortcut:
    """ASGI middleware: plain ``POST /generate`` requests straight to the route's function."""

    def __init__(
        self, app: ASGIApp, route: APIRoute | None, included_with: Sequence[Any] = ()
    ) -> None:
        self.app = app
        self.route = route  # scope["route"], as the router sets it (metrics count by its path)
        if route is None:  # nothing to take: every request goes to the app
            return
        problems = unhonoured(route, included_with)
        if problems:
            raise TypeError(
                f"POST {route.path} has what the shortcut cannot honour ({', '.join(problems)}):"
                " teach service/api/shortcut.py to, or stop adding the shortcut"
            )
        dependant = route.dependant
        self.body_name = dependant.body_params[0].name
        self.body_model: type[BaseModel] = dependant.body_params[0].field_info.annotation  # type: ignore[assignment]
        self.request_name = dependant.request_param_name
        # Parameter name -> dependency to call with the request, for the endpoint's arguments.
        self.resolved: dict[str, Callable[[Request], Awaitable[Any]]] = {
            d.name: d.call
            for d in dependant.dependencies
            if d.name is not None and d.call is not None
        }

    def _takes(self, scope: Scope) -> bool:
        if (
            self.route is None
            or scope["type"] != "http"
            or scope["method"] != "POST"
            or scope.get("query_string")
        ):
            return False
        if get_route_path(scope) != "/generate":
            return False
        for name, value in scope["headers"]:
            if name == b"content-type":
                # The route's json_content and FastAPI's parsing take the same types.
                return is_json(media_type(value))
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
            body = self.body_model.model_validate(json.loads(b"".join(chunks)))
        except (ValueError, RecursionError, ValidationError):  # JSONDecodeError: a ValueError
            # FastAPI words the 400 or 422 itself, from the same body.
            await self.app(scope, _replay(messages, receive), send)
            return
        scope["route"] = self.route
        assert self.route is not None  # _takes took it
        endpoint: Callable[..., Awaitable[Response]] = self.route.endpoint
        scope["endpoint"] = endpoint
        scope["path_params"] = {}
        request = Request(scope, receive)
        try:
            kwargs: dict[str, Any] = {self.body_name: body}
            if self.request_name is not None:
                kwargs[self.request_name] = request
            for name, dependency in self.resolved.items():
                kwargs[name] = await dependency(request)
            response = await endpoint(**kwargs)
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
