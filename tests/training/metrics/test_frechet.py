"""Frechet distance against the closed form for Gaussians."""

import numpy as np
import pytest

from training.metrics.frechet import frechet_distance, frechet_distance_from_statistics


def test_statistics_form_matches_closed_form_for_diagonal_gaussians():
    # For diagonal covariances, Tr(S1 + S2 - 2 sqrt(S1 S2)) = sum (s1 - s2)^2 with s = std devs.
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    std1, std2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 0.5, 0.5])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((std1 - std2) ** 2)
    got = frechet_distance_from_statistics(mu1, np.diag(std1**2), mu2, np.diag(std2**2))
    assert got == pytest.approx(expected, rel=1e-9)


def test_statistics_form_handles_full_covariances():
    rng = np.random.RandomState(0)
    a = rng.randn(4, 4)
    sigma = a @ a.T + np.eye(4)
    # Same covariance: only the mean term remains.
    assert frechet_distance_from_statistics(np.zeros(4), sigma, np.ones(4), sigma) == pytest.approx(
        4.0, abs=1e-8
    )
    # Scaled covariance c^2 S: Tr(S + c^2 S - 2 c S) = (1 - c)^2 Tr(S).
    got = frechet_distance_from_statistics(np.zeros(4), sigma, np.zeros(4), 4.0 * sigma)
    assert got == pytest.approx(np.trace(sigma), rel=1e-8)


def test_samples_approach_the_closed_form():
    rng = np.random.RandomState(1)
    x = rng.randn(20000, 3)
    y = rng.randn(20000, 3) * 2.0 + np.array([1.0, 0.0, 0.0])
    # Closed form: |mu|^2 = 1, trace term = 3 * (1 - 2)^2 = 3.
    assert frechet_distance(x, y) == pytest.approx(4.0, rel=0.05)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)


def test_rejects_mismatched_widths():
    with pytest.raises(ValueError, match="dimensions"):
        frechet_distance(np.zeros((5, 2)) + np.arange(5)[:, None], np.random.randn(5, 3))
