"""Encoding of generated images (PNG by zlib, WebP and JPEG by Pillow) and safe decoding of
uploaded ones (Pillow).

Usage::

    png = encode_png(images[0], compress_level=6)      # uint8 [H, W, C] -> PNG bytes
    webp = Encoding("webp", quality=80).encode(images[0])
    Encoding("jpeg", quality=90).media_type            # "image/jpeg"
    array, size = decode_image(data, max_pixels=2**24, resolution=28, channels=1)

An :class:`Encoding` is a format and its one parameter: the zlib level (0-9) of a lossless PNG,
the quality (1-100) of a lossy WebP or JPEG. PNG is the default everywhere.

The encoder writes the PNG chunks itself around one ``zlib.compress`` call: for the small
images a GAN makes, Pillow's per-image set-up (its Python save path and encoder object) cost
more than the compression itself (2.2x this encoder's time for a 28x28 digit), on the model
thread that every batch waits for. ``benchmarks/png_encoding.py`` compares the two.

These functions are CPU work: the routes run them in a thread pool, never on the event loop.
``decode_image`` reads only the header before checking the pixel count, so a decompression bomb
is refused without being decoded. How the decoded pixels become the model's input (mode,
transparency, crop, size) is the contract's :func:`gan_contract.images.prepare_image`, the same
function training applies to its images.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from gan_contract.errors import ContractError
from gan_contract.images import prepare_image
from service.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType

# Pillow's own bomb guard stays on as a second line; the service's limit is checked first.
_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")


# PNG colour type by channel count: grayscale, RGB, RGBA (8 bits each).
_COLOUR_TYPES = {1: 0, 3: 2, 4: 6}
_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type and data."""
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


_IEND = _chunk(b"IEND", b"")


def encode_png(image: np.ndarray, compress_level: int = 6) -> bytes:
    """PNG bytes of a uint8 [H, W, 1] (grayscale), [H, W, 3] (RGB) or [H, W, 4] (RGBA) image.

    A standard 8-bit, non-interlaced PNG: every row with filter type 0 (none), deflated at
    ``compress_level`` (0-9, zlib's levels, as Pillow's ``compress_level``).
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] not in _COLOUR_TYPES:
        raise ValueError(f"expected uint8 [H, W, 1|3|4], got {image.dtype} {image.shape}")
    height, width, channels = image.shape
    rows = np.zeros((height, 1 + width * channels), np.uint8)  # column 0: each row's filter
    rows[:, 1:] = image.reshape(height, width * channels)
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPES[channels], 0, 0, 0)
    data = zlib.compress(rows.tobytes(), compress_level)
    return b"".join((_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", data), _IEND))


def encode_pngs(images: np.ndarray, compress_level: int = 6) -> list[bytes]:
    """PNG bytes of each image of a uint8 [N, H, W, C] batch."""
    return [encode_png(image, compress_level) for image in images]


Format = Literal["png", "webp", "jpeg"]
#: The media type of each format, in the service's order of preference (lossless first).
MEDIA_TYPES: dict[str, str] = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}
#: Each format's number in a batch's rows (0: the row wants no encoding).
FORMAT_CODES: dict[str, int] = {name: code for code, name in enumerate(MEDIA_TYPES, start=1)}


@dataclass(frozen=True)
class Encoding:
    """How a generated image is encoded: ``format`` and its parameter, ``level`` (PNG's zlib
    level, 0-9) or ``quality`` (WebP's and JPEG's, 1-100; the other one is not used)."""

    format: Format = "png"
    level: int = 6
    quality: int = 90

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]

    @property
    def parameter(self) -> int:
        """The one parameter the format uses: the level of a PNG, the quality of the others."""
        return self.level if self.format == "png" else self.quality

    @classmethod
    def from_code(cls, code: int, parameter: int) -> Encoding:
        """The encoding of a row's (format code, parameter) pair (see :meth:`code`)."""
        name: Format = list(MEDIA_TYPES)[code - 1]  # type: ignore[assignment]
        if name == "png":
            return cls(name, level=parameter)
        return cls(name, quality=parameter)

    def code(self) -> tuple[int, int]:
        """(format code, parameter): what a batch's rows carry for the post-processing."""
        return FORMAT_CODES[self.format], self.parameter

    def encode(self, image: np.ndarray) -> bytes:
        """The bytes of a uint8 [H, W, 1|3|4] image in this encoding."""
        if self.format == "png":
            return encode_png(image, self.level)
        pixels = np.ascontiguousarray(image[..., 0] if image.shape[-1] == 1 else image)
        picture = Image.fromarray(pixels)
        if self.format == "jpeg" and picture.mode == "RGBA":
            picture = picture.convert("RGB")  # JPEG has no alpha
        buffer = io.BytesIO()
        if self.format == "webp":
            # method 4: Pillow's default trade of speed for size (0 fastest, 6 smallest).
            picture.save(buffer, "WEBP", quality=self.quality, method=4)
        else:
            picture.save(buffer, "JPEG", quality=self.quality)
        return buffer.getvalue()


def decode_image(
    data: bytes, *, max_pixels: int, resolution: int, channels: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode an uploaded image to uint8 [resolution, resolution, channels] (prepared by
    :func:`gan_contract.images.prepare_image`: mode, transparency over black, centre crop, size).

    Returns the array and the original (width, height). Raises 415 for data that is no image,
    413 for an image with more than ``max_pixels`` pixels (checked before decoding) and 422 for
    one that is truncated or corrupt.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data), formats=_FORMATS)
            width, height = opened.size
            if width * height > max_pixels:
                raise PayloadTooLarge(
                    f"image of {width}x{height} pixels exceeds the limit of {max_pixels} pixels; "
                    "resize it before uploading"
                )
            opened.load()
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        if isinstance(exc, UnidentifiedImageError):
            raise UnsupportedMediaType(
                f"the upload is not an image Pillow can read (supported: {', '.join(_FORMATS)})"
            ) from exc
        raise PayloadTooLarge(f"image refused as a decompression bomb: {exc}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidRequest(f"the image could not be decoded: {exc}") from exc
    try:
        array = prepare_image(opened, resolution, channels)
    except ContractError as exc:  # e.g. a CIELab TIFF: no conversion to L or RGB
        raise UnsupportedMediaType(str(exc)) from exc
    except (OSError, ValueError) as exc:  # pixels Pillow read lazily and found broken
        raise InvalidRequest(f"the image could not be decoded: {exc}") from exc
    return array, (width, height)
