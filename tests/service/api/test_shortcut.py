"""The POST /generate shortcut: the same answers as the route through FastAPI, for every case."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, Depends, Request, Response
from fastapi.testclient import TestClient

from service.api import generate as routes
from service.api.dependencies import get_engine, get_settings, json_content, known_query_only
from service.api.registry import include_dependencies
from service.api.shortcut import GenerateShortcut, route_of, unhonoured
from service.app import create_app
from tests.images import assert_same_image
from tests.service.conftest import make_settings

JSON = {"Content-Type": "application/json"}
# Headers both paths must agree on (not Date, nor the request id, which is new per request).
COMPARED = ("content-type", "x-seeds", "x-model", "retry-after", "allow", "www-authenticate")

CASES: dict[str, tuple[str, bytes, dict[str, str]]] = {
    "one seed": ("/generate", b'{"seeds": [3], "model": "uncond"}', JSON),
    "class and psi": (
        "/generate",
        b'{"seeds": [5], "model": "cond", "class_label": 2, "truncation_psi": 0.7}',
        JSON,
    ),
    "json answer": (
        "/generate",
        b'{"seeds": "1-2", "model": "cond", "response": "json"}',
        {"Content-Type": "application/json; charset=utf-8"},
    ),
    "grid": ("/generate", b'{"seeds": "0-3", "model": "uncond", "response": "grid"}', JSON),
    "noise": ("/generate", b'{"noise": [[0.5, -1.0, 2.0, 0.0]], "model": "uncond"}', JSON),
    "route refuses (png of two)": ("/generate", b'{"seeds": [1, 2], "response": "png"}', JSON),
    "unknown model": ("/generate", b'{"seeds": [1], "model": "nope"}', JSON),
    "class out of range": ("/generate", b'{"seeds": [1], "model": "cond", "class_label": 9}', JSON),
    "schema refuses (unknown field)": ("/generate", b'{"seeds": [1], "psi": 0.5}', JSON),
    "schema refuses (strict)": ("/generate", b'{"seeds": ["1"]}', JSON),
    "malformed JSON": ("/generate", b'{"seeds": [1', JSON),
    "deeply nested JSON": ("/generate", b'{"seeds": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", JSON),
    "empty body": ("/generate", b"", JSON),
    "not JSON": ("/generate", b'{"seeds": [1]}', {"Content-Type": "text/plain"}),
    "JSON suffix, not application": (
        "/generate",
        b'{"seeds": [1]}',
        {"Content-Type": "text/x+json"},
    ),
    "JSON suffix": ("/generate", b'{"seeds": [1]}', {"Content-Type": "application/x-gan+json"}),
    "query string": ("/generate?seeds=1", b'{"seeds": [1]}', JSON),
    "too large": ("/generate", b'{"seeds": [1], "model": "' + b"x" * 70_000 + b'"}', JSON),
}


@pytest.fixture(scope="module")
def apps(model_dir: Path) -> Iterator[tuple[TestClient, TestClient]]:
    """(with the shortcut, without it): two apps of the same settings and models."""
    settings = make_settings(model_dir, warmup=False)
    short, plain = create_app(settings), create_app(settings)
    plain.user_middleware = [m for m in plain.user_middleware if m.cls is not GenerateShortcut]
    assert len(plain.user_middleware) == len(short.user_middleware) - 1
    with TestClient(short) as a, TestClient(plain) as b:
        yield a, b


def _answer(client: TestClient, path: str, body: bytes, headers: dict[str, str]) -> Any:
    response = client.post(path, content=body, headers=headers)
    compared = {name: response.headers.get(name) for name in COMPARED}
    return response, compared


@pytest.mark.parametrize("case", CASES)
def test_the_shortcut_answers_as_the_route_does(apps, case: str) -> None:
    short, plain = apps
    path, body, headers = CASES[case]
    got, got_headers = _answer(short, path, body, headers)
    want, want_headers = _answer(plain, path, body, headers)
    assert got.status_code == want.status_code, got.text
    assert got_headers == want_headers
    assert "x-request-id" in got.headers
    if got.headers["content-type"] == "image/png":
        # Both apps render the image on this machine: within the service's guarantee.
        assert_same_image(got.content, want.content)
        return
    got_json, want_json = got.json(), want.json()
    if got.status_code != 200:
        assert got_json == want_json  # the same error, word for word
        assert set(got_json) >= {"error", "detail"}
        return
    got_images, want_images = got_json.pop("images"), want_json.pop("images")
    assert got_json == want_json
    for mine, theirs in zip(got_images, want_images, strict=True):
        assert_same_image(
            base64.b64decode(mine.pop("png_base64")), base64.b64decode(theirs.pop("png_base64"))
        )
        assert mine == theirs


def test_the_shortcut_takes_only_plain_requests(apps, monkeypatch) -> None:
    short, _ = apps
    calls: list[Any] = []
    route = route_of(routes.router, "POST", "/generate")
    original = route.endpoint

    async def spy(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return await original(**kwargs)

    monkeypatch.setattr(route, "endpoint", spy)
    assert short.post("/generate", json={"seeds": [1], "model": "uncond"}).status_code == 200
    assert len(calls) == 1  # the shortcut called the route's function
    for case in ("query string", "not JSON", "schema refuses (strict)", "malformed JSON"):
        path, body, headers = CASES[case]
        assert short.post(path, content=body, headers=headers).status_code >= 400
    assert len(calls) == 1  # FastAPI answered those


def test_shortcut_requests_are_counted_under_the_route(apps) -> None:
    short, _ = apps
    line = 'gan_http_requests_total{method="POST",route="/generate",status="200"}'

    def count() -> float:
        for text in short.get("/metrics").text.splitlines():
            if text.startswith(line):
                return float(text.rsplit(" ", 1)[1])
        return 0.0

    before = count()
    short.post("/generate", json={"seeds": [1], "model": "uncond"})
    assert count() == before + 1


def test_the_shortcut_stands_in_for_every_dependency_of_the_apps_route() -> None:
    route = route_of(routes.router, "POST", "/generate")
    included = include_dependencies(routes.router)
    calls = {d.call for d in route.dependant.dependencies} | {d.dependency for d in included}
    # What POST /generate depends on today, the router's known_query_only included.
    assert calls == {json_content, get_engine, get_settings, known_query_only}
    assert unhonoured(route, included) == []


async def _tenant_header(request: Request) -> None:
    """A dependency the shortcut does not know."""


def test_a_dependency_added_to_the_route_is_refused_by_the_shortcut() -> None:
    router = APIRouter()
    router.add_api_route(
        "/generate",
        routes.generate,
        methods=["POST"],
        response_class=Response,
        dependencies=[Depends(json_content), Depends(_tenant_header)],
    )
    with pytest.raises(TypeError, match="_tenant_header"):
        GenerateShortcut(None, route_of(router, "POST", "/generate"))  # type: ignore[arg-type]


def test_a_dependency_added_where_the_router_is_included_is_refused_by_the_shortcut() -> None:
    route = route_of(routes.router, "POST", "/generate")
    with pytest.raises(TypeError, match="_tenant_header"):
        GenerateShortcut(None, route, included_with=[Depends(_tenant_header)])  # type: ignore[arg-type]


def _passed_on(messages: list[dict]) -> list[dict]:
    """Messages the app behind the shortcut receives, for a client that sends ``messages``."""
    seen: list[dict] = []

    async def inner(scope, receive, send) -> None:
        while True:
            message = await receive()
            seen.append(message)
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                return

    pending = list(messages)

    async def receive() -> dict:
        return pending.pop(0)

    async def send(message) -> None:
        raise AssertionError("the shortcut must not answer this request itself")

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/generate",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
    }
    asyncio.run(GenerateShortcut(inner, route=None)(scope, receive, send))  # type: ignore[arg-type]
    return seen


def test_a_body_in_chunks_that_breaks_the_schema_reaches_the_app_as_sent() -> None:
    chunks = [
        {"type": "http.request", "body": b'{"seeds": ', "more_body": True},
        {"type": "http.request", "body": json.dumps(["x"]).encode() + b"}", "more_body": False},
    ]
    assert _passed_on(chunks) == chunks


def test_a_client_that_leaves_mid_body_reaches_the_app_as_it_left() -> None:
    messages = [
        {"type": "http.request", "body": b'{"seeds": [1', "more_body": True},
        {"type": "http.disconnect"},
    ]
    assert _passed_on(messages) == messages


# --- the HTTP layers in front of the shortcut ---------------------------------------------------

KEY = "shortcut-key-0123456789"


@pytest.fixture()
def endpoint_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The calls of POST /generate's route function (the shortcut calls it directly)."""
    calls: list[dict[str, Any]] = []
    route = route_of(routes.router, "POST", "/generate")
    original = route.endpoint

    async def spy(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return await original(**kwargs)

    monkeypatch.setattr(route, "endpoint", spy)
    return calls


@pytest.fixture(scope="module")
def keyed(model_dir: Path) -> Iterator[TestClient]:
    """An app with the shortcut and an API key."""
    with TestClient(create_app(make_settings(model_dir, warmup=False, api_keys=KEY))) as client:
        yield client


def test_api_keys_hold_for_requests_the_shortcut_takes(keyed, endpoint_calls) -> None:
    body = b'{"seeds": [3], "model": "uncond"}'
    missing = keyed.post("/generate", content=body, headers=JSON)
    assert missing.status_code == 401 and missing.json()["error"] == "unauthorized"
    wrong = keyed.post("/generate", content=body, headers={**JSON, "X-API-Key": "nope"})
    assert wrong.status_code == 401
    assert endpoint_calls == []  # refused before the shortcut
    ok = keyed.post("/generate", content=body, headers={**JSON, "X-API-Key": KEY})
    assert ok.status_code == 200 and ok.content.startswith(b"\x89PNG")
    assert len(endpoint_calls) == 1  # the shortcut answered it


def test_a_chunked_body_over_the_limit_is_413_through_the_shortcut(apps, endpoint_calls) -> None:
    short, _ = apps

    def chunks() -> Iterator[bytes]:
        # No Content-Length (a generator is sent chunked): the limit counts the bytes as they
        # come, 70 kB against the test settings' 64 kB.
        yield b'{"seeds": [1], "model": "'
        for _ in range(70):
            yield b"x" * 1000
        yield b'"}'

    answer = short.post("/generate", content=chunks(), headers=JSON)
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"] == "payload_too_large"
    assert endpoint_calls == []
    # The same body in one piece, under its Content-Length: the same answer.
    whole = short.post("/generate", content=b"".join(chunks()), headers=JSON)
    assert whole.status_code == 413 and whole.json() == answer.json()


def test_a_slow_body_is_408_through_the_shortcut(model_dir: Path, endpoint_calls) -> None:
    # No lifespan: the body never completes, so neither the models nor the route are reached.
    app = create_app(make_settings(model_dir, warmup=False, body_timeout_s=0.2))
    sent: list[dict[str, Any]] = []

    async def client() -> None:
        first = True
        never = asyncio.Event()

        async def receive() -> dict[str, Any]:
            nonlocal first
            if first:  # the start of a JSON body, then nothing more
                first = False
                return {"type": "http.request", "body": b'{"seeds": [', "more_body": True}
            await never.wait()
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/generate",
            "raw_path": b"/generate",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"content-type", b"application/json")],  # chunked: no Content-Length
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        await app(scope, receive, send)

    asyncio.run(client())
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 408
    body = json.loads(
        b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    )
    assert body["error"] == "request_timeout" and "0.2 s" in body["detail"]
    assert endpoint_calls == []
