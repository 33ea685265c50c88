"""API keys: 401 on the model routes without a valid key; operations routes stay open."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth import key_matches
from service.settings import Settings
from tests.images import assert_same_image
from tests.service.conftest import make_settings

KEYS = "first-key-0123456789, second-key-abcdef"


@pytest.fixture(scope="module")
def keyed(model_dir: Path) -> Iterator[TestClient]:
    app = create_app(make_settings(model_dir, api_keys=KEYS, warmup=False))
    with TestClient(app) as client:
        yield client


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
