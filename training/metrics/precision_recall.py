"""Improved precision and recall (Kynkaenniemi et al., 2019) and coverage on feature vectors.

Usage::

    from training.metrics.precision_recall import precision_recall
    precision, recall = precision_recall(real_features, fake_features, k=3)

Each set's manifold is the union of balls around its vectors, of radius the distance to the k-th
nearest neighbour within the set. Precision is the share of generated vectors inside the real
manifold (fidelity), recall the share of real vectors inside the generated manifold (diversity).
``coverage`` (Naeem et al., 2020) is the share of real vectors whose ball holds a generated one.

Pairwise distances are computed in float32 in row chunks, so 10,000 x 10,000 sets need a few tens
of megabytes rather than the 400 MB of the full matrix.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

DEFAULT_CHUNK = 1000


def _as_features(features: npt.ArrayLike) -> np.ndarray:
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"features must be a non-empty [N, D] array, got shape {x.shape}")
    return x


def _distance_chunks(
    rows: np.ndarray, cols: np.ndarray, chunk: int
) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield (row slice, Euclidean distances [chunk, len(cols)]) in float32."""
    col_norms = np.einsum("ij,ij->i", cols, cols)
    for start in range(0, rows.shape[0], chunk):
        part = rows[start : start + chunk]
        sq = np.einsum("ij,ij->i", part, part)[:, None] + col_norms[None, :] - 2.0 * part @ cols.T
        # Cancellation can leave tiny negatives where the true distance is 0.
        np.maximum(sq, 0.0, out=sq)
        yield slice(start, start + part.shape[0]), np.sqrt(sq)


def knn_radii(features: npt.ArrayLike, k: int = 3, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Distance from each vector to its k-th nearest neighbour in the same set (itself excluded)."""
    x = _as_features(features)
    if not 1 <= k < x.shape[0]:
        raise ValueError(f"k must lie in 1..{x.shape[0] - 1} for a set of {x.shape[0]} vectors")
    radii = np.empty(x.shape[0], dtype=np.float32)
    for rows, dist in _distance_chunks(x, x, chunk):
        # Column 0 of the sorted row is the vector itself (distance 0), so the k-th neighbour
        # sits at index k; this matches the reference implementation.
        radii[rows] = np.partition(dist, k, axis=1)[:, k]
    return radii


def manifold_membership(
    queries: npt.ArrayLike,
    support: npt.ArrayLike,
    support_radii: np.ndarray,
    chunk: int = DEFAULT_CHUNK,
) -> np.ndarray:
    """Boolean per query: does it fall inside any support vector's ball?"""
    q, s = _as_features(queries), _as_features(support)
    inside = np.empty(q.shape[0], dtype=bool)
    for rows, dist in _distance_chunks(q, s, chunk):
        inside[rows] = (dist <= support_radii[None, :]).any(axis=1)
    return inside


def precision_recall(
    real_features: npt.ArrayLike,
    fake_features: npt.ArrayLike,
    k: int = 3,
    chunk: int = DEFAULT_CHUNK,
) -> tuple[float, float]:
    """Improved precision and recall of ``fake_features`` against ``real_features``."""
    real, fake = _as_features(real_features), _as_features(fake_features)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature widths differ: {real.shape[1]} and {fake.shape[1]}")
    real_radii = knn_radii(real, k, chunk)
    fake_radii = knn_radii(fake, k, chunk)
    precision = manifold_membership(fake, real, real_radii, chunk).mean()
    recall = manifold_membership(real, fake, fake_radii, chunk).mean()
    return float(precision), float(recall)


def coverage(
    real_features: npt.ArrayLike,
    fake_features: npt.ArrayLike,
    k: int = 3,
    chunk: int = DEFAULT_CHUNK,
) -> float:
    """Share of real vectors whose k-NN ball (within the real set) holds a generated vector."""
    real, fake = _as_features(real_features), _as_features(fake_features)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature widths differ: {real.shape[1]} and {fake.shape[1]}")
    real_radii = knn_radii(real, k, chunk)
    covered = np.zeros(real.shape[0], dtype=bool)
    for rows, dist in _distance_chunks(fake, real, chunk):
        del rows  # only which real balls are hit matters, not by which generated vector
        covered |= (dist <= real_radii[None, :]).any(axis=0)
    return float(covered.mean())
