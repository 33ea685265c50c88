"""One digit written the ways that training and the service once prepared differently.

Usage (tests)::

    for name, image in digit_variants(digit).items():   # PIL images, all showing ``digit``
        png = png_bytes(image)
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def digit_variants(digit: np.ndarray) -> dict[str, Image.Image]:
    """uint8 [28, 28] ``digit`` as an 8-bit PNG's image and as the variants that must prepare
    to the same pixels: padded to 28x44 with black columns, 16-bit, and transparent-on-noise."""
    padded = np.zeros((28, 44), np.uint8)
    padded[:, 8:36] = digit  # 8 columns each side: the centre crop finds the digit again
    # v * 257 is the exact 16-bit spelling of the 8-bit value v (0 -> 0, 255 -> 65535).
    sixteen = Image.fromarray(digit.astype(np.uint16) * 257)
    noise = np.random.RandomState(0).randint(0, 256, digit.shape).astype(np.uint8)
    visible = digit > 0
    grey = np.where(visible, digit, noise)  # hidden pixels hold noise: only alpha hides them
    alpha = np.where(visible, 255, 0).astype(np.uint8)
    transparent = Image.fromarray(np.stack([grey, alpha], axis=-1), "LA")
    return {
        "8-bit": Image.fromarray(digit),
        "padded 28x44": Image.fromarray(padded),
        "16-bit": sixteen,
        "transparent": transparent,
    }


def png_bytes(image: Image.Image) -> bytes:
    """``image`` as a PNG file's bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def reopened(image: Image.Image) -> Image.Image:
    """``image`` saved as PNG and read back, as an upload or a training file would be."""
    return Image.open(io.BytesIO(png_bytes(image)))
