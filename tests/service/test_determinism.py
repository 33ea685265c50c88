"""The same seed, psi, class and model version give the same PNG bytes alone or in a batch."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from service.imaging import encode_png
from service.inference import InferenceEngine, seeds_to_z
from service.metrics import Metrics
from service.model_repository import ModelRepository, load_version
from service.settings import Settings


def test_png_bytes_alone_equal_bytes_in_a_batch(client: TestClient) -> None:
    seeds = list(range(100, 108))
    alone = [
        client.get("/generate", params={"seed": s, "class_label": 1, "psi": 0.7}).content
        for s in seeds
    ]
    body = {"seeds": seeds, "class_label": 1, "truncation_psi": 0.7, "response": "json"}
    batched = client.post("/generate", json=body).json()["images"]
    assert [base64.b64decode(i["png_base64"]) for i in batched] == alone
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
    assert concurrent == alone
    assert len(set(alone)) == len(alone)  # the images do differ from seed to seed


def test_rows_of_the_conv_generator_do_not_depend_on_batch_shape(model_dir: Path) -> None:
    model = load_version(model_dir / "uncond" / "1")
    z = seeds_to_z(range(16), model.z_dim)
    labels = np.zeros(16, np.int32)
    reference = [encode_png(model.generate(z[i : i + 2], labels[:2], 1.0)[0]) for i in range(15)]
    for size in (4, 8, 16):
        # Each row at a different position in a batch of `size` rows, with other companions.
        for start in range(0, 16 - size + 1, max(1, size // 2)):
            images = model.generate(z[start : start + size], labels[:size], 1.0)
            for row in range(size):
                if start + row < 15:
                    assert encode_png(images[row]) == reference[start + row]


class _ShapeSensitiveModel:
    """A fake model whose batch of 8 rounds differently, as an odd CPU kernel path might."""

    name, version, path = "fake", 1, Path("fake")
    z_dim, resolution, channels, num_classes = 4, 4, 1, 0

    def generate(self, z: np.ndarray, labels: np.ndarray, psi: float) -> np.ndarray:
        values = np.abs(z[:, :1, None, None]) * 50 * np.ones((1, 4, 4, 1))
        if len(z) == 8:
            values = values + 0.6
        return np.round(values).clip(0, 255).astype(np.uint8)

    def score(self, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return np.zeros(len(images), np.float32)


def test_warm_up_drops_a_batch_size_whose_rows_differ(model_dir: Path) -> None:
    settings = Settings(
        model_dir=model_dir, max_batch_size=16, allowed_batch_sizes=[2, 4, 8, 12, 16]
    )
    repository: Any = ModelRepository(model_dir, {}, {}, "fake")
    engine = InferenceEngine(repository, settings, Metrics())
    assert engine.warm_up(_ShapeSensitiveModel()) == [2, 4, 12, 16]  # type: ignore[arg-type]
    real = load_version(model_dir / "cond" / "1")
    assert engine.warm_up(real) == [2, 4, 8, 12, 16]


def test_seeds_follow_the_stylegan_convention() -> None:
    seeds = [0, 1, 123456, 2**32 - 1]
    expected = np.stack([np.random.RandomState(s).randn(8).astype("float32") for s in seeds])
    np.testing.assert_array_equal(seeds_to_z(seeds, 8), expected)
    np.testing.assert_array_equal(seeds_to_z(seeds[::-1], 8), expected[::-1])
