"""A direct path to ``POST /v2/models/{name}[/versions/{version}]/infer``, past FastAPI's routing.

Usage (``create_app`` does this; inside the body limit, so that the request log, metrics, API keys
and the body limit still see every request)::

    app.add_middleware(InferShortcut, routes=infer_routes())

Why: as for ``POST /generate`` (:mod:`service.api.shortcut`), on a 2-core CPU the event loop is
what limits a small model's throughput, and a profile (py-spy) of one-seed v2 requests at 32
clients put half of the loop's time per request in FastAPI's route matching, dependency
resolution and the wrappers around the endpoint: without this path a v2 request cost 2.4 times a
``/generate`` request (docs/measurements.md).

What it takes: ``POST`` to the path of one of the routes, with no query string. It calls the
route's own function with the path parameters and the request, and answers an error as the
routes' class does (:func:`service.api.protocols.protocol_errors.protocol_answer`), so every rule,
limit and answer is the route's. A route with any dependency, or any parameter but its path
parameters and the request, is refused when the app is built: nothing the route declares can be
skipped (a query string, which the registry's strict query check reads, takes the app's path).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.routing import get_route_path
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.dependencies import known_query_only
from service.api.protocols import open_inference
from service.api.protocols.protocol_errors import protocol_answer
from service.api.registry import include_dependencies
from service.api.shortcut import route_of

INFER_PATHS = ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer")


def unhonoured(route: APIRoute, included_with: Sequence[Any] = ()) -> list[str]:
    """What the shortcut cannot stand in for: any dependency (the registry's strict query check
    aside, implied by taking no query string) and any parameter but path ones and the request."""
    dependant = route.dependant
    problems = [getattr(d.call, "__name__", repr(d.call)) for d in dependant.dependencies]
    problems += [
        getattr(d.dependency, "__name__", repr(d.dependency))
        for d in included_with
        if d.dependency is not known_query_only
    ]
    extra = dependant.query_params + dependant.header_params + dependant.cookie_params
    problems += [f"parameter {p.name}" for p in extra + dependant.body_params]
    return problems


def infer_routes() -> list[APIRoute]:
    """The routes the shortcut takes; TypeError when one has what it cannot honour."""
    router = open_inference.router
    routes = [route_of(router, "POST", path) for path in INFER_PATHS]
    for route in routes:
        problems = unhonoured(route, include_dependencies(router))
        if problems:
            raise TypeError(
                f"POST {route.path} has what the shortcut cannot honour ({', '.join(problems)}):"
                " teach service/api/protocols/infer_shortcut.py to, or stop adding the shortcut"
            )
    return routes


class InferShortcut:
    """ASGI middleware: v2 inference requests straight to their route's function."""

    def __init__(self, app: ASGIApp, routes: Sequence[APIRoute]) -> None:
        self.app = app
        self.routes = list(routes)

    def _route(self, scope: Scope) -> tuple[APIRoute, dict[str, str]] | None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("query_string"):
            return None
        path = get_route_path(scope)
        if not path.startswith("/v2/models/"):
            return None
        for route in self.routes:
            match = route.path_regex.match(path)
            if match is not None:
                return route, match.groupdict()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self._route(scope)
        if found is None:
            await self.app(scope, receive, send)
            return
        route, params = found
        # What the router would set: the metrics count the request under the route's template.
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = params
        request = Request(scope, receive)
        try:
            response = await route.endpoint(request=request, **params)
        except Exception as exc:
            answer = protocol_answer(exc)
            if answer is None:
                raise  # as from the router: ServerErrorMiddleware answers 500
            response = answer
        await response(scope, receive, send)
