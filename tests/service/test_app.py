"""The app's lifespan: a model that cannot serve stops the start-up cleanly, in one line; a
batch queue that stops for good stops the process."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.engine.warmup import WarmUpError
from tests.service.conftest import make_settings
from tests.service.savedmodel_factory import export_model


def test_a_model_that_cannot_serve_stops_the_start_with_nothing_left_running(
    model_dir: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "models"
    shutil.copytree(model_dir / "uncond" / "1", repo / "good" / "1")  # warms up first
    # Fails at every batch size of the settings below (1, 2 and 4).
    export_model(repo / "zfail" / "1", name="zfail", version=1, fail_at_batch=(1, 2, 4))
    app = create_app(make_settings(repo, max_batch_size=4, poll_seconds=0))
    with pytest.raises(WarmUpError), TestClient(app):
        pass
    error = app.state.startup_error
    assert "zfail/1: warm-up failed at every batch size of [1, 2, 4]" in error
    assert "\n" not in error
    # The model that warmed up before it has no batcher thread left.
    assert not [t for t in threading.enumerate() if t.name == "batch-good" and t.is_alive()]


def test_a_batch_queue_that_stops_for_good_stops_the_process(model_dir: Path) -> None:
    app = create_app(make_settings(model_dir, warmup=False, poll_seconds=0))
    reasons: list[str] = []
    app.state.stop_process = reasons.append  # what gan-serve's server installs
    with TestClient(app) as client:
        engine = client.app.state.engine  # type: ignore[attr-defined]
        batcher = engine.batcher(engine.repository.get("uncond"), "generate")

        def broken_take() -> list[object]:
            raise RuntimeError("queue bookkeeping broke")

        batcher._take_batch = broken_take
        assert client.post("/generate", json={"seeds": [1], "model": "uncond"}).status_code == 503
        deadline = time.monotonic() + 10
        while not reasons and time.monotonic() < deadline:
            time.sleep(0.01)
    assert reasons == ["the batch queue of uncond/1/generate stopped after an internal error"]
