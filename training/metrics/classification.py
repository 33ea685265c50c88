"""Metrics for class-conditional generators: class accuracy and per-class coverage.

Usage::

    from training.metrics.classification import class_accuracy, per_class_coverage
    acc = class_accuracy(classifier_logits, requested_labels)
    cov = per_class_coverage(real_features, real_labels, fake_features, fake_labels, num_classes)

Class accuracy is the share of generated images that the domain classifier assigns to the class
the generator was asked for. Per-class coverage runs ``coverage`` (k-NN balls around the real
images) within each class: the share of each class's real images that generated images of that
class come close to, so a class the generator collapses on shows up as a low figure.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from training.metrics.precision_recall import coverage


def class_accuracy(logits: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Share of rows whose arg-max logit equals the requested label."""
    scores = np.asarray(logits)
    wanted = np.asarray(labels).astype(np.int64)
    if scores.ndim != 2 or wanted.shape != (scores.shape[0],):
        raise ValueError(
            f"logits [N, K] and labels [N] expected, got {scores.shape} and {wanted.shape}"
        )
    return float((scores.argmax(axis=1) == wanted).mean())


def per_class_coverage(
    real_features: npt.ArrayLike,
    real_labels: npt.ArrayLike,
    fake_features: npt.ArrayLike,
    fake_labels: npt.ArrayLike,
    num_classes: int,
    k: int = 3,
) -> list[float]:
    """Coverage of each class's real vectors by the generated vectors requested as that class.

    A class with too few real vectors for a k-NN radius, or no generated vectors, scores 0.
    """
    real, fake = np.asarray(real_features), np.asarray(fake_features)
    real_y, fake_y = np.asarray(real_labels), np.asarray(fake_labels)
    result: list[float] = []
    for c in range(num_classes):
        real_c, fake_c = real[real_y == c], fake[fake_y == c]
        if real_c.shape[0] <= k or fake_c.shape[0] == 0:
            result.append(0.0)
            continue
        result.append(coverage(real_c, fake_c, k=k))
    return result
