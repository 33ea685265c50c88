"""Writing samples and finding model versions: the training side's helpers around the contract.

Usage::

    from gan_contract.grid import make_grid
    from gan_contract.seeds import seeds_to_z
    from training.sampling import resolve_version_dir, save_png, to_uint8

    version_dir = resolve_version_dir(Path("models/mnist"))   # its latest version
    z = seeds_to_z(range(16), z_dim=128)                        # float32 [16, 128]
    save_png(make_grid(to_uint8(images)), "grid.png")

The conventions shared with the service (seeds, grids, image preparation, ``model.json``) live in
:mod:`gan_contract`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def to_uint8(images: np.ndarray) -> np.ndarray:
    """tanh images in [-1, 1] -> uint8 with ``clip(round(x * 127.5 + 127.5), 0, 255)``."""
    return np.clip(np.round(np.asarray(images) * 127.5 + 127.5), 0, 255).astype(np.uint8)


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
