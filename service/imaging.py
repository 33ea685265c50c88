"""PNG encoding of generated images and safe decoding of uploaded ones (Pillow).

Usage::

    png = encode_png(images[0], compress_level=6)      # uint8 [H, W, C] -> PNG bytes
    array, size = decode_image(data, max_pixels=2**24, resolution=28, channels=1)

These functions are CPU work: the routes run them in a thread pool, never on the event loop.
``decode_image`` reads only the header before checking the pixel count, so a decompression bomb
is refused without being decoded. How the decoded pixels become the model's input (mode,
transparency, crop, size) is the contract's :func:`gan_contract.images.prepare_image`, the same
function training applies to its images.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from gan_contract.errors import ContractError
from gan_contract.images import prepare_image
from service.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType

# Pillow's own bomb guard stays on as a second line; the service's limit is checked first.
_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")


def encode_png(image: np.ndarray, compress_level: int = 6) -> bytes:
    """PNG bytes of a uint8 [H, W, 1] (grayscale) or [H, W, 3] (RGB) image."""
    pixels = image[..., 0] if image.shape[-1] == 1 else image
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(
        buffer, format="PNG", compress_level=compress_level
    )
    return buffer.getvalue()


def encode_pngs(images: np.ndarray, compress_level: int = 6) -> list[bytes]:
    """PNG bytes of each image of a uint8 [N, H, W, C] batch."""
    return [encode_png(image, compress_level) for image in images]


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
