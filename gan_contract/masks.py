"""The mask convention of partly observed images, shared by training and the service.

A mask is a uint8 array [N, H, W] (or [H, W] for one image) with 1 where a pixel is observed
and 0 where it is missing; every channel of a pixel shares its mask entry. In an image file the
alpha channel carries it: alpha 0 = missing, any other alpha = observed. A separate mask image
is read as grey levels: 0 (black) = missing, anything else = observed.

Usage::

    from gan_contract.masks import corrupt, parse_corruption, mask_from_alpha

    spec = parse_corruption("dropout:0.5")            # or "block:14"; "" = none
    masks = corrupt(spec, count=100, resolution=28, seed=0)   # uint8 [100, 28, 28]
    image, mask = split_alpha(Image.open("scan.png"))   # RGBA -> (RGB pixels, mask)
    print(observed_fraction(masks))

The simulated corruptions are deterministic functions of their seed (numpy's RandomState), so
a run, its resume and its export see the same holes. Only numpy and Pillow are used here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

CORRUPTION_KINDS = ("dropout", "block")


class MaskError(ValueError):
    """A mask or corruption spec cannot be used; the message says why."""


@dataclass(frozen=True)
class Corruption:
    """A simulated corruption: ``dropout`` (each pixel missing with probability ``amount``) or
    ``block`` (one random square of side ``amount`` missing per image)."""

    kind: str
    amount: float

    def __str__(self) -> str:
        value = int(self.amount) if self.kind == "block" else self.amount
        return f"{self.kind}:{value}"


def parse_corruption(spec: str) -> Corruption | None:
    """``"dropout:P"`` (0 <= P < 1) or ``"block:S"`` (side S >= 1) -> :class:`Corruption`;
    the empty string -> None. Raises :class:`MaskError` with a clear message otherwise."""
    if not spec:
        return None
    kind, _, value = spec.partition(":")
    if kind not in CORRUPTION_KINDS or not value:
        raise MaskError(f"corruption {spec!r}: expected dropout:P (0 <= P < 1) or block:SIDE")
    try:
        amount = float(value)
    except ValueError:
        raise MaskError(f"corruption {spec!r}: {value!r} is not a number") from None
    if kind == "dropout" and not 0.0 <= amount < 1.0:
        raise MaskError(f"corruption {spec!r}: the dropout rate must be in [0, 1)")
    if kind == "block" and (amount != int(amount) or amount < 1):
        raise MaskError(f"corruption {spec!r}: the block side must be a whole number >= 1")
    return Corruption(kind, amount)


def corrupt(spec: Corruption | None, count: int, resolution: int, seed: int) -> np.ndarray:
    """uint8 masks [count, resolution, resolution] of the corruption (all ones for None)."""
    masks = np.ones((count, resolution, resolution), np.uint8)
    if spec is None:
        return masks
    rng = np.random.RandomState(seed)
    if spec.kind == "dropout":
        return (rng.random_sample(masks.shape) >= spec.amount).astype(np.uint8)
    side = int(spec.amount)
    if side >= resolution:
        raise MaskError(f"block side {side} leaves nothing of a {resolution}x{resolution} image")
    tops = rng.randint(0, resolution - side + 1, size=count)
    lefts = rng.randint(0, resolution - side + 1, size=count)
    for mask, top, left in zip(masks, tops, lefts, strict=True):
        mask[top : top + side, left : left + side] = 0
    return masks


def observed_fraction(masks: np.ndarray) -> float:
    """The fraction of observed pixels over all the masks."""
    return float(np.mean(masks != 0)) if masks.size else 0.0


def check_mask(mask: np.ndarray, resolution: int) -> np.ndarray:
    """A mask [H, W] (or [N, H, W]) of side ``resolution`` as uint8 0/1; raises
    :class:`MaskError` for another size or a mask with no observed pixel."""
    if mask.shape[-2:] != (resolution, resolution):
        raise MaskError(
            f"the mask is {mask.shape[-1]}x{mask.shape[-2]} pixels, the image "
            f"{resolution}x{resolution}: give a mask of the image's size"
        )
    binary = (mask != 0).astype(np.uint8)
    flat = binary.reshape(-1, resolution * resolution)
    if np.any(flat.sum(axis=1) == 0):
        raise MaskError("an image has no observed pixel (its mask is all zero)")
    return binary


def mask_from_alpha(alpha: np.ndarray) -> np.ndarray:
    """uint8 0/1 mask of an alpha channel (alpha 0 = missing)."""
    return (np.asarray(alpha) != 0).astype(np.uint8)


def mask_from_image(image: Image.Image) -> np.ndarray:
    """uint8 0/1 [H, W] mask of a mask image: its alpha when it has one, else its grey levels
    (black = missing)."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        return mask_from_alpha(np.asarray(image.convert("RGBA"))[..., 3])
    return (np.asarray(image.convert("L")) != 0).astype(np.uint8)


def has_alpha(image: Image.Image) -> bool:
    """Whether an image carries an alpha channel (or palette transparency)."""
    return image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info


def split_alpha(image: Image.Image) -> tuple[Image.Image, np.ndarray | None]:
    """(the image without alpha, its mask) of an image with alpha; (image, None) without.

    Missing pixels' values are kept as they are (they are ignored wherever the mask is used).
    """
    if not has_alpha(image):
        return image, None
    rgba = image.convert("RGBA")
    mask = mask_from_alpha(np.asarray(rgba)[..., 3])
    return rgba.convert("RGB"), mask


def apply_mask(images: np.ndarray, masks: np.ndarray, fill: int = 0) -> np.ndarray:
    """uint8 images [N, H, W, C] with missing pixels set to ``fill`` (for pictures and for the
    zero-filled baseline)."""
    keep = masks[..., None].astype(bool)
    return np.where(keep, images, np.asarray(fill, images.dtype)).astype(images.dtype)


def to_rgba(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W, 2 or 4] images with the mask as alpha (255 observed, 0 missing): the
    form in which partly observed images are written to files and sent to the service."""
    alpha = (masks != 0).astype(np.uint8)[..., None] * np.uint8(255)
    return np.concatenate([images, alpha], axis=-1)
