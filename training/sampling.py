"""Seeds, noise, image grids and model versions: the conventions shared with the service.

Usage::

    from training.sampling import make_grid, parse_seeds, resolve_version_dir, save_png, ...
    version_dir = resolve_version_dir(Path("models/mnist"))   # its latest version

    seeds = parse_seeds("0-7,12,20-23")            # [0, 1, ..., 7, 12, 20, 21, 22, 23]
    z = seeds_to_z(seeds, z_dim=128)                # float32 [len(seeds), 128]
    save_png(make_grid(to_uint8(images), columns=8), "grid.png")

A seed maps to noise exactly as StyleGAN does:
``numpy.random.RandomState(seed).randn(z_dim).astype("float32")``, seed in 0..2**32-1.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

SEED_CONVENTION = (
    "z = numpy.random.RandomState(seed).randn(z_dim).astype('float32') for seed in 0..2**32-1 "
    "(StyleGAN's convention); truncation multiplies z by psi"
)
MAX_SEED = 2**32 - 1


def parse_seeds(text: str) -> list[int]:
    """``"0-7,12,20-23"`` -> the seeds in order; raises ValueError with a clear message."""
    seeds: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            raise ValueError(f"empty item in seed list {text!r}")
        first, dash, last = part.partition("-")
        try:
            low = int(first)
            high = int(last) if dash else low
        except ValueError:
            raise ValueError(f"bad seed range {part!r}: expected N or N-M") from None
        if not 0 <= low <= high <= MAX_SEED:
            raise ValueError(f"bad seed range {part!r}: need 0 <= N <= M <= {MAX_SEED}")
        if high - low >= 100_000:
            raise ValueError(f"seed range {part!r} is too long (at most 100000 seeds)")
        seeds.extend(range(low, high + 1))
    return seeds


def seeds_to_z(seeds: list[int], z_dim: int) -> np.ndarray:
    """float32 [len(seeds), z_dim]: one StyleGAN-convention noise vector per seed."""
    return np.stack(
        [np.random.RandomState(seed).randn(z_dim).astype(np.float32) for seed in seeds]
    ).reshape(len(seeds), z_dim)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """tanh images in [-1, 1] -> uint8 with ``clip(round(x * 127.5 + 127.5), 0, 255)``."""
    return np.clip(np.round(np.asarray(images) * 127.5 + 127.5), 0, 255).astype(np.uint8)


def make_grid(images: np.ndarray, columns: int | None = None, padding: int = 0) -> np.ndarray:
    """uint8 [N, H, W, C] -> one uint8 [rows*H, columns*W, C] image (row-major order)."""
    n, h, w, c = images.shape
    columns = columns or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / columns)
    grid = np.zeros(
        (rows * (h + padding) - padding, columns * (w + padding) - padding, c), np.uint8
    )
    for i in range(n):
        r, col = divmod(i, columns)
        grid[r * (h + padding) : r * (h + padding) + h, col * (w + padding) : col * (w + padding) + w] = images[i]  # fmt: skip # noqa: E501
    return grid


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 [H, W, C] image (C = 1 or 3) as PNG; parents are created."""
    from PIL import Image

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    array = image[..., 0] if image.shape[-1] == 1 else image
    Image.fromarray(array, "L" if array.ndim == 2 else "RGB").save(target)
    return target


class ModelDirError(ValueError):
    """The model directory is missing or not an exported model; the message says why."""


def resolve_version_dir(model_dir: Path) -> Path:
    """``models/NAME/VERSION`` as given, or the highest integer version under ``models/NAME``."""
    if (model_dir / "saved_model.pb").is_file():
        return model_dir
    if not model_dir.is_dir():
        raise ModelDirError(f"model directory not found: {model_dir}")
    versions = [
        p for p in model_dir.iterdir() if p.name.isascii() and p.name.isdigit() and p.is_dir()
    ]
    if not versions:
        raise ModelDirError(
            f"{model_dir} is neither a model version (no saved_model.pb) nor holds any versions "
            "(integer version subdirectories)"
        )
    best = max(versions, key=lambda p: int(p.name))
    if not (best / "saved_model.pb").is_file():
        raise ModelDirError(f"{best} holds no saved_model.pb")
    return best
