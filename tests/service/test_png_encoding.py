"""The service's PNG encoder: standard PNGs that decode to exactly the pixels given."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from service.imaging import encode_png, encode_pngs

MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def decoded(data: bytes) -> tuple[str, np.ndarray]:
    """Pillow's reading of PNG bytes, after checking every chunk's CRC (``verify``)."""
    Image.open(io.BytesIO(data)).verify()
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image.mode, np.asarray(image)


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_the_png_decodes_to_the_same_pixels(channels: int, level: int) -> None:
    # Lossless: integer pixels in, integer pixels out, on any machine.
    rng = np.random.default_rng(channels * 10 + level)
    image = rng.integers(0, 256, size=(7, 13, channels), dtype=np.uint8)  # not square
    mode, pixels = decoded(encode_png(image, level))
    assert mode == MODES[channels]
    assert np.array_equal(pixels.reshape(image.shape), image)


def test_a_batch_gives_one_png_per_image_in_order() -> None:
    images = np.stack([np.full((28, 28, 1), value, np.uint8) for value in (0, 17, 255)])
    pngs = encode_pngs(images)
    assert [decoded(png)[1][0, 0] for png in pngs] == [0, 17, 255]


def test_higher_levels_compress_a_plain_image_more() -> None:
    image = np.zeros((64, 64, 3), np.uint8)
    image[16:48, 16:48] = (200, 30, 90)
    assert len(encode_png(image, 9)) < len(encode_png(image, 0))


def test_a_view_of_a_larger_array_is_encoded_as_the_view() -> None:
    # Batch rows and crops are views; the encoder must not read past them.
    big = np.arange(20 * 20 * 3, dtype=np.uint32).astype(np.uint8).reshape(20, 20, 3)
    view = big[2:9:2, 3:17:3]
    assert np.array_equal(decoded(encode_png(view))[1], view)


@pytest.mark.parametrize(
    "image",
    [np.zeros((4, 4, 2), np.uint8), np.zeros((4, 4, 1), np.float32), np.zeros((4, 4), np.uint8)],
)
def test_other_arrays_are_refused(image: np.ndarray) -> None:
    with pytest.raises(ValueError, match="expected uint8"):
        encode_png(image)
