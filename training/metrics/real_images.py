"""Real images (and their labels) for evaluation, from a ``--dataset`` spec.

Usage::

    from training.metrics.real_images import load_real_images
    real = load_real_images("mnist-idx:../shared/data/mnist", resolution=28, channels=1)
    real.images  # uint8 [N, R, R, C];  real.labels  # int64 [N] or None

The specs and their decoding are the training data's (``training.data``: ``folder:PATH``,
``mnist-idx:DIR``, ``npz:PATH``, ``digits``, ...), so a model is measured against images prepared
exactly as it was trained on them. Evaluation needs every image in memory at once anyway (the
statistics are over the whole set), so no tf.data pipeline is involved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.data import DatasetError, load_dataset

__all__ = ["DatasetError", "RealImages", "load_real_images"]


@dataclass(frozen=True)
class RealImages:
    """A labelled or unlabelled set of real images."""

    images: np.ndarray  # uint8 [N, H, W, C]
    labels: np.ndarray | None  # int64 [N]
    class_names: tuple[str, ...]
    spec: str


def load_real_images(
    spec: str, resolution: int = 28, channels: int = 1, labelled: bool = True
) -> RealImages:
    """Every image of ``spec`` at ``resolution`` x ``resolution`` x ``channels``.

    ``labelled`` asks for the class labels (an error when the dataset has none). Raises
    ``DatasetError`` with a clear message for a missing or unreadable dataset.
    """
    data = load_dataset(spec, resolution, channels, conditional=labelled)
    labels = None if data.labels is None else data.labels.astype(np.int64)
    return RealImages(data.images, labels, tuple(data.class_names), spec)
