"""A tiny model trained for a few steps on ``digits`` and exported: shared by the tests.

``tests/conftest.py`` exposes it as the session fixture ``exported_model``; the options are
small enough that training and export take seconds on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.config import TrainConfig

TINY = TrainConfig(
    dataset="digits",
    resolution=16,
    channels=1,
    conditional=True,
    z_dim=8,
    g_width=8,
    d_width=8,
    max_width=16,
    batch_size=16,
    steps=40,
    sample_every=20,
    checkpoint_every=20,
    log_every=5,
    holdout=100,
    ema_decay=0.9,
    lr_g=1e-3,
    lr_d=1e-3,
)


@dataclass
class ExportedModel:
    """The run directory, the exported version directory and the in-memory training result."""

    run_dir: Path
    version_dir: Path
    models_dir: Path
    result: Any  # training.loop.TrainResult


def train_and_export(root: Path, config: TrainConfig = TINY) -> ExportedModel:
    """Train ``config`` under ``root/runs`` and export it to ``root/models/tiny/1``."""
    from training.export import export_model
    from training.loop import train

    result = train(config, outdir=root / "runs", command="gan-train (tests)", verbose=False)
    version_dir = export_model(
        result.gan,
        root / "models",
        "tiny",
        holdout=result.holdout,
        run_dir=result.run_dir,
        calibration_count=64,
    )
    return ExportedModel(result.run_dir, version_dir, root / "models", result)
