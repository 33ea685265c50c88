"""DiffAugment: differentiable augmentation of real and generated images alike.

Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training" (NeurIPS 2020). The same
random transformations are applied to every image the discriminator sees, real or generated, and
they are differentiable, so the generator's gradient flows through them. This keeps D from
memorising a small data set without leaking the augmentations into G's outputs.

Usage::

    from training.augment import make_augment

    augment = make_augment("color,translation,cutout")   # None for ""
    seed = tf.constant([0, 7], tf.int64)                  # a stateless seed: the same draws again
    d_real = discriminator([augment(real_images, seed), labels])

Randomness is stateless: the parameters are a pure function of ``seed`` (a pair of int64, as for
``tf.random.stateless_uniform``), so a run resumed from a checkpoint augments exactly as the
uninterrupted run did. Under a distribution strategy each replica passes its ``BatchSlice``: the
parameters are drawn for the whole global batch and each replica takes its own rows, so N replicas
augment every image exactly as one device would.

Policies (comma-separated, applied in the order given):

- ``color``: random brightness (+U(-0.5, 0.5)), saturation (x U(0, 2) around the pixel's channel
  mean) and contrast (x U(0.5, 1.5) around the image mean), as in the paper; values are not
  clipped (clipping would stop gradients), so they may leave [-1, 1] a little.
- ``translation``: a random shift of up to 1/8 of the image size in each direction, the uncovered
  border filled with zeros.
- ``cutout``: a random square of half the image size set to zero.

Images are float tensors [B, H, W, C] in [-1, 1] with any number of channels (saturation is the
identity on one channel). Every image in the batch draws its own parameters. The functions are plain
TensorFlow ops, so they run inside ``tf.function``, under XLA and under a distribution strategy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf


class BatchSlice(NamedTuple):
    """Which rows of the global batch a batch holds: slice ``replica`` of ``replicas`` equal ones.

    One device holds the whole batch (the default); replica ``r`` of ``n`` holds ``(r, n)``.
    """

    replica: tf.Tensor | int = 0
    replicas: int = 1


WHOLE = BatchSlice()

Augment = Callable[[tf.Tensor, tf.Tensor, BatchSlice], tf.Tensor]
Transform = Callable[[tf.Tensor, tf.Tensor, BatchSlice], tf.Tensor]


def draw_uniform(
    seed: tf.Tensor,
    batch: tf.Tensor,
    tail: list[int],
    low: float | tf.Tensor,
    high: float | tf.Tensor,
    part: BatchSlice = WHOLE,
    dtype: tf.DType = tf.float32,
) -> tf.Tensor:
    """``[batch, *tail]`` stateless uniform values in [low, high): rows of the global draw.

    The values of all ``batch * part.replicas`` rows are drawn from ``seed`` and the batch's own
    slice is returned, so the values an image gets do not depend on how many replicas share the
    batch (the data is split across replicas the same way).
    """
    values = tf.random.stateless_uniform(
        [batch * part.replicas, *tail], seed=seed, minval=low, maxval=high, dtype=dtype
    )
    start = tf.cast(part.replica, tf.int32) * batch
    return values[start : start + batch]


def _sub_seeds(seed: tf.Tensor, count: int) -> list[tf.Tensor]:
    """``count`` independent stateless seeds derived from ``seed``."""
    seeds = tf.random.experimental.stateless_split(seed, num=count)
    return [seeds[i] for i in range(count)]


def _uniform(x: tf.Tensor, seed: tf.Tensor, part: BatchSlice, low: float, high: float) -> tf.Tensor:
    """One float per image, shaped to broadcast over [B, H, W, C], in the images' dtype."""
    values = draw_uniform(seed, tf.shape(x)[0], [1, 1, 1], low, high, part)
    return tf.cast(values, x.dtype)


def brightness(x: tf.Tensor, seed: tf.Tensor, part: BatchSlice = WHOLE) -> tf.Tensor:
    """Add one random offset in [-0.5, 0.5) to every pixel of each image."""
    return x + _uniform(x, seed, part, -0.5, 0.5)


def saturation(x: tf.Tensor, seed: tf.Tensor, part: BatchSlice = WHOLE) -> tf.Tensor:
    """Scale each pixel's deviation from its channel mean by a random factor in [0, 2)."""
    mean = tf.reduce_mean(x, axis=3, keepdims=True)
    return (x - mean) * _uniform(x, seed, part, 0.0, 2.0) + mean


def contrast(x: tf.Tensor, seed: tf.Tensor, part: BatchSlice = WHOLE) -> tf.Tensor:
    """Scale each image's deviation from its mean by a random factor in [0.5, 1.5)."""
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return (x - mean) * _uniform(x, seed, part, 0.5, 1.5) + mean


def _shift_axis(x: tf.Tensor, shift: tf.Tensor, axis: int) -> tf.Tensor:
    """Move each image by ``shift[b]`` pixels along ``axis`` (1 or 2), filling with zeros.

    Output pixel i takes input pixel i + shift; indices that fall outside map to a zero border.
    """
    size = tf.shape(x)[axis]
    padding = [[0, 0], [0, 0], [0, 0], [0, 0]]
    padding[axis] = [1, 1]
    padded = tf.pad(x, padding)
    # Index 0 and size + 1 of the padded axis are the zero border.
    index = tf.range(size)[tf.newaxis, :] + shift[:, tf.newaxis] + 1
    index = tf.clip_by_value(index, 0, size + 1)
    return tf.gather(padded, index, axis=axis, batch_dims=1)


def translation(
    x: tf.Tensor, seed: tf.Tensor, part: BatchSlice = WHOLE, ratio: float = 0.125
) -> tf.Tensor:
    """Shift each image by up to ``ratio`` of its size (rounded) in both directions."""
    batch = tf.shape(x)[0]
    sizes = tf.cast(tf.shape(x)[1:3], tf.float32)
    limits = tf.cast(sizes * ratio + 0.5, tf.int32)
    seed_y, seed_x = _sub_seeds(seed, 2)
    shift_y = draw_uniform(seed_y, batch, [], -limits[0], limits[0] + 1, part, tf.int32)
    shift_x = draw_uniform(seed_x, batch, [], -limits[1], limits[1] + 1, part, tf.int32)
    return _shift_axis(_shift_axis(x, shift_y, 1), shift_x, 2)


def cutout(
    x: tf.Tensor, seed: tf.Tensor, part: BatchSlice = WHOLE, ratio: float = 0.5
) -> tf.Tensor:
    """Zero one square of ``ratio`` of the image size per image, at a random centre."""
    batch = tf.shape(x)[0]
    height, width = tf.shape(x)[1], tf.shape(x)[2]
    cut = tf.cast(tf.cast(tf.shape(x)[1:3], tf.float32) * ratio + 0.5, tf.int32)
    # The centre ranges as in the paper's code: the square may hang over any edge.
    seed_y, seed_x = _sub_seeds(seed, 2)
    centre_y = draw_uniform(seed_y, batch, [1], 0, height + (1 - cut[0] % 2), part, tf.int32)
    centre_x = draw_uniform(seed_x, batch, [1], 0, width + (1 - cut[1] % 2), part, tf.int32)
    top, left = centre_y - cut[0] // 2, centre_x - cut[1] // 2
    rows = tf.range(height)[tf.newaxis, :]
    cols = tf.range(width)[tf.newaxis, :]
    in_rows = (rows >= top) & (rows < top + cut[0])  # [B, H]
    in_cols = (cols >= left) & (cols < left + cut[1])  # [B, W]
    inside = in_rows[:, :, tf.newaxis] & in_cols[:, tf.newaxis, :]  # [B, H, W]
    keep = tf.cast(tf.logical_not(inside), x.dtype)[:, :, :, tf.newaxis]
    return x * keep


POLICIES: dict[str, tuple[Transform, ...]] = {
    "color": (brightness, saturation, contrast),
    "translation": (translation,),
    "cutout": (cutout,),
}


def parse_policy(policy: str) -> tuple[str, ...]:
    """The policy's names in order; raises ValueError naming any unknown or repeated one."""
    names = tuple(name.strip() for name in policy.split(",") if name.strip())
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise ValueError(
            f"unknown augmentation {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(POLICIES)} (comma-separated), or '' for none"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"augmentation policy {policy!r} names a transformation twice")
    return names


def _image_channels_only(function: Transform) -> Transform:
    """``function`` applied to every channel but the last, which passes through unchanged."""

    def transform(x: tf.Tensor, seed: tf.Tensor, part: BatchSlice = WHOLE) -> tf.Tensor:
        return tf.concat([function(x[..., :-1], seed, part), x[..., -1:]], axis=-1)

    return transform


def make_augment(policy: str, mask_channel: bool = False) -> Augment | None:
    """The DiffAugment function for ``policy`` (e.g. ``"color,translation,cutout"``).

    Returns None for an empty policy, so callers can skip augmentation entirely. With
    ``mask_channel`` the images' last channel is a mask (1 observed, 0 missing): ``color`` leaves
    it alone, while ``translation`` and ``cutout`` move and cut it with the image, so the pixels
    they blank count as missing.
    """
    names = parse_policy(policy)
    if not names:
        return None
    functions = [function for name in names for function in POLICIES[name]]
    if mask_channel:
        functions = [
            _image_channels_only(function) if function in POLICIES["color"] else function
            for function in functions
        ]

    def augment(images: tf.Tensor, seed: tf.Tensor, part: BatchSlice = WHOLE) -> tf.Tensor:
        # Each transformation draws from its own seed, split from the call's seed.
        for function, own_seed in zip(functions, _sub_seeds(seed, len(functions)), strict=True):
            images = function(images, own_seed, part)
        return images

    augment.__name__ = "diff_augment_" + "_".join(names)
    return augment
