"""Warm-up of a model that fails at some batch sizes: a size whose model call raises is dropped
(as a size that moves pixels too far is), and a model that cannot serve at all is one clear
error."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest

from service.engine import warmup
from service.engine.warmup import WarmUpError, warm_up, warm_up_optional
from service.metrics import Metrics

SIZES = [1, 2, 4, 8, 12, 16]


class OutOfMemory(RuntimeError):
    """What a device out of memory at a large batch raises (a TensorFlow error, multi-line)."""


class FailingModel:
    """A fake model whose signatures raise at the batch sizes of ``fail_at``."""

    name, version, path = "fake", 1, Path("models/fake/1")
    z_dim, resolution, channels, num_classes = 4, 4, 1, 0

    def __init__(self, fail_at: Iterable[int] = (), optional_fail_at: Iterable[int] = ()):
        self.fail_at = set(fail_at)
        self.optional_fail_at = set(optional_fail_at)
        self.optional = {"encode": object()}

    def _check(self, size: int, fail_at: set[int]) -> None:
        if size in fail_at:
            raise OutOfMemory(f"Graph execution error:\n\nOOM when allocating tensor [{size}]\n\t")

    def generate(self, z: np.ndarray, labels: np.ndarray, psi: float) -> np.ndarray:
        self._check(len(z), self.fail_at)
        return np.round(np.abs(z[:, :1, None, None]) * 50 * np.ones((1, 4, 4, 1))).astype(np.uint8)

    def score(self, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return np.zeros(len(images), np.float32)

    def has(self, signature: str) -> bool:
        return signature in self.optional

    def encode(self, images: np.ndarray, masks: np.ndarray, labels: np.ndarray) -> np.ndarray:
        self._check(len(images), self.optional_fail_at)
        return np.zeros((len(images), self.z_dim), np.float32)


def deviation(metrics: Metrics, size: int) -> float | None:
    labels = {"model": "fake", "version": "1", "batch_size": str(size)}
    return metrics.registry.get_sample_value("gan_warmup_max_pixel_deviation", labels)


def test_a_batch_size_whose_model_call_raises_is_dropped_with_a_warning_and_its_metric(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics()
    with caplog.at_level(logging.WARNING, logger="service.engine.warmup"):
        kept = warm_up(FailingModel(fail_at={8, 16}), SIZES, metrics)  # type: ignore[arg-type]
    assert kept == [1, 2, 4, 12]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and "batch size 8 failed" in warnings[0]
    assert "OutOfMemory: OOM when allocating tensor [8]" in warnings[0]  # the telling line
    assert all("throughput drops" in w and "\n" not in w for w in warnings)
    # A size that gives no image counts as the largest deviation a pixel can have.
    assert deviation(metrics, 8) == 255 and deviation(metrics, 16) == 255
    assert deviation(metrics, 12) == 0


def test_a_long_warm_up_logs_its_progress_and_a_short_one_only_its_end(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    with caplog.at_level(logging.INFO, logger="service.engine.warmup"):
        warm_up(FailingModel(), SIZES, Metrics())  # type: ignore[arg-type]
    # The fake model's sizes take microseconds: far below the threshold.
    assert [r.getMessage().split(" in ")[0] for r in caplog.records] == [
        "fake/1 warmed up at batch sizes [1, 2, 4, 8, 12, 16]"
    ]
    caplog.clear()
    monkeypatch.setattr(warmup, "PROGRESS_AFTER_S", 0.0)  # as if every size took long
    with caplog.at_level(logging.INFO, logger="service.engine.warmup"):
        warm_up(FailingModel(fail_at={8}), SIZES, Metrics())  # type: ignore[arg-type]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    progress = [re.sub(r"in [0-9.]+ s", "in T s", message) for message in infos[:-1]]
    assert progress == [
        f"fake/1 warming up: {done} of 6 batch sizes done in T s; next {following}"
        for done, following in enumerate(SIZES[1:], 1)
    ]  # a dropped size (8) counts as done: the progress is the warm-up's, not the kept sizes'
    assert infos[-1].startswith("fake/1 warmed up at batch sizes [1, 2, 4, 12, 16] in ")


def test_the_smallest_size_failing_leaves_the_next_as_the_reference() -> None:
    metrics = Metrics()
    kept = warm_up(FailingModel(fail_at={1}), SIZES, metrics)  # type: ignore[arg-type]
    assert kept == [2, 4, 8, 12, 16] and deviation(metrics, 2) == 0


def test_a_model_that_fails_at_every_size_is_one_line_error() -> None:
    with pytest.raises(WarmUpError) as error:
        warm_up(FailingModel(fail_at=SIZES), SIZES, Metrics())  # type: ignore[arg-type]
    message = str(error.value)
    assert "\n" not in message
    assert "models/fake/1" in message and "every batch size" in message
    assert "OutOfMemory: OOM when allocating tensor [1]" in message


def test_a_model_with_the_wrong_output_shape_is_one_line_error() -> None:
    class Flat(FailingModel):
        def generate(self, z: np.ndarray, labels: np.ndarray, psi: float) -> np.ndarray:
            return np.zeros((len(z), 4, 4), np.uint8)  # no channel dimension

    with pytest.raises(WarmUpError, match=r"models/fake/1: generate returned images of shape"):
        warm_up(Flat(), SIZES, Metrics())  # type: ignore[arg-type]


def test_an_optional_signature_that_raises_at_a_size_drops_it_too() -> None:
    metrics = Metrics()
    model = FailingModel(optional_fail_at={12})
    kept = warm_up_optional(model, [1, 2, 4, 12], metrics)  # type: ignore[arg-type]
    assert kept == [1, 2, 4] and deviation(metrics, 12) == 255
    with pytest.raises(WarmUpError, match="every batch size"):
        warm_up_optional(FailingModel(optional_fail_at={1, 2}), [1, 2], Metrics())  # type: ignore[arg-type]
