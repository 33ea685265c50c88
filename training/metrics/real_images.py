"""Real images (and their labels) for evaluation, read from a ``--dataset`` spec.

Usage::

    from training.metrics.real_images import load_real_images
    real = load_real_images("mnist-idx:../shared/data/mnist")
    real.images  # uint8 [N, H, W, C];  real.labels  # int64 [N] or None

Supported specs: ``mnist-idx:DIR`` (the gzipped or plain IDX files of MNIST or Fashion-MNIST, the
test split ``t10k-*`` or the training split ``train-*``) and ``npz:PATH`` (arrays ``images``
uint8 [N, H, W] or [N, H, W, C] and optionally ``labels``). Evaluation needs every image in memory
at once anyway (the statistics are over the whole set), so no streaming pipeline is used here.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DatasetError(ValueError):
    """The dataset spec cannot be read; the message says why and what was expected."""


@dataclass(frozen=True)
class RealImages:
    """A labelled or unlabelled set of real images."""

    images: np.ndarray  # uint8 [N, H, W, C]
    labels: np.ndarray | None  # int64 [N]
    class_names: tuple[str, ...]
    spec: str


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DatasetError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DatasetError(f"{path} is truncated: header says {dims}, found {body.size} bytes")
    return body.reshape(dims)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _load_mnist_idx(folder: Path, spec: str) -> RealImages:
    if not folder.is_dir():
        raise DatasetError(f"dataset folder not found: {folder} (from --dataset {spec})")
    for prefix in ("t10k", "train"):
        images_path = _find(folder, f"{prefix}-images-idx3-ubyte")
        labels_path = _find(folder, f"{prefix}-labels-idx1-ubyte")
        if images_path is not None:
            images = _read_idx(images_path)[..., None]
            labels = None
            if labels_path is not None:
                labels = _read_idx(labels_path).astype(np.int64)
                if labels.shape[0] != images.shape[0]:
                    raise DatasetError(f"{labels_path} and {images_path} differ in length")
            names = tuple(str(i) for i in range(10)) if labels is not None else ()
            return RealImages(images, labels, names, spec)
    raise DatasetError(
        f"no MNIST IDX files in {folder}: expected t10k-images-idx3-ubyte[.gz] "
        "(and t10k-labels-idx1-ubyte[.gz]) or the train-* pair"
    )


def _load_npz(path: Path, spec: str) -> RealImages:
    if not path.is_file():
        raise DatasetError(f"dataset file not found: {path} (from --dataset {spec})")
    with np.load(path) as data:
        if "images" not in data:
            raise DatasetError(f"{path} has no 'images' array")
        images = np.asarray(data["images"])
        labels = np.asarray(data["labels"]).astype(np.int64) if "labels" in data else None
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise DatasetError(f"{path}: 'images' must be uint8 [N, H, W(, C)], got {images.dtype}")
    if images.ndim == 3:
        images = images[..., None]
    names = tuple(str(i) for i in range(int(labels.max()) + 1)) if labels is not None else ()
    return RealImages(images, labels, names, spec)


def load_real_images(spec: str) -> RealImages:
    """Read every image of ``spec``; raises ``DatasetError`` with a clear message."""
    kind, sep, arg = spec.partition(":")
    if not sep or not arg:
        raise DatasetError(
            f"dataset spec must look like KIND:PATH (mnist-idx:DIR, npz:FILE): {spec}"
        )
    if kind == "mnist-idx":
        return _load_mnist_idx(Path(arg).expanduser(), spec)
    if kind == "npz":
        return _load_npz(Path(arg).expanduser(), spec)
    raise DatasetError(f"unknown dataset kind {kind!r} in {spec!r}: use mnist-idx:DIR or npz:FILE")
