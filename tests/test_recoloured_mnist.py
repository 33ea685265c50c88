"""benchmarks/recoloured_mnist.py: a deterministic colour data set that the folder loader reads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from tests.conftest import REPO_ROOT


def _module():
    spec = importlib.util.spec_from_file_location(
        "recoloured_mnist", REPO_ROOT / "benchmarks" / "recoloured_mnist.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recolouring_keeps_the_digit_legible():
    module = _module()
    digit = np.zeros((28, 28), np.uint8)
    digit[10:18, 12:16] = 255
    image = module.recolour(digit, np.array([10.0, 20, 30]), np.array([200.0, 100, 50]))
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert image[14, 15].tolist() == [200, 100, 50] and image[0, 0].tolist() == [10, 20, 30]
    rng = np.random.RandomState(0)
    luma = np.array([0.299, 0.587, 0.114])
    for _ in range(50):
        background, foreground = module._colours(rng)
        assert abs(luma @ background - luma @ foreground) >= 255 / 3


def test_the_same_arguments_give_the_same_labelled_folder(mnist_dir: Path, tmp_path: Path):
    from training.data import load_dataset

    module = _module()
    for out in ("a", "b"):
        assert module.write_dataset(mnist_dir, tmp_path / out, count=20) == 20
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert len(files) == 20 and {f.suffix for f in files} == {".png", ".jpg"}
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    data = load_dataset(f"folder:{tmp_path / 'a'}", 32, 3, conditional=True)
    assert data.images.shape == (20, 32, 32, 3) and data.labels is not None
