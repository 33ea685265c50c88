"""Hot model reload: new versions are warmed up and switched to atomically, broken ones skipped,
pinned versions kept, removed ones unloaded once their requests are done."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.service.conftest import make_settings
from tests.service.savedmodel_factory import export_model

POLL = 0.1


@pytest.fixture(scope="module")
def other_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``cond``-shaped model with other weights: what a new training run would export."""
    path = tmp_path_factory.mktemp("other") / "cond" / "9"
    return export_model(path, name="cond", version=9, num_classes=3, channels=1, seed=5)


def publish(source: Path, repo: Path, name: str, version: int) -> Path:
    """Copy ``source`` beside the target, then rename it into place (as exports do)."""
    staging = repo / name / f".export-{version}.tmp"
    shutil.copytree(source, staging)
    meta = json.loads((staging / "model.json").read_text())
    (staging / "model.json").write_text(json.dumps({**meta, "name": name, "version": version}))
    target = repo / name / str(version)
    os.rename(staging, target)
    return target


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def served(client: TestClient) -> dict[str, int]:
    return client.get("/readyz").json()["models"]


@pytest.fixture()
def repo(model_dir: Path, tmp_path: Path) -> Path:
    root = tmp_path / "models"
    publish(model_dir / "cond" / "1", root, "cond", 1)
    return root


def make_client(repo: Path, **overrides: Any) -> TestClient:
    return TestClient(create_app(make_settings(repo, poll_seconds=POLL, **overrides)))


def seed_png(client: TestClient, **extra: Any) -> Any:
    return client.post("/generate", json={"seeds": [3], "class_label": 1, **extra})


def test_new_version_is_switched_to_without_a_failed_request(
    repo: Path, other_weights: Path
) -> None:
    with make_client(repo) as client:
        before = seed_png(client)
        assert before.headers["X-Model"] == "cond/1"
        outcomes: Counter[str] = Counter()
        stop = threading.Event()

        def hammer() -> None:
            while not stop.is_set():
                response = seed_png(client)
                outcomes[f"{response.status_code} {response.headers.get('X-Model')}"] += 1

        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(hammer) for _ in range(3)]
            time.sleep(0.3)
            publish(other_weights, repo, "cond", 2)
            wait_until(lambda: served(client) == {"cond": 2})
            time.sleep(0.3)
            stop.set()
            for future in futures:
                future.result()
        after = seed_png(client)
        assert after.status_code == 200 and after.headers["X-Model"] == "cond/2"
        assert after.content != before.content  # other weights, other image
        assert set(outcomes) == {"200 cond/1", "200 cond/2"}, outcomes
        # The replaced version is unloaded once its requests are done.
        engine = client.app.state.engine  # type: ignore[attr-defined]
        wait_until(lambda: ("cond", 1, "generate") not in engine._batchers)
        assert client.get("/v1/models/cond").json()["available_versions"] == [1, 2]
        assert seed_png(client, version=1).status_code == 404


def test_broken_new_version_is_logged_and_the_old_keeps_serving(
    repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="service.reload")
    with make_client(repo) as client:
        broken = repo / "cond" / ".export-2.tmp"
        broken.mkdir()
        (broken / "model.json").write_text((repo / "cond" / "1" / "model.json").read_text())
        (broken / "saved_model.pb").write_bytes(b"\x00 not a protobuf")
        os.rename(broken, repo / "cond" / "2")
        wait_until(lambda: any("cond/2" in r.getMessage() for r in caplog.records))
        time.sleep(5 * POLL)  # more scans: the broken version is not retried (logged once)
        errors = [r for r in caplog.records if "cond/2" in r.getMessage()]
        assert len(errors) == 1 and "old one keeps serving" in errors[0].getMessage()
        assert client.get("/readyz").status_code == 200
        assert served(client) == {"cond": 1}
        assert seed_png(client).headers["X-Model"] == "cond/1"


def test_half_written_export_is_never_seen(repo: Path, other_weights: Path) -> None:
    with make_client(repo) as client:
        staging = repo / "cond" / ".export-7.tmp"
        shutil.copytree(other_weights, staging)
        (staging / "model.json").unlink()  # the writer has not got that far yet
        time.sleep(5 * POLL)
        assert served(client) == {"cond": 1}
        assert client.get("/v1/models/cond").json()["available_versions"] == [1]


def test_pinned_version_keeps_serving(repo: Path, other_weights: Path) -> None:
    with make_client(repo, model_versions={"cond": 1}) as client:
        publish(other_weights, repo, "cond", 2)
        wait_until(lambda: client.get("/v1/models/cond").json()["available_versions"] == [1, 2])
        time.sleep(3 * POLL)
        assert served(client) == {"cond": 1}
        assert seed_png(client).headers["X-Model"] == "cond/1"


def test_removed_version_is_unloaded_after_its_requests_finish(
    repo: Path, other_weights: Path
) -> None:
    publish(other_weights, repo, "cond", 2)
    with make_client(repo) as client:
        engine: Any = client.app.state.engine  # type: ignore[attr-defined]
        batcher = engine._batchers[("cond", 2, "generate")]
        real_fn = batcher._fn
        release = threading.Event()

        def blocking(rows: Any, shared: Any) -> Any:
            release.wait(10)
            return real_fn(rows, shared)

        batcher._fn = blocking
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(seed_png, client)
            wait_until(lambda: engine._active.get(("cond", 2), 0) == 1)
            shutil.rmtree(repo / "cond" / "2")
            wait_until(lambda: served(client) == {"cond": 1})
            time.sleep(1.5)  # past the grace period: still loaded while its request runs
            assert ("cond", 2, "generate") in engine._batchers
            release.set()
            response = in_flight.result(timeout=10)
        assert response.status_code == 200 and response.headers["X-Model"] == "cond/2"
        wait_until(lambda: ("cond", 2, "generate") not in engine._batchers)
        assert seed_png(client).headers["X-Model"] == "cond/1"


def test_a_vanished_repository_keeps_the_loaded_models(repo: Path) -> None:
    with make_client(repo) as client:
        hidden = repo.parent / "elsewhere"
        repo.rename(hidden)  # an unmounted volume, say
        time.sleep(5 * POLL)
        assert served(client) == {"cond": 1}
        assert seed_png(client).status_code == 200
        hidden.rename(repo)


def test_a_version_in_use_before_its_model_call_stays_loaded(
    repo: Path, other_weights: Path
) -> None:
    # /score decodes its uploads before it reaches the model: it holds the version meanwhile.
    publish(other_weights, repo, "cond", 2)
    with make_client(repo) as client:
        engine: Any = client.app.state.engine  # type: ignore[attr-defined]
        chosen = engine.repository.get("cond", 2)
        with engine.using(chosen):
            shutil.rmtree(repo / "cond" / "2")
            wait_until(lambda: served(client) == {"cond": 1})
            time.sleep(1.5)  # past the grace period
            assert ("cond", 2, "score") in engine._batchers
        wait_until(lambda: ("cond", 2, "score") not in engine._batchers)
