"""Seed ranges, the seed-to-noise convention, uint8 mapping and grids."""

import numpy as np
import pytest

from training.sampling import make_grid, parse_seeds, seeds_to_z, to_uint8


def test_parse_seeds():
    assert parse_seeds("0-3,12,20-21") == [0, 1, 2, 3, 12, 20, 21]
    assert parse_seeds("4294967295") == [2**32 - 1]


@pytest.mark.parametrize("text", ["", "3-1", "a", "1,,2", "4294967296", "-1"])
def test_bad_seeds(text: str):
    with pytest.raises(ValueError):
        parse_seeds(text)


def test_seed_convention_is_stylegan_s():
    z = seeds_to_z([7, 8], 5)
    assert z.dtype == np.float32 and z.shape == (2, 5)
    np.testing.assert_array_equal(z[0], np.random.RandomState(7).randn(5).astype("float32"))


def test_uint8_mapping_rounds_and_clips():
    values = np.array([-1.5, -1.0, 0.0, 0.5, 1.0, 2.0])
    assert to_uint8(values).tolist() == [0, 0, 128, 191, 255, 255]


def test_grid_layout():
    images = np.stack([np.full((2, 3, 1), i, np.uint8) for i in range(5)])
    grid = make_grid(images, columns=3)
    assert grid.shape == (4, 9, 1)
    assert grid[0, 3, 0] == 1 and grid[2, 0, 0] == 3 and grid[2, 6, 0] == 0
