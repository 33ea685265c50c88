"""Precision and recall: 1 for identical sets, near 0 for disjoint ones."""

import numpy as np
import pytest

from training.metrics.precision_recall import coverage, knn_radii, precision_recall


def test_identical_sets_score_one():
    x = np.random.RandomState(0).randn(500, 8)
    precision, recall = precision_recall(x, x.copy(), k=3, chunk=128)
    assert precision == 1.0
    assert recall == 1.0
    assert coverage(x, x.copy(), k=3) == 1.0


def test_disjoint_sets_score_near_zero():
    rng = np.random.RandomState(1)
    x = rng.randn(500, 8)
    y = rng.randn(500, 8) + 20.0
    precision, recall = precision_recall(x, y, k=3, chunk=100)
    assert precision < 0.01
    assert recall < 0.01


def test_mode_collapse_keeps_precision_and_loses_recall():
    rng = np.random.RandomState(2)
    real = rng.randn(1000, 4)
    collapsed = rng.randn(1000, 4) * 0.05  # every sample near the mode
    precision, recall = precision_recall(real, collapsed, k=3)
    assert precision > 0.9
    assert recall < 0.2


def test_chunking_does_not_change_the_radii():
    x = np.random.RandomState(3).randn(300, 5)
    exact = np.sort(np.linalg.norm(x[:, None] - x[None], axis=-1), axis=1)[:, 3]
    np.testing.assert_allclose(knn_radii(x, k=3, chunk=7), exact, rtol=1e-4)


def test_k_must_fit_the_set():
    with pytest.raises(ValueError, match="k must lie"):
        knn_radii(np.ones((3, 2)), k=3)
