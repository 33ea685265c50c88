"""gan_contract.reproducibility: how far two renderings of one image may differ."""

import numpy as np
import pytest

from gan_contract.reproducibility import MAX_PIXEL_DEVIATION, pixel_deviation


def test_pixel_deviation_is_the_largest_difference_without_uint8_wraparound() -> None:
    a = np.array([[0, 255], [10, 20]], np.uint8)
    b = np.array([[1, 0], [10, 20]], np.uint8)
    assert pixel_deviation(a, b) == 255  # not (0 - 1) % 256 or (255 - 0) wrapped
    assert pixel_deviation(a, a) == 0
    assert pixel_deviation(a[:0], b[:0]) == 0
    assert MAX_PIXEL_DEVIATION == 1


def test_pixel_deviation_refuses_images_of_different_shapes() -> None:
    with pytest.raises(ValueError, match="different shapes"):
        pixel_deviation(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8))
