"""Fixtures of the service tests: settings for small models, and a running app.

The session's model repository is ``model_dir`` of tests/conftest.py (shared with the
integration tests): ``cond`` (conditional, 3 classes, grayscale, versions 1 and 2) and ``uncond``
(unconditional, RGB), small generators written by :mod:`tests.service.savedmodel_factory`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service import imaging
from service.app import create_app
from service.settings import Settings

TEST_SETTINGS = {
    "max_batch_size": 8,
    "batch_timeout_ms": 5.0,
    "max_images_per_request": 16,
    "max_enqueued": 64,
    "max_body_bytes": 64 * 1024,
    "max_image_pixels": 512 * 512,
}


def make_settings(model_dir: Path, **overrides: object) -> Settings:
    return Settings(model_dir=model_dir, **{**TEST_SETTINGS, **overrides})


@pytest.fixture(scope="session")
def client(model_dir: Path) -> Iterator[TestClient]:
    """A client of one app serving ``model_dir``, started once per session."""
    app = create_app(make_settings(model_dir))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture()
def png_encodes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """The shape of every image PNG-encoded while the test runs (any thread, any route): every
    PNG of the service goes through :func:`service.imaging.encode_png`."""
    shapes: list[tuple[int, ...]] = []
    real = imaging.encode_png

    def counted(image: np.ndarray, compress_level: int = 6) -> bytes:
        shapes.append(image.shape)
        return real(image, compress_level)

    monkeypatch.setattr(imaging, "encode_png", counted)
    return shapes
