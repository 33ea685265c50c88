"""Hot reload is on by default, as TensorFlow Serving polls its model path by default: a model
exported into a running service's repository is served without a restart."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings


def test_the_model_directory_is_polled_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GAN_POLL_SECONDS", raising=False)
    assert Settings().poll_seconds == 10.0
    monkeypatch.setenv("GAN_POLL_SECONDS", "0")  # and it can be turned off
    assert Settings().poll_seconds == 0.0


def test_a_new_export_reaches_a_service_started_with_default_settings(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GAN_POLL_SECONDS", raising=False)
    repo = tmp_path / "models"
    shutil.copytree(model_dir / "uncond", repo / "uncond")
    settings = Settings(model_dir=repo, warmup=False)
    with TestClient(create_app(settings)) as client:
        watcher = client.app.state.watcher  # type: ignore[attr-defined]
        assert watcher is not None  # started without any GAN_POLL_SECONDS
        assert client.post("/generate", json={"seeds": [1], "model": "cond"}).status_code == 404
        # An export renames a finished version directory into place; one scan later it serves.
        shutil.copytree(model_dir / "cond" / "1", repo / ".new")
        (repo / "cond").mkdir()
        (repo / ".new").rename(repo / "cond" / "1")
        client.portal.call(watcher.poll_once)  # type: ignore[union-attr]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            response = client.post("/generate", json={"seeds": [1], "model": "cond"})
            if response.status_code == 200:
                break
            time.sleep(0.1)
        assert response.status_code == 200, response.text
