"""How an image is prepared for a model: mode, transparency, crop and size (Pillow).

Usage::

    from PIL import Image
    from gan_contract.images import prepare_image, image_from_array

    array = prepare_image(Image.open("digit.png"), resolution=28, channels=1)  # uint8 [28, 28, 1]
    array = prepare_image(image_from_array(pixels), resolution=28, channels=1)  # from numpy

Training prepares every training image with :func:`prepare_image`, and the service every image
sent to ``POST /score``, so that the discriminator judges an upload exactly as it saw the
images its score calibration was measured on. The steps, in order:

1. Mode: 16-bit grayscale is scaled to 8 bits (65535 -> 255, rounded); 32-bit integer and float
   images are scaled from 0..65535 when a value exceeds 255, else taken as 0..255. Then the image
   is converted to ``L`` (grayscale, ITU-R 601 luma) or ``RGB``.
2. Transparency (an alpha channel, or a palette or colour key marked transparent) is composited
   over black, the background generated images have.
3. A non-square image is centre-cropped to a square (the larger side loses equal margins, the
   odd pixel at the end), then resized to ``resolution`` with Lanczos filtering.

The functions read pixels that are already decoded: bounding what a client may upload (bytes,
pixels, formats) is the caller's job.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from gan_contract.errors import ContractError

_SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_ALPHA = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})


def to_mode(image: Image.Image, mode: str) -> Image.Image:
    """``image`` as ``mode`` (``L`` or ``RGB``): wide pixels scaled to 8 bits, transparency
    composited over black (steps 1 and 2 of the module doc)."""
    if mode not in ("L", "RGB"):
        raise ContractError(f"images are prepared as L or RGB, not {mode!r}")
    if image.mode in _SIXTEEN_BIT or image.mode == "I":
        values = np.asarray(image)
        if image.mode == "I" and int(values.max(initial=0)) <= 255:
            eight = np.clip(values, 0, 255).astype(np.uint8)  # 32-bit integers of 8-bit range
        else:
            wide = np.clip(values, 0, 65535).astype(np.uint32)
            # Integer rounding: an 8-bit value v stored as v * 257 comes back as exactly v.
            eight = ((wide * 255 + 32767) // 65535).astype(np.uint8)
        image = Image.fromarray(eight)
    elif image.mode == "F":
        floats = np.asarray(image, dtype=np.float32)
        top = 65535.0 if float(floats.max(initial=0.0)) > 255.0 else 255.0
        image = Image.fromarray(np.clip(np.round(floats * (255.0 / top)), 0, 255).astype(np.uint8))
    if image.mode in _ALPHA or image.mode == "P" or "transparency" in image.info:
        try:
            rgba = image.convert("RGBA")
        except (OSError, ValueError) as error:
            raise ContractError(
                f"images of mode {image.mode} cannot be converted ({error})"
            ) from None
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba)
    try:
        return image.convert(mode)
    except (OSError, ValueError) as error:  # e.g. a CIELab TIFF: no conversion to L or RGB
        raise ContractError(
            f"images of mode {image.mode} cannot be converted; send grayscale or RGB ({error})"
        ) from None


def centre_crop(image: Image.Image) -> Image.Image:
    """The largest centred square of ``image`` (step 3 of the module doc)."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    if (left, top) == (0, 0) and image.width == image.height:
        return image
    return image.crop((left, top, left + side, top + side))


def prepare_image(image: Image.Image, resolution: int, channels: int) -> np.ndarray:
    """uint8 [resolution, resolution, channels] of a decoded image, by the convention above.

    Raises :class:`ContractError` for ``channels`` other than 1 or 3, a non-positive
    ``resolution``, an empty image or a mode that cannot be converted.
    """
    if channels not in (1, 3):
        raise ContractError(f"channels must be 1 or 3, not {channels}")
    if resolution < 1:
        raise ContractError(f"resolution must be positive, not {resolution}")
    if image.width < 1 or image.height < 1:
        raise ContractError("the image has no pixels")
    square = centre_crop(to_mode(image, "L" if channels == 1 else "RGB"))
    if square.size != (resolution, resolution):
        square = square.resize((resolution, resolution), Image.Resampling.LANCZOS)
    array = np.asarray(square, dtype=np.uint8)
    return array[..., None] if channels == 1 else array


def image_from_array(array: np.ndarray) -> Image.Image:
    """A Pillow image of numpy pixels: [H, W] or [H, W, 1] grayscale, [H, W, 3] RGB or
    [H, W, 4] RGBA, as uint8 (0..255) or uint16 (0..65535)."""
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    shape_ok = array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (3, 4))
    if not shape_ok or array.dtype not in (np.uint8, np.uint16):
        raise ContractError(
            f"pixels must be uint8 [H, W], [H, W, 1], [H, W, 3] or [H, W, 4], or uint16 [H, W]; "
            f"got {array.dtype} {array.shape}"
        )
    if array.dtype == np.uint16 and array.ndim != 2:
        raise ContractError("16-bit pixels must be grayscale [H, W]")
    # Pillow picks the mode from the shape and dtype: L, RGB, RGBA or I;16.
    return Image.fromarray(np.ascontiguousarray(array))
