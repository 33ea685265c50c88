"""Fixtures shared by the training tests (the metrics and the gan-eval command use the last two).

``bank_model`` is a tiny exported "generator" that draws real MNIST digits of the requested class.
It follows the SavedModel contract (signature ``generate``, ``model.json``) without any training,
so the evaluation code is tested on images whose right answers are known: a classifier must
agree with the requested class, and an untrained generator must score far worse.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import pytest

from training.metrics.real_images import RealImages, load_real_images

Z_DIM = 8


@pytest.fixture
def restore_policy() -> Iterator[None]:
    """Put the Keras mixed-precision policy back after a test that changes it."""
    previous = keras.mixed_precision.global_policy().name
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@pytest.fixture(scope="session")
def mnist(mnist_dir: Path) -> RealImages:
    return load_real_images(f"mnist-idx:{mnist_dir}")


@pytest.fixture(scope="session")
def bank_model(mnist: RealImages, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models/bank/1: returns one of 50 real images (from images 5000..) of the asked class."""
    import tensorflow as tf

    assert mnist.labels is not None
    images, labels = mnist.images[5000:], mnist.labels[5000:]
    bank = np.stack([images[labels == c][:50] for c in range(10)])  # [10, 50, 28, 28, 1]

    class Bank(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bank = tf.constant(bank)

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, Z_DIM], tf.float32, name="z"),
                tf.TensorSpec([None], tf.int32, name="labels"),
                tf.TensorSpec([], tf.float32, name="truncation_psi"),
            ]
        )
        def generate(
            self, z: tf.Tensor, labels: tf.Tensor, truncation_psi: tf.Tensor
        ) -> dict[str, tf.Tensor]:
            index = tf.cast(tf.abs(z[:, 0] * truncation_psi) * 1000.0, tf.int32) % 50
            return {"images": tf.gather_nd(self.bank, tf.stack([labels, index], axis=1))}

    version = tmp_path_factory.mktemp("models") / "bank" / "1"
    module = Bank()
    tf.saved_model.save(module, str(version), signatures={"generate": module.generate})
    meta = {
        "name": "bank",
        "version": 1,
        "z_dim": Z_DIM,
        "resolution": 28,
        "channels": 1,
        "num_classes": 10,
        "class_names": [str(i) for i in range(10)],
        "architecture": "dcgan",
        "dataset": "mnist-idx:test",
        "steps": 0,
        "training_options": {
            "dataset": "mnist-idx:test",
            "resolution": 28,
            "channels": 1,
            "conditional": True,
            "z_dim": Z_DIM,
            "g_width": 8,
            "max_width": 16,
        },
        "metrics": {},
        # No score signature, so no calibration to measure: an empty one, as the schema allows.
        "calibration": {"quantile_levels": [], "real_logits": []},
    }
    (version / "model.json").write_text(json.dumps(meta))
    return version.parent
