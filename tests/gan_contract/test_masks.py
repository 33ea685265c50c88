"""The mask convention: corruption specs, simulated corruptions, masks from alpha and images."""

import numpy as np
import pytest
from PIL import Image

from gan_contract.masks import (
    Corruption,
    MaskError,
    apply_mask,
    check_mask,
    corrupt,
    mask_from_image,
    observed_fraction,
    parse_corruption,
    split_alpha,
    to_rgba,
)


def test_parse_corruption():
    assert parse_corruption("") is None
    assert parse_corruption("dropout:0.5") == Corruption("dropout", 0.5)
    assert parse_corruption("block:14") == Corruption("block", 14.0)
    assert str(parse_corruption("block:14")) == "block:14"
    for bad in ("dropout", "dropout:1.0", "dropout:-0.1", "block:2.5", "block:0", "holes:3", "x:y"):
        with pytest.raises(MaskError):
            parse_corruption(bad)


def test_dropout_rate_and_determinism():
    masks = corrupt(Corruption("dropout", 0.5), count=200, resolution=28, seed=3)
    assert masks.shape == (200, 28, 28) and masks.dtype == np.uint8
    # 156,800 Bernoulli(0.5) draws: the fraction is within 0.01 of 0.5 (about 8 sigma).
    assert abs(observed_fraction(masks) - 0.5) < 0.01
    np.testing.assert_array_equal(masks, corrupt(Corruption("dropout", 0.5), 200, 28, seed=3))
    assert not np.array_equal(masks, corrupt(Corruption("dropout", 0.5), 200, 28, seed=4))


def test_one_square_block_per_image():
    masks = corrupt(Corruption("block", 14), count=50, resolution=28, seed=0)
    missing = masks == 0
    assert np.all(missing.sum(axis=(1, 2)) == 14 * 14)
    for hole in missing:  # one square: its bounding box is 14x14 and full
        rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
        assert len(rows) == len(cols) == 14 and hole[rows[0] : rows[-1] + 1][:, cols].all()
    assert len({tuple(np.argwhere(h)[0]) for h in missing}) > 1  # positions vary
    with pytest.raises(MaskError):
        corrupt(Corruption("block", 28), 1, 28, 0)


def test_no_corruption_is_all_observed():
    assert observed_fraction(corrupt(None, 3, 8, 0)) == 1.0


def test_alpha_zero_is_missing():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[..., 3] = 255
    rgba[0, :, 3] = 0  # top row missing
    rgba[1, 0, 3] = 1  # any non-zero alpha is observed
    image, mask = split_alpha(Image.fromarray(rgba, "RGBA"))
    assert image.mode == "RGB" and mask is not None
    assert mask[0].sum() == 0 and mask[1:].all()
    assert split_alpha(Image.new("L", (4, 4)))[1] is None


def test_mask_image_grey_levels_and_alpha():
    grey = np.full((5, 5), 255, np.uint8)
    grey[2] = 0
    mask = mask_from_image(Image.fromarray(grey, "L"))
    assert mask[2].sum() == 0 and mask.sum() == 20
    la = Image.fromarray(np.stack([np.zeros((5, 5), np.uint8), grey], -1), "LA")
    np.testing.assert_array_equal(mask_from_image(la), mask)  # alpha wins over the grey


def test_check_mask_refuses_other_sizes_and_empty_masks():
    assert check_mask(np.full((8, 8), 7, np.uint8), 8).max() == 1
    with pytest.raises(MaskError, match="size"):
        check_mask(np.ones((8, 9), np.uint8), 8)
    with pytest.raises(MaskError, match="no observed pixel"):
        check_mask(np.stack([np.ones((8, 8)), np.zeros((8, 8))]).astype(np.uint8), 8)


def test_apply_mask_and_rgba():
    images = np.full((2, 3, 3, 1), 9, np.uint8)
    masks = np.ones((2, 3, 3), np.uint8)
    masks[1, 1, 1] = 0
    filled = apply_mask(images, masks)
    assert filled[1, 1, 1, 0] == 0 and filled.sum() == 9 * 17
    rgba = to_rgba(images, masks)
    assert rgba.shape == (2, 3, 3, 2) and rgba[1, 1, 1, 1] == 0 and rgba[0, 0, 0, 1] == 255
