"""The same seed, psi, class and model version give the same image, within one grey level,
alone or in a batch (gan_contract.reproducibility), and warm-up keeps batching on."""

from __future__ import annotations

import base64
import itertools
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from gan_contract.reproducibility import pixel_deviation
from gan_contract.seeds import seeds_to_z
from service.engine.engine import InferenceEngine
from service.metrics import Metrics
from service.repository.repository import ModelRepository, load_version
from service.settings import Settings
from tests.images import assert_same_image, png_pixels

BUNDLED = Path(__file__).resolve().parents[3] / "models" / "mnist" / "1"


def test_an_image_alone_equals_the_image_in_a_batch(client: TestClient) -> None:
    seeds = list(range(100, 108))
    alone = [
        client.get("/generate", params={"seed": s, "class_label": 1, "psi": 0.7}).content
        for s in seeds
    ]
    body = {"seeds": seeds, "class_label": 1, "truncation_psi": 0.7, "response": "json"}
    batched = client.post("/generate", json=body).json()["images"]
    for image, single in zip(batched, alone, strict=True):
        assert_same_image(base64.b64decode(image["png_base64"]), single)
    # Concurrent single-image requests, batched with each other in whatever order they arrive.
    with ThreadPoolExecutor(8) as pool:
        concurrent = list(
            pool.map(
                lambda s: (
                    client.post(
                        "/generate", json={"seeds": [s], "class_label": 1, "truncation_psi": 0.7}
                    ).content
                ),
                seeds,
            )
        )
    for png, single in zip(concurrent, alone, strict=True):
        assert_same_image(png, single)
    # The images do differ from seed to seed, by far more than the tolerance.
    pixels = [png_pixels(png) for png in alone]
    assert min(pixel_deviation(a, b) for a, b in itertools.pairwise(pixels)) > 10


def test_rows_of_the_conv_generator_do_not_depend_on_batch_shape(model_dir: Path) -> None:
    model = load_version(model_dir / "uncond" / "1")
    z = seeds_to_z(range(16), model.z_dim)
    labels = np.zeros(16, np.int32)
    reference = np.concatenate([model.generate(z[i : i + 1], labels[:1], 1.0) for i in range(16)])
    for size in (2, 4, 8, 16):
        # Each row at a different position in a batch of `size` rows, with other companions.
        for start in range(0, 16 - size + 1, max(1, size // 2)):
            images = model.generate(z[start : start + size], labels[:size], 1.0)
            assert_same_image(images, reference[start : start + size])


class _ShapeSensitiveModel:
    """A fake model whose batch of 8 is off by ``offset`` grey levels, as a faulty kernel might
    be (offset 5) or as rounding may be (offset 1)."""

    name, version, path = "fake", 1, Path("fake")
    z_dim, resolution, channels, num_classes = 4, 4, 1, 0

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def generate(self, z: np.ndarray, labels: np.ndarray, psi: float) -> np.ndarray:
        values = np.abs(z[:, :1, None, None]) * 50 * np.ones((1, 4, 4, 1))
        if len(z) == 8:
            values = values + self.offset
        return np.round(values).clip(0, 255).astype(np.uint8)

    def score(self, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return np.zeros(len(images), np.float32)


def _engine(model_dir: Path, max_batch_size: int = 16) -> InferenceEngine:
    settings = Settings(model_dir=model_dir, max_batch_size=max_batch_size)
    repository: Any = ModelRepository(model_dir, {}, {}, "fake")
    return InferenceEngine(repository, settings, Metrics())


def test_warm_up_keeps_a_batch_size_that_only_rounds_differently(model_dir: Path) -> None:
    engine = _engine(model_dir)
    assert engine.warm_up(_ShapeSensitiveModel(offset=1)) == [1, 2, 4, 8, 12, 16]  # type: ignore[arg-type]
    exposition = engine.metrics.render()[0].decode()
    assert 'gan_warmup_max_pixel_deviation{batch_size="8",model="fake",version="1"} 1.0' in (
        exposition
    )


def test_warm_up_drops_only_a_size_that_breaks_the_guarantee(
    model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = _engine(model_dir)
    with caplog.at_level(logging.WARNING, logger="service.engine.warmup"):
        kept = engine.warm_up(_ShapeSensitiveModel(offset=5))  # type: ignore[arg-type]
    assert kept == [1, 2, 4, 12, 16]
    assert "batch size 8 moves pixels by up to 5 grey levels" in caplog.text
    assert "throughput drops" in caplog.text


@pytest.mark.parametrize("name", ["cond", "uncond"])
def test_factory_models_keep_every_configured_batch_size(model_dir: Path, name: str) -> None:
    engine = _engine(model_dir, max_batch_size=32)
    assert engine.warm_up(load_version(model_dir / name / "1")) == engine.batch_sizes


def test_the_bundled_model_keeps_every_configured_batch_size(model_dir: Path) -> None:
    # Served with the defaults on whatever machine runs the suite.
    engine = _engine(model_dir, max_batch_size=Settings().max_batch_size)
    assert engine.warm_up(load_version(BUNDLED)) == engine.batch_sizes


def test_seeds_follow_the_stylegan_convention() -> None:
    seeds = [0, 1, 123456, 2**32 - 1]
    expected = np.stack([np.random.RandomState(s).randn(8).astype("float32") for s in seeds])
    np.testing.assert_array_equal(seeds_to_z(seeds, 8), expected)
    np.testing.assert_array_equal(seeds_to_z(seeds[::-1], 8), expected[::-1])
