"""Training data: the ``--dataset`` kinds, decoded once into uint8 arrays, and the tf.data pipeline.

Usage::

    from training.data import load_dataset, split_holdout, make_pipeline

    data = load_dataset("folder:~/pictures", resolution=64, channels=3, conditional=False)
    train, held_out = split_holdout(data, count=1000, seed=0)
    dataset = make_pipeline(train, batch_size=64, flip=True, seed=0)   # (images, labels) batches

Dataset specs:

- ``folder:PATH``: PNG, JPEG, WebP, BMP and GIF (first frame) files found recursively, any mode
  (L, LA, P, RGB, RGBA, CMYK, 16-bit) converted to the requested channels (transparent pixels
  become black), centre-cropped to a square and resized. Class labels, when conditional, are the
  names of the first-level subfolders. Unreadable or truncated files are skipped and counted.
  Images with an alpha channel give masks of partly observed images (alpha 0 = missing, see
  :mod:`gan_contract.masks` and :mod:`training.masking`).

Every image of every kind is prepared by :func:`gan_contract.images.prepare_image`, the function
the service applies to the images it scores.
- ``mnist-idx:DIR``: the gzipped (or plain) IDX files of MNIST-format data, with labels.
- ``npz:PATH``: arrays ``x`` ([N, H, W] or [N, H, W, C]; uint8, uint16 grayscale or floats in
  [0, 1]) and optional ``y`` (integer labels), ``class_names`` and ``mask`` ([N, H, W], 0 = missing
  pixel).
- ``digits``: scikit-learn's bundled 8x8 digits (no download), upscaled.
- ``keras:mnist``, ``keras:fashion_mnist``, ``keras:cifar10``: downloaded through Keras.
"""

from __future__ import annotations

import gzip
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gan_contract.errors import ContractError
from gan_contract.images import centre_crop, image_from_array, prepare_image

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"})
KERAS_DATASETS = {
    "mnist": [str(i) for i in range(10)],
    "fashion_mnist": [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ],
    "cifar10": [
        "airplane", "automobile", "bird", "cat", "deer",
        "dog", "frog", "horse", "ship", "truck",
    ],
}  # fmt: skip


class DatasetError(ValueError):
    """The dataset spec or its files cannot be used; the message says why."""


@dataclass
class ImageData:
    """Decoded images (uint8 [N, H, W, C]) with optional labels (int32 [N])."""

    images: np.ndarray
    labels: np.ndarray | None = None
    class_names: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # files that could not be decoded
    masks: np.ndarray | None = None  # uint8 [N, H, W], 0 = missing pixel (partly observed data)
    # Files of a folder that were in colour, loaded as grey (channels 1): see colour_warning.
    colour_files: int = 0

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.labels is not None else 0

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, index: np.ndarray) -> ImageData:
        labels = None if self.labels is None else self.labels[index]
        masks = None if self.masks is None else self.masks[index]
        return ImageData(self.images[index], labels, list(self.class_names), [], masks)


def load_dataset(spec: str, resolution: int, channels: int, conditional: bool) -> ImageData:
    """Decode the dataset named by ``spec`` to ``resolution`` x ``resolution`` x ``channels``.

    Raises :class:`DatasetError` for an unknown kind, a missing or empty source, or conditional
    training on data without labels. Labels are dropped when ``conditional`` is false.
    """
    kind, _, arg = spec.partition(":")
    if kind == "folder":
        data = _load_folder(_existing(arg, spec), resolution, channels, conditional)
    elif kind == "mnist-idx":
        data = _load_mnist_idx(_existing(arg, spec))
    elif kind == "npz":
        data = _load_npz(_existing(arg, spec))
    elif kind == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
        data = ImageData(images, digits.target.astype(np.int32), [str(i) for i in range(10)])
    elif kind == "keras":
        data = _load_keras(arg)
    else:
        raise DatasetError(
            f"unknown dataset kind {kind!r}; expected folder:PATH, mnist-idx:DIR, npz:PATH, "
            "digits or keras:mnist|fashion_mnist|cifar10"
        )
    if len(data) == 0:
        raise DatasetError(f"dataset {spec!r} holds no images")
    if conditional and data.labels is None:
        raise DatasetError(
            f"conditional training needs labels, but {spec!r} has none "
            "(folder: put images in one subfolder per class; npz: add an array 'y')"
        )
    if not conditional:
        data.labels, data.class_names = None, []
    data.images = fit_images(data.images, resolution, channels)
    if data.masks is not None:
        data.masks = fit_masks(data.masks, resolution)
    return data


def colour_warning(data: ImageData, spec: str) -> str | None:
    """A warning when a folder's pictures are in colour but load as grey (``--channels 1``,
    gan-train's default): the run would silently learn grey pictures."""
    if not data.colour_files:
        return None
    return (
        f"{data.colour_files:,} of the pictures in {spec} are in colour, and this run trains on "
        "them in grey (--channels 1, the default): give --channels 3 to train in colour"
    )


def split_holdout(data: ImageData, count: int, seed: int) -> tuple[ImageData, ImageData]:
    """Split off up to ``count`` images (at most a tenth of the data) for the score calibration.

    The split is a fixed function of the data and ``seed``, so export finds the same held-out
    images as training did.
    """
    n = min(count, len(data) // 10)
    order = np.random.RandomState(seed).permutation(len(data))
    return data.subset(np.sort(order[n:])), data.subset(np.sort(order[:n]))


def make_pipeline(
    data: ImageData, batch_size: int, flip: bool = False, seed: int = 0, start_batch: int = 0
) -> Any:
    """An endless tf.data pipeline of ``(images float32 in [-1, 1], labels int32)`` batches.

    With ``data.masks`` set (partly observed data), the mask (0 or 1) is appended to the images
    as one more channel, so that flips move the holes with the pixels; training.masking's GAN
    splits it off again. The images were decoded once (by :func:`load_dataset`) and stay in
    memory as uint8. Each
    epoch is a fresh permutation keyed by ``(seed, epoch)`` and the flips by ``(seed, batch)``,
    so the stream is a pure function of the batch number: a run resumed at ``start_batch`` sees
    exactly the batches the uninterrupted run would have seen. Batches run across epoch
    boundaries (every step gets a full batch) and are prefetched.
    """
    import tensorflow as tf

    count = len(data)
    labels = data.labels if data.labels is not None else np.zeros(count, np.int32)
    images = tf.constant(data.images)
    if data.masks is not None:
        # 0/1 masks in one more channel: 255 observed, mapped to 1.0 below, 0 missing to -1.
        packed = np.concatenate([data.images, (data.masks != 0)[..., None] * np.uint8(255)], -1)
        images = tf.constant(packed)
    label_table = tf.constant(labels.astype(np.int32))
    first_epoch, offset = divmod(start_batch * batch_size, count)

    def epoch_order(epoch: Any) -> Any:
        order = tf.random.experimental.stateless_shuffle(
            tf.range(count, dtype=tf.int32), seed=tf.stack([tf.cast(seed, tf.int64), epoch])
        )
        return tf.data.Dataset.from_tensor_slices(order)

    def gather(batch_index: Any, index: Any) -> tuple[Any, Any]:
        x = tf.cast(tf.gather(images, index), tf.float32) / 127.5 - 1.0
        if data.masks is not None:
            x = tf.concat([x[..., :-1], (x[..., -1:] + 1.0) / 2.0], axis=-1)
        if flip:
            x = tf.image.stateless_random_flip_left_right(
                x, seed=tf.stack([tf.cast(seed, tf.int64) + 1, batch_index])
            )
        return x, tf.gather(label_table, index)

    indices = (
        tf.data.Dataset.range(first_epoch, 2**62)
        .flat_map(epoch_order)
        .skip(offset)
        .batch(batch_size, drop_remainder=True)
    )
    batches = tf.data.Dataset.zip(tf.data.Dataset.range(start_batch, 2**62), indices)
    return batches.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def fit_images(images: np.ndarray, resolution: int, channels: int) -> np.ndarray:
    """uint8 [N, H, W(, C)] (or uint16 grayscale, or floats in [0, 1] or 0..255) -> uint8
    [N, R, R, channels], each image prepared by :func:`gan_contract.images.prepare_image`.

    That is the function the service applies to images sent to ``/score``: both sides see the
    same pixels for the same picture (mode, transparency, centre crop, Lanczos resize).
    """
    if images.ndim == 3:
        images = images[..., None]
    if images.dtype not in (np.uint8, np.uint16):
        scale = 255.0 if float(np.max(images, initial=0.0)) <= 1.0 else 1.0
        images = np.clip(np.round(images.astype(np.float32) * scale), 0, 255).astype(np.uint8)
    if images.dtype == np.uint8 and images.shape[1:] == (resolution, resolution, channels):
        return np.ascontiguousarray(images)  # what prepare_image would return, without the work
    out = np.empty((len(images), resolution, resolution, channels), np.uint8)
    try:
        for index, image in enumerate(images):
            out[index] = prepare_image(image_from_array(image), resolution, channels)
    except ContractError as error:
        raise DatasetError(f"cannot prepare the images: {error}") from error
    return out


def fit_masks(masks: np.ndarray, resolution: int) -> np.ndarray:
    """uint8 0/1 masks [N, H, W] -> [N, R, R]: the centre crop of :func:`fit_images`, then the
    nearest pixel (a resized pixel is observed when its nearest source pixel is)."""
    h, w = masks.shape[1:3]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    masks = (masks[:, top : top + side, left : left + side] != 0).astype(np.uint8)
    if side == resolution:
        return np.ascontiguousarray(masks)
    index = (np.arange(resolution) + 0.5) * side / resolution
    pick = np.minimum(index.astype(np.int64), side - 1)
    return np.ascontiguousarray(masks[:, pick][:, :, pick])


# -- the kinds ---------------------------------------------------------------------------------


def _existing(path: str, spec: str) -> Path:
    if not path:
        raise DatasetError(f"dataset {spec!r} needs a path after the colon")
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise DatasetError(f"dataset path {str(resolved)!r} does not exist")
    return resolved


def _load_folder(root: Path, resolution: int, channels: int, conditional: bool) -> ImageData:
    if not root.is_dir():
        raise DatasetError(f"{str(root)!r} is not a folder")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    class_names: list[str] = []
    if conditional:
        files = [p for p in files if len(p.relative_to(root).parts) > 1]
        class_names = sorted({p.relative_to(root).parts[0] for p in files})
    if not files:
        where = "in class subfolders of" if conditional else "in"
        raise DatasetError(f"no images (PNG, JPEG, WebP, BMP, GIF) found {where} {str(root)!r}")
    with ThreadPoolExecutor(max_workers=4) as pool:
        decoded = list(pool.map(lambda p: _decode(p, resolution, channels), files))
    keep = [i for i, item in enumerate(decoded) if item is not None]
    skipped = [str(files[i]) for i in range(len(files)) if decoded[i] is None]
    if not keep:
        raise DatasetError(f"none of the {len(files)} image files in {str(root)!r} is readable")
    images = np.stack([item[0] for item in decoded if item is not None])
    alphas = [item[1] for item in decoded if item is not None]
    coloured = sum(item[2] for item in decoded if item is not None)
    masks = None
    if any(alpha is not None for alpha in alphas):  # partly observed images: alpha 0 = missing
        full = np.ones(images.shape[1:3], np.uint8)
        masks = np.stack([full if alpha is None else alpha for alpha in alphas])
    labels = None
    if conditional:
        index = {name: i for i, name in enumerate(class_names)}
        labels = np.array([index[files[i].relative_to(root).parts[0]] for i in keep], np.int32)
    return ImageData(images, labels, class_names, skipped, masks, colour_files=coloured)


# Grey pictures saved in a colour format differ between channels by JPEG's rounding only.
COLOUR_TOLERANCE = 8


def _in_colour(image: Any) -> bool:
    """Whether a decoded picture has pixels whose channels differ (judged on a 32x32 copy)."""
    if image.mode in ("1", "L", "LA", "I", "I;16", "F"):
        return False
    small = np.asarray(image.convert("RGB").resize((32, 32)), np.int16)
    return int(np.ptp(small, axis=-1).max()) > COLOUR_TOLERANCE


def _decode(
    path: Path, resolution: int, channels: int
) -> tuple[np.ndarray, np.ndarray | None, bool] | None:
    """One image file as uint8 [R, R, C], its mask [R, R] (None without an alpha channel) and
    whether a picture loaded as grey was in colour; None when it cannot be read."""
    from PIL import Image

    from gan_contract.masks import has_alpha, mask_from_alpha

    try:
        with Image.open(path) as opened:
            opened.seek(0)  # the first frame of an animation
            image = opened.copy()
        image.load()
        pixels = prepare_image(image, resolution, channels)
        mask = None
        if has_alpha(image):  # the alpha channel cropped and scaled as the pixels are
            alpha = centre_crop(image.convert("RGBA").getchannel("A"))
            if alpha.size != (resolution, resolution):
                alpha = alpha.resize((resolution, resolution), Image.Resampling.NEAREST)
            mask = mask_from_alpha(np.asarray(alpha))
        coloured = channels == 1 and _in_colour(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        # ValueError includes the contract's ContractError (a mode it cannot convert).
        log.debug("skipping %s: %s", path, error)
        return None
    return pixels, mask, coloured


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DatasetError(f"{str(path)!r} is not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DatasetError(f"{str(path)!r} is truncated ({data.size} of {np.prod(shape)} bytes)")
    return data.reshape(shape)


def _load_mnist_idx(directory: Path) -> ImageData:
    image_files = sorted(directory.glob("*images*idx3-ubyte*"))
    if not image_files:
        raise DatasetError(f"no *-images-idx3-ubyte[.gz] files in {str(directory)!r}")
    images, labels = [], []
    for image_file in image_files:
        label_file = image_file.with_name(image_file.name.replace("images-idx3", "labels-idx1"))
        if not label_file.exists():
            raise DatasetError(f"{str(image_file)!r} has no matching labels file {label_file.name}")
        images.append(_read_idx(image_file))
        labels.append(_read_idx(label_file).astype(np.int32))
        if len(images[-1]) != len(labels[-1]):
            raise DatasetError(f"{image_file.name} and {label_file.name} differ in length")
    y = np.concatenate(labels)
    return ImageData(np.concatenate(images), y, [str(i) for i in range(int(y.max()) + 1)])


def _load_npz(path: Path) -> ImageData:
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "x" not in archive:
                raise DatasetError(f"{str(path)!r} has no array 'x' (images)")
            x = archive["x"]
            y = archive["y"].astype(np.int32).reshape(-1) if "y" in archive else None
            names = [str(n) for n in archive["class_names"]] if "class_names" in archive else []
            mask = archive.get("mask")
    except (OSError, ValueError) as error:
        if isinstance(error, DatasetError):
            raise
        raise DatasetError(f"cannot read {str(path)!r} as .npz: {error}") from error
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] not in (1, 3, 4)):
        raise DatasetError(f"'x' must be [N, H, W] or [N, H, W, C in 1/3/4], got {x.shape}")
    if y is not None:
        if len(y) != len(x):
            raise DatasetError(f"'y' has {len(y)} labels for {len(x)} images")
        if y.size and y.min() < 0:
            raise DatasetError("labels in 'y' must be 0 or more")
        names = names or [str(i) for i in range(int(y.max(initial=-1)) + 1)]
    if mask is not None and mask.shape != x.shape[:3]:
        raise DatasetError(
            f"'mask' must be [N, H, W] = {list(x.shape[:3])}, got {list(mask.shape)}"
        )
    masks = None if mask is None else (mask != 0).astype(np.uint8)
    return ImageData(x, y, names, masks=masks)


def _load_keras(name: str) -> ImageData:
    if name not in KERAS_DATASETS:
        raise DatasetError(
            f"unknown keras dataset {name!r}; expected one of {list(KERAS_DATASETS)}"
        )
    import keras

    try:
        (x1, y1), (x2, y2) = getattr(keras.datasets, name).load_data()
    except Exception as error:  # the download's failure modes are many (DNS, HTTP, proxy)
        raise DatasetError(
            f"could not load keras:{name} (it downloads on first use; offline?): {error}"
        ) from error
    labels = np.concatenate([y1, y2]).reshape(-1).astype(np.int32)
    return ImageData(np.concatenate([x1, x2]), labels, list(KERAS_DATASETS[name]))
