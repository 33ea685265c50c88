"""Comparing rendered images in tests under the service's guarantee (gan_contract.reproducibility).

Two renderings of the same (model version, seed, class, psi) may differ by one grey level per
pixel wherever they were computed in different batch shapes, positions or machines, so tests
compare pixels within that tolerance rather than bytes.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from gan_contract.reproducibility import MAX_PIXEL_DEVIATION, pixel_deviation


def png_pixels(data: bytes) -> np.ndarray:
    """The uint8 pixels of a PNG, [H, W] or [H, W, C] as Pillow decodes it."""
    return np.asarray(Image.open(io.BytesIO(data)))


def assert_same_image(a: bytes | np.ndarray, b: bytes | np.ndarray) -> None:
    """The two images (PNG bytes or uint8 arrays) are one image within the guarantee."""
    pa = png_pixels(a) if isinstance(a, bytes) else a
    pb = png_pixels(b) if isinstance(b, bytes) else b
    deviation = pixel_deviation(pa, pb)
    assert deviation <= MAX_PIXEL_DEVIATION, f"pixels differ by {deviation} grey levels"
