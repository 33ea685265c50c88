"""API keys: 401 on the model routes without a valid key; operations routes stay open."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from service.http.api_keys import key_matches
from service.settings import Settings
from tests.images import assert_same_image
from tests.service.conftest import make_settings

KEYS = "first-key-0123456789, second-key-abcdef"


@pytest.fixture(scope="module")
def keyed(model_dir: Path) -> Iterator[TestClient]:
    app = create_app(make_settings(model_dir, api_keys=KEYS, warmup=False))
    with TestClient(app) as client:
        yield client


def _partial_png(side: int = 16) -> bytes:
    """A grey image of the completion model's size, its bottom half missing (alpha 0)."""
    alpha = np.full((side, side), 255, np.uint8)
    alpha[side // 2 :] = 0
    pixels = np.stack([np.full((side, side), 128, np.uint8), alpha], -1)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "LA").save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def keyed_completion(completion_models: Path) -> Iterator[TestClient]:
    """A keyed app whose default model (tinyc) has the encode and complete signatures."""
    settings = make_settings(
        completion_models, api_keys=KEYS, warmup=False, default_model="tinyc", complete_steps=2
    )
    with TestClient(create_app(settings)) as client:
        yield client


PARTIAL = base64.b64encode(_partial_png()).decode("ascii")
COMPLETION_ROUTES = [
    ("/complete", {"images": [PARTIAL], "class_label": 1}),
    ("/encode", {"images": [PARTIAL], "class_label": 1}),
    ("/animate", {"seeds": [1, 2], "frames": 2}),
]


@pytest.mark.parametrize(("path", "body"), COMPLETION_ROUTES)
def test_the_image_and_walk_routes_need_a_valid_key(keyed_completion, path, body) -> None:
    missing = keyed_completion.post(path, json=body)
    assert missing.status_code == 401 and missing.json()["error"] == "unauthorized"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = keyed_completion.post(path, json=body, headers={"X-API-Key": "second-key-abcde"})
    assert wrong.status_code == 401
    for header in (
        {"X-API-Key": "second-key-abcdef"},
        {"Authorization": "Bearer first-key-0123456789"},
    ):
        ok = keyed_completion.post(path, json=body, headers=header)
        assert ok.status_code == 200, ok.text


def test_a_raw_image_to_complete_needs_a_key_too(keyed_completion) -> None:
    raw = {"content-type": "image/png"}
    assert keyed_completion.post("/complete?class_label=1", content=_partial_png(),
                                 headers=raw).status_code == 401  # fmt: skip
    answer = keyed_completion.post(
        "/complete?class_label=1",
        content=_partial_png(),
        headers={**raw, "X-API-Key": "second-key-abcdef"},
    )
    assert answer.status_code == 200, answer.text


def test_keys_are_read_comma_separated_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("GAN_API_KEYS", " a1 ,b2,, ")
    keys = Settings().api_keys
    assert [key.get_secret_value() for key in keys] == ["a1", "b2"]
    assert "a1" not in repr(Settings())  # SecretStr: never printed with the settings


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/generate", {"seeds": [1], "model": "uncond"}),
        ("GET", "/generate?seed=1&model=uncond", None),
        ("POST", "/score", {"images": ["aGVsbG8="], "model": "uncond"}),
        ("GET", "/v1/models", None),
        ("GET", "/v1/models/cond", None),
    ],
)
def test_model_routes_need_a_valid_key(keyed: TestClient, method, path, body) -> None:
    missing = keyed.request(method, path, json=body)
    assert missing.status_code == 401
    assert missing.json()["error"] == "unauthorized"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = keyed.request(method, path, json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    prefix = keyed.request(method, path, json=body, headers={"X-API-Key": "first-key-012345678"})
    assert prefix.status_code == 401


def test_each_configured_key_works_in_either_header(keyed: TestClient) -> None:
    body = {"seeds": [1], "model": "uncond"}
    bearer = keyed.post(
        "/generate", json=body, headers={"Authorization": "Bearer first-key-0123456789"}
    )
    assert bearer.status_code == 200 and bearer.content.startswith(b"\x89PNG")
    header = keyed.post("/generate", json=body, headers={"X-API-Key": "second-key-abcdef"})
    assert header.status_code == 200
    assert_same_image(header.content, bearer.content)


def test_health_readiness_and_metrics_stay_open(keyed: TestClient) -> None:
    assert keyed.get("/healthz").status_code == 200
    assert keyed.get("/readyz").status_code == 200
    assert keyed.get("/metrics").status_code == 200


def test_keys_never_reach_the_logs(keyed: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    keyed.get("/v1/models", headers={"Authorization": "Bearer first-key-0123456789"})
    keyed.get("/v1/models", headers={"X-API-Key": "not-a-key-at-all"})
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "request" in text  # the request lines were captured
    assert "first-key" not in text and "not-a-key" not in text


def test_key_comparison_checks_every_byte() -> None:
    keys = [b"alpha-key", b"beta-key"]
    assert key_matches("beta-key", keys)
    assert not key_matches("beta-ke", keys)
    assert not key_matches("beta-keyy", keys)
    assert not key_matches("", keys)
    assert not key_matches("bêta-key", keys)  # non-ASCII input is compared, not an error


def _call_without_reading(
    app: Any, path: str, headers: list[tuple[bytes, bytes]]
) -> tuple[int, bool]:
    """Send ``app`` a POST whose body would be 60 kB of broken JSON; return the status and
    whether the app asked for the body."""
    asked = False

    async def receive() -> dict[str, Any]:
        nonlocal asked
        asked = True
        return {"type": "http.request", "body": b"{" * 60_000, "more_body": False}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", b"60000"),
            *headers,
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], asked


@pytest.mark.parametrize("path", ["/generate", "/score", "/animate", "/complete", "/encode"])
@pytest.mark.parametrize(
    "headers", [[], [(b"authorization", b"Bearer nope")], [(b"x-api-key", b"first-key")]]
)
def test_a_request_without_a_valid_key_is_refused_before_its_body_is_read(
    model_dir: Path, path: str, headers: list[tuple[bytes, bytes]]
) -> None:
    # No lifespan: the refusal needs neither the models nor the body.
    app = create_app(make_settings(model_dir, api_keys=KEYS, warmup=False))
    status, asked = _call_without_reading(app, path, headers)
    assert status == 401
    assert not asked


def test_a_request_with_a_valid_key_gets_its_body_read(model_dir: Path) -> None:
    app = create_app(make_settings(model_dir, api_keys=KEYS, warmup=False))
    key = [(b"x-api-key", b"second-key-abcdef")]
    status, asked = _call_without_reading(app, "/generate", key)
    assert asked and status != 401  # broken JSON, or not started: not an auth refusal


def test_a_refused_request_is_counted_under_its_route(keyed: TestClient) -> None:
    keyed.post("/generate", content=b"{" * 1000, headers={"content-type": "application/json"})
    text = keyed.get("/metrics").text
    assert 'route="/generate",status="401"' in text
