"""Shared fixtures: the repository root and the MNIST test data (skipped when absent)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

# Quiet TensorFlow's C++ logging in every test process.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The project's top directory."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The MNIST IDX files: ``$GAN_MNIST_DIR`` or ``../shared/data/mnist`` beside the project."""
    path = Path(os.environ.get("GAN_MNIST_DIR", REPO_ROOT.parent / "shared" / "data" / "mnist"))
    if not (path / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST IDX files not found in {path} (set GAN_MNIST_DIR to their folder)")
    return path


@pytest.fixture(scope="session")
def mnist_digits(mnist_dir: Path) -> np.ndarray:
    """The first 24 MNIST test digits, uint8 [24, 28, 28] (white on black)."""
    count = 24
    with gzip.open(mnist_dir / "t10k-images-idx3-ubyte.gz", "rb") as handle:
        raw = handle.read(16 + count * 28 * 28)  # a 16-byte IDX header, then the pixels
    return np.frombuffer(raw, np.uint8, offset=16).reshape(count, 28, 28).copy()


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory: pytest.TempPathFactory):
    """A tiny conditional model trained a few steps on ``digits`` and exported (models/tiny/1).

    Returns a ``tests.training.tiny.ExportedModel`` (run_dir, version_dir, models_dir, result).
    """
    from tests.training.tiny import train_and_export

    return train_and_export(tmp_path_factory.mktemp("exported"))


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository of small factory-built models (service and integration tests).

    ``cond`` (conditional, 3 classes, grayscale, versions 1 and 2) and ``uncond``
    (unconditional, RGB); see tests/service/savedmodel_factory.py.
    """
    from tests.service.savedmodel_factory import export_model

    root = tmp_path_factory.mktemp("models")
    export_model(root / "cond" / "1", name="cond", version=1, num_classes=3, channels=1, seed=1)
    # Version 2: the same network under a new version number, as a re-export would be.
    shutil.copytree(root / "cond" / "1", root / "cond" / "2")
    meta = json.loads((root / "cond" / "2" / "model.json").read_text())
    (root / "cond" / "2" / "model.json").write_text(json.dumps({**meta, "version": 2}))
    export_model(root / "uncond" / "1", name="uncond", version=1, num_classes=0, channels=3, seed=2)
    return root


@pytest.fixture(scope="session")
def completion_models(exported_model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository with ``tinyc`` (the tiny model with a briefly trained encoder: the
    ``encode`` and ``complete`` signatures) and ``tiny`` (the same model without them)."""
    from training.export import export_model, with_encoder

    root = tmp_path_factory.mktemp("completion-models")
    gan = exported_model.result.gan
    encoder, info = with_encoder(gan, steps=30)
    export_model(gan, root, "tinyc", holdout=exported_model.result.holdout,
                 calibration_count=64, encoder=encoder, encoder_info=info)  # fmt: skip
    shutil.copytree(exported_model.version_dir, root / "tiny" / "1")
    return root
