"""Kernel Inception Distance (KID): the unbiased MMD^2 with a cubic polynomial kernel.

Usage::

    from training.metrics.kid import kernel_distance
    mean, std = kernel_distance(real_features, fake_features, subset_size=1000, num_subsets=100)

The kernel is ``k(x, y) = (x . y / d + 1) ** 3`` (Binkowski et al., 2018). The unbiased estimator
is computed on ``num_subsets`` random subsets of ``subset_size`` vectors from each set and averaged;
unlike FD it has no bias from the sample size, so its expectation is 0 for two samples of one
distribution (single estimates can be slightly negative).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def _polynomial_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equal-sized float64 sets with the cubic polynomial kernel."""
    m, d = x.shape
    k_xx = (x @ x.T / d + 1.0) ** 3
    k_yy = (y @ y.T / d + 1.0) ** 3
    k_xy = (x @ y.T / d + 1.0) ** 3
    # Drop the diagonal of the within-set kernels: that is what makes the estimator unbiased.
    sum_xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    sum_yy = (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(sum_xx + sum_yy - 2.0 * k_xy.mean())


def kernel_distance(
    features1: npt.ArrayLike,
    features2: npt.ArrayLike,
    subset_size: int = 1000,
    num_subsets: int = 100,
    seed: int = 0,
) -> tuple[float, float]:
    """Mean and standard deviation of the unbiased KID over random subsets.

    The subset size is capped at the smaller set's size; sets need at least two vectors.
    """
    x = np.asarray(features1, dtype=np.float64)
    y = np.asarray(features2, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"features must be [N, D] arrays of one width: {x.shape} and {y.shape}")
    m = min(subset_size, x.shape[0], y.shape[0])
    if m < 2:
        raise ValueError("KID needs at least two feature vectors in each set")
    if num_subsets < 1:
        raise ValueError("num_subsets must be >= 1")
    rng = np.random.RandomState(seed)
    values = np.empty(num_subsets, dtype=np.float64)
    for i in range(num_subsets):
        xs = x[rng.choice(x.shape[0], m, replace=False)]
        ys = y[rng.choice(y.shape[0], m, replace=False)]
        values[i] = _polynomial_mmd2_unbiased(xs, ys)
    return float(values.mean()), float(values.std())
