"""DiffAugment: policies, shapes, invariants, stateless draws, gradients, XLA."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from training.augment import (
    BatchSlice,
    brightness,
    contrast,
    cutout,
    make_augment,
    parse_policy,
    saturation,
    translation,
)

SEED = tf.constant([3, 4], tf.int64)


def _images(batch: int = 6, size: int = 32, channels: int = 3, seed: int = 0) -> tf.Tensor:
    rng = np.random.default_rng(seed)
    return tf.constant(rng.uniform(-1, 1, (batch, size, size, channels)).astype("float32"))


def test_empty_policy_is_none_and_unknown_names_are_rejected() -> None:
    assert make_augment("") is None
    assert make_augment(" , ") is None
    assert parse_policy("color, cutout") == ("color", "cutout")
    with pytest.raises(ValueError, match="unknown augmentation 'flip'"):
        make_augment("color,flip")
    with pytest.raises(ValueError, match="twice"):
        make_augment("cutout,cutout")


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_policies_keep_shape_and_dtype(policy: str, channels: int) -> None:
    augment = make_augment(policy)
    assert augment is not None
    x = _images(channels=channels)
    y = augment(x, SEED)
    assert y.shape == x.shape
    assert y.dtype == x.dtype
    assert np.isfinite(y.numpy()).all()
    assert not np.allclose(y.numpy(), x.numpy())


def test_translation_shifts_each_image_by_at_most_an_eighth_with_zero_fill() -> None:
    x = _images(batch=8, size=32, channels=1).numpy()
    y = translation(tf.constant(x), SEED).numpy()
    for source, shifted in zip(x, y, strict=True):
        matches = []
        for dy in range(-4, 5):
            for dx in range(-4, 5):
                # Output pixel i holds input pixel i + shift; the rest is the zero border.
                expected = np.zeros_like(source)
                ys, xs = slice(max(0, -dy), 32 - max(0, dy)), slice(max(0, -dx), 32 - max(0, dx))
                yt, xt = slice(max(0, dy), 32 - max(0, -dy)), slice(max(0, dx), 32 - max(0, -dx))
                expected[ys, xs] = source[yt, xt]
                if np.array_equal(shifted, expected):
                    matches.append((dy, dx))
        assert matches, "every output must be the input shifted by at most 4 pixels"
    # Values stay inside the input's range: pixels only move or become 0.
    assert y.min() >= x.min() and y.max() <= x.max()


def test_cutout_zeroes_one_square_of_half_size_and_keeps_the_rest() -> None:
    x = tf.ones([16, 32, 32, 3])
    y = cutout(x, SEED).numpy()
    for image in y:
        zero = image[..., 0] == 0
        assert np.array_equal(zero, (image == 0).all(axis=-1))  # all channels together
        rows, cols = np.nonzero(zero.any(axis=1))[0], np.nonzero(zero.any(axis=0))[0]
        assert 8 <= len(rows) <= 16 and 8 <= len(cols) <= 16
        # The zeroed pixels form exactly one rectangle; everything else is untouched.
        assert zero.sum() == len(rows) * len(cols)
        assert np.all(image[~zero] == 1)


def test_color_transforms_keep_their_invariants() -> None:
    x = _images(batch=8)
    offsets = (brightness(x, SEED) - x).numpy()
    per_image = offsets.reshape(8, -1)
    assert np.allclose(per_image, per_image[:, :1], atol=1e-6)  # one offset per image
    assert np.all(np.abs(per_image[:, 0]) <= 0.5)
    assert len(np.unique(np.round(per_image[:, 0], 5))) > 1  # drawn per image
    # Saturation keeps each pixel's channel mean, and is the identity on grey images.
    saturated = saturation(x, SEED).numpy()
    assert np.allclose(saturated.mean(axis=3), x.numpy().mean(axis=3), atol=1e-5)
    grey = _images(channels=1)
    assert np.allclose(saturation(grey, SEED).numpy(), grey.numpy())
    # Contrast keeps each image's mean.
    contrasted = contrast(x, SEED).numpy()
    assert np.allclose(contrasted.mean(axis=(1, 2, 3)), x.numpy().mean(axis=(1, 2, 3)), atol=1e-5)


def test_draws_are_a_pure_function_of_the_seed() -> None:
    augment = make_augment("color,translation,cutout")
    assert augment is not None
    x = _images(batch=8)
    first = augment(x, SEED).numpy()
    # Stateful draws in between must not change what a seed gives (a resumed run relies on it).
    tf.random.uniform([100])
    np.testing.assert_array_equal(augment(x, SEED).numpy(), first)
    other = augment(x, tf.constant([3, 5], tf.int64)).numpy()
    assert not np.allclose(other, first)


def test_each_slice_of_the_batch_gets_its_rows_of_the_whole_batch_draw() -> None:
    augment = make_augment("color,translation,cutout")
    assert augment is not None
    x = _images(batch=8)
    whole = augment(x, SEED).numpy()
    # Two replicas holding rows 0-3 and 4-7 draw exactly the parameters one device draws for
    # them. Only the per-image means may be summed in another order for another batch shape: a
    # few float32 roundings (2**-24 relative) of values below 4 in magnitude stay far below 1e-5,
    # while another draw would move whole images by 0.1 or more.
    halves = [augment(x[4 * r : 4 * r + 4], SEED, BatchSlice(r, 2)).numpy() for r in (0, 1)]
    np.testing.assert_allclose(np.concatenate(halves), whole, rtol=0, atol=1e-5)


@pytest.mark.parametrize("policy", ["color,translation,cutout", "translation,cutout"])
def test_policies_are_differentiable_inside_an_xla_function(policy: str) -> None:
    augment = make_augment(policy)
    assert augment is not None
    weights = tf.constant(np.random.default_rng(1).normal(size=(4, 32, 32, 3)), tf.float32)

    @tf.function(jit_compile=True)
    def gradient(x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = augment(x, SEED)
            loss = tf.reduce_sum(y * weights)
        return y, tape.gradient(loss, x)

    y, grad = gradient(_images(batch=4))
    assert y.shape == (4, 32, 32, 3)
    grad = grad.numpy()
    assert np.isfinite(grad).all()
    carried = np.mean(grad != 0)
    if policy.startswith("color"):
        # The image and channel means spread gradient over every pixel.
        assert carried == 1.0
    else:
        # Cutout and the shift drop some input pixels; the ones kept carry the gradient.
        assert 0.2 < carried < 1.0


def test_augment_runs_in_float16() -> None:
    augment = make_augment("color,translation,cutout")
    assert augment is not None
    y = augment(tf.cast(_images(), tf.float16), SEED)
    assert y.dtype == tf.float16


def test_with_a_mask_channel_colour_spares_the_mask_and_geometry_moves_it():
    rng = np.random.RandomState(0)
    image = rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
    mask = (rng.random_sample((4, 16, 16, 1)) > 0.3).astype(np.float32)
    x = tf.constant(np.concatenate([image, mask], -1))
    seed = tf.constant([3, 9], tf.int64)
    coloured = make_augment("color", mask_channel=True)(x, seed).numpy()
    np.testing.assert_array_equal(coloured[..., 3:], mask)
    # The image channels get what colour does to an image without a mask: the same draws and
    # ops on the same values (a few float32 operations on values of order one: 1e-6).
    plain = make_augment("color")(image, seed).numpy()
    np.testing.assert_allclose(coloured[..., :3], plain, rtol=0, atol=1e-6)
    # Translation and cutout act on the mask as on the image: the blanked pixels count as missing.
    for policy in ("translation", "cutout"):
        moved = make_augment(policy, mask_channel=True)(x, seed).numpy()
        np.testing.assert_array_equal(moved, make_augment(policy)(x, seed).numpy())
        assert (moved[..., 3] == 0).sum() > (mask == 0).sum()  # more pixels blanked than before
