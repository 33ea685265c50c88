"""Every router of the API, in one table that the app and the API-key middleware both read.

Usage (the app factory does this)::

    install_routers(app)                         # includes every router, and the docs
    app.add_middleware(ApiKeys, keys=keys, routes=protected_routes())

To add an endpoint, write its module here in ``service/api/`` with a ``router`` and add one
line to :data:`ROUTERS`. Its routes need an API key (when ``GAN_API_KEYS`` is set) unless the
line says ``open=True``: a route is protected unless declared open, so a new router can never be
served without a key by mistake. Open are only what a load balancer, a scraper or a browser
must reach without one: health checks, metrics, the playground page and the API docs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from starlette.routing import BaseRoute

from service.api import animate, complete, generate, models, operations, playground, score
from service.api.dependencies import ERRORS, known_query_only
from service.api.openapi import install_docs
from service.api.protocols import open_inference, tf_serving


@dataclass(frozen=True)
class Registered:
    """A router and how the app includes it."""

    router: APIRouter
    open: bool = False  # True: never asks for an API key
    # Refuse unknown query parameters with a 422 naming them (every API route does).
    strict_query: bool = True
    responses: dict[int | str, dict[str, Any]] = field(default_factory=dict)


ROUTERS: tuple[Registered, ...] = (
    Registered(operations.router, open=True, responses={422: ERRORS[422]}),
    Registered(models.router),
    Registered(generate.router),
    Registered(score.router),
    Registered(animate.router),
    Registered(complete.router),
    Registered(playground.router, open=True, strict_query=False),
    Registered(open_inference.health, open=True),  # kubelet probes (KServe) send no key
    Registered(open_inference.router),
    Registered(tf_serving.router),
)


def include_dependencies(router: APIRouter) -> list[Any]:
    """The dependencies the app adds to every route of ``router`` when it includes it."""
    for entry in ROUTERS:
        if entry.router is router:
            return [Depends(known_query_only)] if entry.strict_query else []
    raise LookupError("that router is not in ROUTERS")


def install_routers(app: FastAPI) -> list[BaseRoute]:
    """Include every router of :data:`ROUTERS` and the API docs in ``app``; returns the routes
    served without a key: those of the open routers, the docs and the OpenAPI document."""
    # FastAPI's own OpenAPI document (app.openapi_url) is already a route: the docs need it.
    open_routes = [r for r in app.router.routes if getattr(r, "path", None) == app.openapi_url]
    for entry in ROUTERS:
        app.include_router(
            entry.router,
            dependencies=include_dependencies(entry.router),
            responses=dict(entry.responses) or None,
        )
        if entry.open:
            open_routes.extend(entry.router.routes)
    before = list(app.router.routes)
    install_docs(app)  # /docs, /redoc and their assets
    open_routes.extend(route for route in app.router.routes if route not in before)
    return open_routes


def protected_routes() -> list[BaseRoute]:
    """Every route of the routers in :data:`ROUTERS` not declared open: they need a key."""
    return [route for entry in ROUTERS if not entry.open for route in entry.router.routes]
