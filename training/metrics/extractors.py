"""Feature extractors: uint8 images -> feature vectors (and class logits where there are any).

Usage::

    from training.metrics.extractors import load_extractor
    extractor = load_extractor("auto", image_shape=(28, 28, 1))    # the committed MNIST classifier
    extractor = load_extractor("classifier:path/to/saved_model")   # one from train-extractor
    extractor = load_extractor("inception:~/inception_v3_notop.h5")  # the usual FID features
    out = extractor(images)   # out.features float32 [N, D]; out.logits [N, K] or None

``inception`` alone reads the weights path from ``$GAN_INCEPTION_WEIGHTS``. Nothing is ever
downloaded: the weights must be on disk (Keras' ``inception_v3_weights_tf_dim_ordering_tf_kernels_
notop.h5``), otherwise ``ExtractorError`` says where to put them. Keras' ImageNet weights are not
the TF-slim graph of the original FID code, so Inception FDs are comparable with each other, not
exactly with published FIDs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from training.config import ConfigError

ASSETS = Path(__file__).resolve().parents[1] / "assets"
MNIST_CLASSIFIER = ASSETS / "mnist_classifier"
INCEPTION_ENV = "GAN_INCEPTION_WEIGHTS"
INCEPTION_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"


class ExtractorError(ConfigError):
    """The extractor cannot be loaded or does not fit the images; the message says why.

    A ``ConfigError`` so that ``gan-train --eval-every`` reports it like any bad option.
    """


@dataclass(frozen=True)
class Features:
    """What an extractor returns for a batch of images."""

    features: np.ndarray  # float32 [N, D]
    logits: np.ndarray | None  # float32 [N, K] for a classifier, None otherwise


class Extractor(Protocol):
    """Maps uint8 images [N, H, W, C] (any size, 1 or 3 channels) to features."""

    name: str
    num_classes: int  # 0 when the extractor gives no class logits
    info: dict[str, Any]

    def __call__(self, images: np.ndarray, batch_size: int = 500) -> Features: ...


def _fit(images: np.ndarray, size: int, channels: int) -> Any:
    """Resize and convert channels in TensorFlow (only when they differ from the input's)."""
    import tensorflow as tf

    x = tf.convert_to_tensor(images)
    if x.shape[-1] != channels:
        x = tf.image.grayscale_to_rgb(x) if channels == 3 else tf.image.rgb_to_grayscale(x)
    if x.shape[1] != size or x.shape[2] != size:
        x = tf.image.resize(tf.cast(x, tf.float32), (size, size), method="bilinear")
        x = tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8)
    return x


class ClassifierExtractor:
    """A domain classifier SavedModel from ``gan-eval train-extractor`` (signature ``features``)."""

    def __init__(self, path: Path) -> None:
        info_path = path / "extractor.json"
        if not (path / "saved_model.pb").is_file() or not info_path.is_file():
            raise ExtractorError(
                f"no domain classifier at {path} (expected saved_model.pb and extractor.json; "
                "make one with `gan-eval train-extractor --dataset SPEC --out DIR`)"
            )
        import tensorflow as tf

        self.info: dict[str, Any] = json.loads(info_path.read_text())
        self.name = f"classifier:{path.name}"
        self.num_classes = int(self.info["num_classes"])
        self._size = int(self.info["resolution"])
        self._channels = int(self.info["channels"])
        self._loaded = tf.saved_model.load(str(path))
        self._fn = self._loaded.signatures["features"]

    def __call__(self, images: np.ndarray, batch_size: int = 500) -> Features:
        feats, logits = [], []
        for start in range(0, images.shape[0], batch_size):
            out = self._fn(
                images=_fit(images[start : start + batch_size], self._size, self._channels)
            )
            feats.append(out["features"].numpy())
            logits.append(out["logits"].numpy())
        return Features(np.concatenate(feats), np.concatenate(logits))


class InceptionExtractor:
    """InceptionV3's 2048-d average-pool features (the usual FID), from a local weights file."""

    def __init__(self, weights: Path) -> None:
        if not weights.is_file():
            raise ExtractorError(
                f"InceptionV3 weights not found at {weights}. They are never downloaded: get "
                f"Keras' {INCEPTION_FILE} and pass --extractor inception:PATH "
                f"(or set {INCEPTION_ENV})"
            )
        import keras

        try:
            self._net = keras.applications.InceptionV3(
                include_top=False, weights=str(weights), pooling="avg", input_shape=(299, 299, 3)
            )
        except (ValueError, OSError) as exc:
            raise ExtractorError(
                f"{weights} is not InceptionV3 no-top weights ({INCEPTION_FILE}): {exc}"
            ) from exc
        self.name = "inception-v3"
        self.num_classes = 0
        self.info = {"kind": "inception-v3-pool", "weights": str(weights), "feature_dim": 2048}

    def __call__(self, images: np.ndarray, batch_size: int = 50) -> Features:
        import tensorflow as tf

        feats = []
        for start in range(0, images.shape[0], batch_size):
            x = tf.cast(_fit(images[start : start + batch_size], 299, 3), tf.float32)
            feats.append(self._net(x / 127.5 - 1.0, training=False).numpy())
        return Features(np.concatenate(feats).astype(np.float32), None)


def load_extractor(spec: str, image_shape: tuple[int, int, int] | None = None) -> Extractor:
    """``auto``, ``classifier:DIR``, ``inception`` or ``inception:WEIGHTS``; see the module doc.

    ``auto`` is the committed MNIST classifier, for 28x28 grayscale images only.
    """
    kind, _, arg = spec.partition(":")
    if kind == "auto":
        if image_shape is not None and tuple(image_shape) != (28, 28, 1):
            raise ExtractorError(
                f"no bundled classifier for {image_shape[0]}x{image_shape[1]}x{image_shape[2]} "
                "images: train one with `gan-eval train-extractor --dataset SPEC --out DIR` and "
                "pass --extractor classifier:DIR, or use --extractor inception:WEIGHTS"
            )
        return ClassifierExtractor(MNIST_CLASSIFIER)
    if kind == "classifier":
        if not arg:
            raise ExtractorError("--extractor classifier needs a directory: classifier:DIR")
        return ClassifierExtractor(Path(arg).expanduser())
    if kind == "inception":
        path = arg or os.environ.get(INCEPTION_ENV, "")
        if not path:
            raise ExtractorError(
                f"InceptionV3 weights not given: pass --extractor inception:PATH to Keras' "
                f"{INCEPTION_FILE} or set {INCEPTION_ENV} (they are never downloaded)"
            )
        return InceptionExtractor(Path(path).expanduser())
    raise ExtractorError(
        f"unknown extractor {spec!r}: use auto, classifier:DIR, inception or inception:WEIGHTS"
    )
