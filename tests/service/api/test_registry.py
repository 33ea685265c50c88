"""The router registry: every route of the app needs an API key unless declared open."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Mount

from service.api import registry
from service.app import create_app
from tests.service.conftest import make_settings

KEYS = "secret-key"
# What a load balancer, a scraper or a browser must reach without a key; kubelet probes send
# none either, KServe's on the Open Inference Protocol's health routes.
EXPECTED_OPEN = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/",
    "/static/{name}",
    "/openapi.json",
    "/v2/health/live",
    "/v2/health/ready",
}


def _routes(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, the routes of included routers too (however FastAPI keeps them)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        yield from _routes(included.routes) if included is not None else [route]


def _key(route: BaseRoute) -> tuple[str, frozenset[str]]:
    return getattr(route, "path", ""), frozenset(getattr(route, "methods", None) or ())


def _request_for(route: BaseRoute) -> tuple[str, str]:
    """A method and a concrete path that the route matches."""
    path = re.sub(r"\{[^}]+\}", "x", getattr(route, "path", "/"))
    methods = sorted(getattr(route, "methods", None) or {"GET"})
    return ("GET" if "GET" in methods else methods[0]), path


@pytest.fixture(scope="module")
def keyed(model_dir: Path) -> Iterator[TestClient]:
    app = create_app(make_settings(model_dir, api_keys=KEYS, warmup=False))
    with TestClient(app) as client:
        yield client


def test_every_route_is_protected_unless_declared_open(keyed: TestClient) -> None:
    app: FastAPI = keyed.app  # type: ignore[assignment]
    open_routes = app.state.open_routes
    protected = registry.protected_routes()
    routes = list(_routes(app.router.routes))
    assert len(routes) > 15  # every resource's routes were found
    for route in routes:
        # Compared by what they answer: FastAPI may copy a router's routes when it includes it.
        is_open = _key(route) in {_key(r) for r in open_routes}
        assert is_open or _key(route) in {_key(r) for r in protected}, f"{route} is neither"
        if isinstance(route, Mount):  # the docs' static assets
            assert is_open
            continue
        method, path = _request_for(route)
        status = keyed.request(method, path).status_code
        if is_open:
            assert status != 401, f"{method} {path} is declared open but asked for a key"
        else:
            assert status == 401, f"{method} {path} answered {status} without a key"
            good = keyed.request(method, path, headers={"X-API-Key": KEYS}).status_code
            assert good != 401, f"{method} {path} refused the valid key"


def test_only_what_must_be_reached_without_a_key_is_open(keyed: TestClient) -> None:
    app: FastAPI = keyed.app  # type: ignore[assignment]
    paths = {getattr(r, "path", None) for r in app.state.open_routes}
    docs = {p for p in paths if p and (p.startswith("/docs") or p == "/redoc")}
    assert paths - docs == EXPECTED_OPEN


def test_a_router_added_to_the_registry_is_protected_by_default(
    monkeypatch: pytest.MonkeyPatch, model_dir: Path
) -> None:
    extra = APIRouter()

    @extra.get("/v1/extra")
    async def new_endpoint() -> dict[str, str]:
        return {"ok": "yes"}

    monkeypatch.setattr(registry, "ROUTERS", (*registry.ROUTERS, registry.Registered(extra)))
    app = create_app(make_settings(model_dir, api_keys=KEYS, warmup=False))
    with TestClient(app) as client:
        assert client.get("/v1/extra").status_code == 401
        assert client.get("/v1/extra", headers={"X-API-Key": KEYS}).json() == {"ok": "yes"}
