"""The one grid layout."""

import numpy as np
import pytest

from gan_contract.errors import ContractError
from gan_contract.grid import GRID_PADDING, grid_shape, make_grid


def _cells(count: int, height: int = 2, width: int = 3) -> np.ndarray:
    return np.stack([np.full((height, width, 1), i + 1, np.uint8) for i in range(count)])


def test_sixteen_28_pixel_images_make_a_118_pixel_square():
    grid = make_grid(np.zeros((16, 28, 28, 1), np.uint8))
    assert GRID_PADDING == 2 and grid.shape == (118, 118, 1)


def test_row_major_cells_with_black_gaps_and_black_unused_cells():
    grid = make_grid(_cells(5), columns=3, padding=1)
    assert grid.shape == (2 * 2 + 1, 3 * 3 + 2, 1)
    assert grid[0, 0, 0] == 1 and grid[0, 4, 0] == 2 and grid[0, 8, 0] == 3
    assert grid[3, 0, 0] == 4 and grid[3, 4, 0] == 5
    assert grid[2, :, 0].max() == 0 and grid[:, 3, 0].max() == 0  # the gaps
    assert grid[3:, 8:, 0].max() == 0  # the sixth cell is empty


def test_near_square_by_default():
    assert grid_shape(1) == (1, 1)
    assert grid_shape(5) == (2, 3)
    assert grid_shape(16) == (4, 4)
    assert grid_shape(17) == (4, 5)
    assert grid_shape(20, columns=10) == (2, 10)
    assert make_grid(_cells(4), padding=0).shape == (4, 6, 1)


@pytest.mark.parametrize(("count", "columns", "padding"), [(0, None, 2), (3, 0, 2), (3, None, -1)])
def test_impossible_grids_are_refused(count: int, columns, padding: int):
    with pytest.raises(ContractError):
        make_grid(np.zeros((count, 2, 2, 1), np.uint8), columns, padding)
