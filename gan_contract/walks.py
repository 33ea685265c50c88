"""Latent walks: the noise and class of every frame of an animation through latent space.

Usage::

    from gan_contract.walks import walk

    keys = seeds_to_z([0, 7, 42], z_dim)             # float32 [3, z_dim], the key frames
    z, labels = walk(keys, frames=60, loop=True, labels=[3, 3, 5])
    # z: float32 [60, z_dim], labels: int32 [60]; feed both to the generate signature

The walk visits the keys in order, spending the same number of frames on each leg. With
``loop=True`` it returns from the last key to the first, and the last frame stops one step short
of the first, so the animation repeats without a stutter; otherwise the first frame is the first
key and the last frame the last key.

Gaussian latents are interpolated spherically (``slerp``): a straight line between two samples of
N(0, I) passes through points of smaller norm than any real sample (the middle of a line between
two 512-d samples has about 0.71 of their norm), which generators render as washed-out images.
``lerp`` is there for latents that are not Gaussian (e.g. vectors from an encoder).

A class label cannot be interpolated (the generate signature takes one integer per image), so a
class change happens half-way along a leg: each frame takes the class of the key it is nearer to.

Needs numpy only; the service (``POST /animate``) and ``gan-sample --walk`` both use it, so the
same request gives the same frames in both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Interpolation = Literal["slerp", "lerp"]
INTERPOLATIONS: tuple[Interpolation, ...] = ("slerp", "lerp")

# Below this sin(angle) between two keys, slerp's denominators lose precision: the keys are then
# nearly parallel (a straight line is as good) or nearly opposite (no single great circle).
_MIN_SIN = 1e-4


def lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Points ``(1 - t) * a + t * b``: ``a``, ``b`` [N, D], ``t`` [N] in [0, 1] -> [N, D]."""
    t = t[:, None]
    return (1.0 - t) * a + t * b


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation from ``a`` to ``b`` (rows [N, D]) at fractions ``t`` [N].

    The path follows the great circle between the directions of ``a`` and ``b`` while the norm
    goes linearly from ``|a|`` to ``|b|``, so every point keeps the norm of a typical Gaussian
    sample. Nearly parallel or opposite, and zero, vectors fall back to :func:`lerp`.
    """
    a64, b64, t64 = (np.asarray(x, np.float64) for x in (a, b, t))
    norm_a = np.linalg.norm(a64, axis=1)
    norm_b = np.linalg.norm(b64, axis=1)
    safe_a = np.where(norm_a > 0, norm_a, 1.0)[:, None]
    safe_b = np.where(norm_b > 0, norm_b, 1.0)[:, None]
    unit_a, unit_b = a64 / safe_a, b64 / safe_b
    cos = np.clip(np.sum(unit_a * unit_b, axis=1), -1.0, 1.0)
    angle = np.arccos(cos)
    sin = np.sin(angle)
    curved = (sin > _MIN_SIN) & (norm_a > 0) & (norm_b > 0)
    safe_sin = np.where(curved, sin, 1.0)
    w_a = np.sin((1.0 - t64) * angle) / safe_sin
    w_b = np.sin(t64 * angle) / safe_sin
    direction = w_a[:, None] * unit_a + w_b[:, None] * unit_b
    norm = (1.0 - t64) * norm_a + t64 * norm_b
    spherical = direction * norm[:, None]
    return np.where(curved[:, None], spherical, lerp(a64, b64, t64))


def schedule(keys: int, frames: int, loop: bool) -> tuple[np.ndarray, np.ndarray]:
    """Which leg each frame is on and how far along it: (leg int64 [frames], t float64 [frames]).

    Leg ``i`` runs from key ``i`` to key ``i + 1`` (to key 0 after the last when ``loop``).
    Raises ValueError for fewer than 2 keys or frames.
    """
    if keys < 2:
        raise ValueError(f"a walk needs at least 2 keys, got {keys}")
    if frames < 2:
        raise ValueError(f"a walk needs at least 2 frames, got {frames}")
    legs = keys if loop else keys - 1
    # Position along the whole walk, in legs: 0 at the first key, `legs` at the end.
    if loop:
        position = np.arange(frames, dtype=np.float64) * legs / frames
    else:
        position = np.linspace(0.0, legs, frames, dtype=np.float64)
    leg = np.minimum(np.floor(position).astype(np.int64), legs - 1)
    return leg, position - leg


def walk(
    keys: np.ndarray,
    frames: int,
    *,
    loop: bool = True,
    interpolation: Interpolation = "slerp",
    labels: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Noise float32 [frames, D] and labels int32 [frames] of a walk through ``keys`` [K, D].

    ``labels``: the class of each key (K entries), or None for zeros (an unconditional model).
    """
    keys = np.asarray(keys, np.float64)
    if keys.ndim != 2:
        raise ValueError(f"keys must be a [K, D] array, got shape {keys.shape}")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    count = len(keys)
    leg, t = schedule(count, frames, loop)
    start, end = leg, (leg + 1) % count
    step = slerp if interpolation == "slerp" else lerp
    z = step(keys[start], keys[end], t).astype(np.float32)
    if labels is None:
        return z, np.zeros(frames, np.int32)
    if len(labels) != count:
        raise ValueError(f"{len(labels)} labels for {count} keys; give one per key")
    key_labels = np.asarray(labels, np.int32)
    # The class of the nearer key; exactly half-way counts as the next key.
    nearer = np.where(t < 0.5, start, end)
    return z, key_labels[nearer]
