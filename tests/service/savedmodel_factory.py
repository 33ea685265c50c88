"""Build small SavedModels that follow docs/model-format.md, without the training package.

Usage::

    from tests.service.savedmodel_factory import export_model

    export_model(models_dir / "tiny" / "1", name="tiny", version=1, num_classes=3)

The generator is a real (small) convolutional network with random weights: a dense layer to a
``resolution/4`` feature map, two nearest-neighbour upsamplings each followed by a 3x3
convolution, tanh, and the contract's uint8 mapping. The discriminator is a strided convolution
and a dense layer. A conditional model concatenates a label embedding to ``z`` (generator) and
adds a projection term (discriminator). ``model.json`` carries a synthetic calibration. A model
can be made to fail at some batch sizes (``fail_at_batch``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _calibration(num_levels: int = 101) -> dict[str, Any]:
    levels = np.linspace(0.0, 1.0, num_levels)
    # Quantiles of a normal-ish spread: real logits around +1, generated around -1.
    real = np.linspace(-2.0, 4.0, num_levels)
    generated = np.linspace(-4.0, 2.0, num_levels)
    return {
        "quantile_levels": [round(float(v), 4) for v in levels],
        "real_logits": [float(v) for v in real],
        "generated_logits": [float(v) for v in generated],
        "num_real": 1000,
        "num_generated": 1000,
    }


def model_json(
    name: str, version: int, z_dim: int, resolution: int, channels: int, num_classes: int
) -> dict[str, Any]:
    """The ``model.json`` of a factory-built model."""
    return {
        "name": name,
        "version": version,
        "z_dim": z_dim,
        "resolution": resolution,
        "channels": channels,
        "num_classes": num_classes,
        "class_names": [str(i) for i in range(num_classes)],
        "architecture": "dcgan",
        "loss": "nonsaturating",
        "dataset": "synthetic",
        "steps": 0,
        "images_seen": 0,
        "training_options": {},
        "command": "savedmodel_factory",
        "metrics": {},
        "calibration": _calibration(),
        "created_at": "2026-01-01T00:00:00Z",
        "project_version": "0.1.0",
        "seed_convention": "z = numpy.random.RandomState(seed).randn(z_dim).astype('float32')",
    }


def export_model(
    path: Path,
    *,
    name: str,
    version: int,
    z_dim: int = 8,
    resolution: int = 16,
    channels: int = 1,
    num_classes: int = 0,
    width: int = 16,
    seed: int = 0,
    fail_at_batch: Sequence[int] = (),
) -> Path:
    """Write a SavedModel and its ``model.json`` to ``path`` (``.../<name>/<version>``).

    ``fail_at_batch``: batch sizes at which ``generate`` raises (an ``InvalidArgumentError``),
    as a model that loads but runs out of device memory at a large batch does.
    """
    import tensorflow as tf

    if resolution % 4:
        raise ValueError("resolution must be a multiple of 4")
    rng = np.random.default_rng(seed)
    base = resolution // 4
    embed_dim = 4 if num_classes else 0

    def weight(*shape: int, scale: float = 1.0) -> tf.Variable:
        fan_in = int(np.prod(shape[:-1]))
        values = rng.normal(0.0, scale / np.sqrt(fan_in), size=shape).astype("float32")
        return tf.Variable(values)

    class TinyGan(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = weight(max(num_classes, 1), max(embed_dim, 1), scale=float(embed_dim or 1))
            self.dense = weight(z_dim + embed_dim, base * base * width)
            self.conv1 = weight(3, 3, width, width // 2)
            self.conv2 = weight(3, 3, width // 2, channels, scale=3.0)
            self.d_conv = weight(4, 4, channels, width)
            self.d_dense = weight((resolution // 2) ** 2 * width, 1)
            self.d_embed = weight(max(num_classes, 1), (resolution // 2) ** 2 * width)

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, z_dim], tf.float32, name="z"),
                tf.TensorSpec([None], tf.int32, name="labels"),
                tf.TensorSpec([], tf.float32, name="truncation_psi"),
            ]
        )
        def generate(
            self, z: tf.Tensor, labels: tf.Tensor, truncation_psi: tf.Tensor
        ) -> dict[str, tf.Tensor]:
            if fail_at_batch:
                batch = tf.shape(z)[0]
                tf.debugging.Assert(
                    tf.reduce_all(tf.not_equal(batch, list(fail_at_batch))),
                    ["out of memory (a test model) at batch size", batch],
                )
            h = z * truncation_psi
            if num_classes:
                h = tf.concat([h, tf.gather(self.embed, labels)], axis=1)
            h = tf.nn.relu(tf.matmul(h, self.dense))
            h = tf.reshape(h, [-1, base, base, width])
            h = tf.image.resize(h, [base * 2, base * 2], method="nearest")
            h = tf.nn.relu(tf.nn.conv2d(h, self.conv1, 1, "SAME"))
            h = tf.image.resize(h, [resolution, resolution], method="nearest")
            x = tf.tanh(tf.nn.conv2d(h, self.conv2, 1, "SAME"))
            images = tf.cast(tf.clip_by_value(tf.round(x * 127.5 + 127.5), 0, 255), tf.uint8)
            return {"images": images}

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, resolution, resolution, channels], tf.uint8, name="images"),
                tf.TensorSpec([None], tf.int32, name="labels"),
            ]
        )
        def score(self, images: tf.Tensor, labels: tf.Tensor) -> dict[str, tf.Tensor]:
            x = tf.cast(images, tf.float32) / 127.5 - 1.0
            h = tf.nn.leaky_relu(tf.nn.conv2d(x, self.d_conv, 2, "SAME"), 0.2)
            h = tf.reshape(h, [tf.shape(h)[0], -1])
            logits = tf.squeeze(tf.matmul(h, self.d_dense), axis=1)
            if num_classes:
                logits += tf.reduce_sum(h * tf.gather(self.d_embed, labels), axis=1)
            return {"logits": logits}

    module = TinyGan()
    path.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(
        module, str(path), signatures={"generate": module.generate, "score": module.score}
    )
    meta = model_json(name, version, z_dim, resolution, channels, num_classes)
    (path / "model.json").write_text(json.dumps(meta, indent=2))
    return path
