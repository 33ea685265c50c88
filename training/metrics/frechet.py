"""Frechet distance (FD) between two sets of feature vectors.

Usage::

    from training.metrics.frechet import frechet_distance, gaussian_statistics
    fd = frechet_distance(real_features, fake_features)  # arrays [N, D]

The statistics are computed in float64 and the square root of the covariance product is taken with
``scipy.linalg.sqrtm`` (as in the original FID code), which is what makes the figure comparable to
published ones. With InceptionV3 pool features this is the usual FID.
"""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt
from scipy import linalg

ArrayLike = npt.ArrayLike


def gaussian_statistics(features: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of ``features`` [N, D], in float64."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"features must be an [N, D] array with N >= 2, got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def frechet_distance_from_statistics(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`` for two Gaussians."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1 = np.atleast_2d(sigma1).astype(np.float64)
    sigma2 = np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError("the two sets of statistics have different dimensions")
    diff = mu1 - mu2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
    if caught or not np.isfinite(covmean).all():
        # A singular product (fewer samples than dimensions, features that are always 0 after
        # a ReLU): regularise both covariances slightly, as the reference implementation does.
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        # Rounding leaves tiny imaginary parts; a large one means the result is meaningless.
        max_imag = float(np.max(np.abs(covmean.imag)))
        if max_imag > 1e-3 * max(1.0, float(np.max(np.abs(covmean.real)))):
            warnings.warn(
                f"matrix square root has an imaginary component of {max_imag:.3g}",
                RuntimeWarning,
                stacklevel=2,
            )
        covmean = covmean.real
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    # The exact value is >= 0; rounding can push an identical pair a hair below.
    return float(max(value, 0.0))


def frechet_distance(features1: ArrayLike, features2: ArrayLike) -> float:
    """Frechet distance between the Gaussians fitted to two feature sets [N1, D] and [N2, D]."""
    mu1, sigma1 = gaussian_statistics(features1)
    mu2, sigma2 = gaussian_statistics(features2)
    return frechet_distance_from_statistics(mu1, sigma1, mu2, sigma2)
