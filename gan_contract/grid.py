"""The grid layout of a batch of images: one picture, row-major, black gaps between cells.

Usage::

    from gan_contract.grid import make_grid

    picture = make_grid(images)                  # uint8 [N, H, W, C] -> uint8 [H', W', C]
    picture = make_grid(images, columns=10)      # e.g. one row per class

``gan-sample --grid``, the service's ``response=grid`` and the training sample grids all tile
with this function, so the same images give the same picture everywhere. By default the grid is
near-square (``ceil(sqrt(N))`` columns) with :data:`GRID_PADDING` black pixels between cells:
16 images of 28x28 make a 118x118 picture.
"""

from __future__ import annotations

import math

import numpy as np

from gan_contract.errors import ContractError

GRID_PADDING = 2


def grid_shape(count: int, columns: int | None = None) -> tuple[int, int]:
    """(rows, columns) of a grid of ``count`` cells; near-square unless ``columns`` is given."""
    if count < 1:
        raise ContractError("a grid needs at least one image")
    if columns is None:
        columns = math.ceil(math.sqrt(count))
    if columns < 1:
        raise ContractError(f"a grid needs at least one column, not {columns}")
    return math.ceil(count / columns), columns


def make_grid(
    images: np.ndarray, columns: int | None = None, padding: int = GRID_PADDING
) -> np.ndarray:
    """Tile uint8 [N, H, W, C] ``images`` row by row into one uint8 picture.

    The picture is ``rows * H + (rows - 1) * padding`` high and
    ``columns * W + (columns - 1) * padding`` wide; gaps and unused cells are black.
    """
    count, height, width, channels = images.shape
    if padding < 0:
        raise ContractError(f"grid padding must be 0 or more, not {padding}")
    rows, columns = grid_shape(count, columns)
    grid = np.zeros(
        (rows * height + (rows - 1) * padding, columns * width + (columns - 1) * padding, channels),
        dtype=np.uint8,
    )
    for index, image in enumerate(images):
        row, col = divmod(index, columns)
        top, left = row * (height + padding), col * (width + padding)
        grid[top : top + height, left : left + width] = image
    return grid
