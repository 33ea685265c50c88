"""Fixtures of the service tests: a model repository built once per session, and a running app.

The repository holds ``cond`` (conditional, 3 classes, grayscale, versions 1 and 2) and
``uncond`` (unconditional, RGB), both small convolutional generators written by
:mod:`tests.service.savedmodel_factory` without the training package.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.service.savedmodel_factory import export_model

TEST_SETTINGS = {
    "max_batch_size": 8,
    "batch_timeout_ms": 5.0,
    "max_images_per_request": 16,
    "max_enqueued": 64,
    "max_body_bytes": 64 * 1024,
    "max_image_pixels": 512 * 512,
}


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository with two models (built once per test session)."""
    root = tmp_path_factory.mktemp("models")
    export_model(root / "cond" / "1", name="cond", version=1, num_classes=3, channels=1, seed=1)
    # Version 2: the same network under a new version number, as a re-export would be.
    shutil.copytree(root / "cond" / "1", root / "cond" / "2")
    meta = json.loads((root / "cond" / "2" / "model.json").read_text())
    (root / "cond" / "2" / "model.json").write_text(json.dumps({**meta, "version": 2}))
    export_model(root / "uncond" / "1", name="uncond", version=1, num_classes=0, channels=3, seed=2)
    return root


def make_settings(model_dir: Path, **overrides: object) -> Settings:
    return Settings(model_dir=model_dir, **{**TEST_SETTINGS, **overrides})


@pytest.fixture(scope="session")
def client(model_dir: Path) -> Iterator[TestClient]:
    """A client of one app serving ``model_dir``, started once per session."""
    app = create_app(make_settings(model_dir))
    with TestClient(app) as test_client:
        yield test_client
