"""Overload over HTTP: 503 + Retry-After when the queue is full, 504 past the deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.service.conftest import make_settings


@pytest.fixture()
def slow_client(model_dir: Path) -> Iterator[tuple[TestClient, threading.Event]]:
    """An app whose generate model call of ``uncond`` blocks until the event is set."""
    settings = make_settings(
        model_dir, max_enqueued=16, request_timeout_ms=300.0, retry_after_s=2, warmup=False
    )
    app = create_app(settings)
    release = threading.Event()
    with TestClient(app) as client:
        engine = app.state.engine
        batcher: Any = engine.batcher(engine.repository.get("uncond"), "generate")
        real_fn = batcher._fn

        def blocking(rows: Any, shared: Any) -> Any:
            release.wait(10)
            return real_fn(rows, shared)

        batcher._fn = blocking
        yield client, release
        release.set()


def _post(client: TestClient, seeds: list[int]) -> Any:
    return client.post("/generate", json={"seeds": seeds, "model": "uncond", "response": "json"})


def test_full_queue_is_503_with_retry_after_and_expired_requests_504(slow_client) -> None:
    client, release = slow_client
    with ThreadPoolExecutor(4) as pool:
        running = pool.submit(_post, client, [1])  # occupies the model
        time.sleep(0.1)
        queued = pool.submit(_post, client, list(range(16)))  # fills the queue of 16 images
        time.sleep(0.1)
        full = _post(client, [99])
        assert full.status_code == 503
        assert full.headers["Retry-After"] == "2"
        assert "queue" in full.json()["detail"]
        expired = queued.result(timeout=10)  # still queued after 300 ms
        assert expired.status_code == 504 and "waited longer" in expired.json()["detail"]
        release.set()
        assert running.result(timeout=10).status_code == 200
    assert _post(client, [5]).status_code == 200
