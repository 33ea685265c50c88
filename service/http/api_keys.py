"""API keys: an ASGI middleware that answers 401 before the app reads a byte of the body.

Usage::

    app.add_middleware(ApiKeys, keys=[b"key1", b"key2"], routes=protected_routes())

The keys come from ``GAN_API_KEYS`` (comma-separated, several so that keys can be rotated
without downtime). A request names its key as ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``.
Every configured key is compared in constant time (``hmac.compare_digest``), and all of them are
compared whatever the outcome, so the answer's timing tells nothing about which prefix matched.
With no key configured every request passes. Keys are never logged: the settings hold them as
``SecretStr`` and the request log records no header.

The check is a middleware rather than a FastAPI dependency because FastAPI reads and parses a
route's JSON body before it runs the route's dependencies: an unauthenticated client could make
the service parse megabytes. Only requests matching one of ``routes`` need a key: every route of
the API but those :mod:`service.api.registry` declares open (health checks, metrics, the page and
the docs).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import ServiceError, error_response


class Unauthorized(ServiceError):
    status_code = 401
    error = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, {"WWW-Authenticate": 'Bearer realm="gan-serving"'})


def presented_key(headers: Headers) -> str | None:
    """The key a request carries (``Authorization: Bearer`` first, then ``X-API-Key``)."""
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return headers.get("x-api-key") or None


def key_matches(candidate: str, keys: list[bytes]) -> bool:
    """True when ``candidate`` is one of ``keys``; compares with every key, in constant time."""
    given = candidate.encode("utf-8", "surrogateescape")
    found = False
    for key in keys:
        found |= hmac.compare_digest(given, key)
    return found


class ApiKeys:
    """ASGI middleware: 401 for a request to one of ``routes`` without a valid key, answered
    from the headers alone (the body is never read)."""

    def __init__(self, app: ASGIApp, keys: list[bytes], routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.keys = keys
        self.routes = list(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys:
            await self.app(scope, receive, send)
            return
        route_scope = self._protected(scope)
        if route_scope is None:
            await self.app(scope, receive, send)
            return
        candidate = presented_key(Headers(scope=scope))
        if candidate is None:
            problem = Unauthorized("an API key is required: send 'Authorization: Bearer <key>'")
        elif not key_matches(candidate, self.keys):
            problem = Unauthorized("the API key is not valid")
        else:
            await self.app(scope, receive, send)
            return
        # The matched route, so that the request metrics count the 401 under its template.
        scope.update(route_scope)
        response = error_response(
            problem.status_code, problem.error, problem.message, problem.headers
        )
        await response(scope, receive, send)

    def _protected(self, scope: Scope) -> Scope | None:
        """The route's scope when the request is for one of the protected routes, else None."""
        for route in self.routes:
            match, child = route.matches(scope)
            if match != Match.NONE:  # PARTIAL: the path matches, the method does not
                return child
        return None
