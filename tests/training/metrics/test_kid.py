"""KID is about 0 for one distribution and clearly positive for shifted ones."""

import numpy as np
import pytest

from training.metrics.kid import kernel_distance


def test_same_distribution_is_near_zero_and_shifted_is_positive():
    rng = np.random.RandomState(0)
    x, y = rng.randn(2000, 16), rng.randn(2000, 16)
    same, same_std = kernel_distance(x, y, subset_size=400, num_subsets=10)
    shifted, _ = kernel_distance(x, y + 0.5, subset_size=400, num_subsets=10)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 0.05
    assert shifted > 20 * abs(same)


def test_unbiased_estimator_matches_direct_formula():
    rng = np.random.RandomState(3)
    x, y = rng.randn(6, 2), rng.randn(6, 2) + 1.0

    def k(a, b):
        return (a @ b / 2 + 1.0) ** 3

    m = 6
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    mean, std = kernel_distance(x, y, subset_size=6, num_subsets=3)
    # With the whole sets as the subset, every draw is a permutation: same value, zero spread.
    assert mean == pytest.approx(xx + yy - 2 * xy, rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-10)


def test_rejects_too_few_vectors():
    with pytest.raises(ValueError, match="at least two"):
        kernel_distance(np.ones((1, 3)), np.ones((4, 3)))
