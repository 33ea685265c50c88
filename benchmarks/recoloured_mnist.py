"""A small colour data set made from MNIST, for measuring training on people's own images.

Usage::

    python benchmarks/recoloured_mnist.py --out /tmp/recoloured --count 3000
    gan-train --dataset folder:/tmp/recoloured --conditional --resolution 32 --channels 3 ...

Each image is an MNIST digit (from ``$GAN_MNIST_DIR`` or ``../shared/data/mnist``) padded to
32x32 and painted with a random background and foreground colour of its own (at least a third of
the grey range apart in luminance, so that every digit stays legible), saved as one subfolder per
class, PNG and JPEG alternating: the kind of folder a user brings. The same arguments always give
the same images (a seeded permutation and seeded colours); the data is made, never committed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
MIN_CONTRAST = 255 / 3  # luminance difference between background and foreground


def _colours(rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """A background and a foreground RGB colour at least MIN_CONTRAST apart in luminance."""
    luma = np.array([0.299, 0.587, 0.114])
    while True:
        background, foreground = rng.randint(0, 256, size=(2, 3))
        if abs(float(luma @ background) - float(luma @ foreground)) >= MIN_CONTRAST:
            return background.astype(np.float64), foreground.astype(np.float64)


def recolour(digit: np.ndarray, background: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    """uint8 [32, 32, 3]: a 28x28 grey digit padded by 2 and painted in the two colours."""
    alpha = np.pad(digit.astype(np.float64) / 255.0, 2)[..., None]
    return np.round(background * (1 - alpha) + foreground * alpha).astype(np.uint8)


def write_dataset(mnist_dir: Path, out: Path, count: int, seed: int = 0) -> int:
    """Write ``count`` recoloured digits under ``out/<class>/``; returns how many were written."""
    sys.path.insert(0, str(ROOT))
    from training.data import load_dataset

    data = load_dataset(f"mnist-idx:{mnist_dir}", 28, 1, conditional=True)
    assert data.labels is not None
    rng = np.random.RandomState(seed)
    order = rng.permutation(len(data.images))[:count]
    for index, source in enumerate(order):
        label = int(data.labels[source])
        image = recolour(data.images[source, ..., 0], *_colours(rng))
        folder = out / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        if index % 2 == 0:
            Image.fromarray(image).save(folder / f"{index:05d}.png")
        else:
            Image.fromarray(image).save(folder / f"{index:05d}.jpg", quality=92)
    return len(order)


def main(argv: list[str] | None = None) -> int:
    # The script's folder is on sys.path when it runs; tests load only its functions.
    from mnist_dir import add_mnist_dir, checked_mnist_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write (one per class)")
    parser.add_argument("--count", type=int, default=3000, help="images (default 3000)")
    parser.add_argument("--seed", type=int, default=0, help="permutation and colours (default 0)")
    add_mnist_dir(parser)
    args = parser.parse_args(argv)
    checked_mnist_dir(parser, args)
    if args.count < 1:
        parser.error("--count must be at least 1")
    written = write_dataset(args.mnist_dir, args.out, args.count, args.seed)
    print(f"wrote {written} images to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
