"""A run keeps every command that trained it, and an export after a resume shows the resume's
command (with its raised --steps), not only the first run's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from training.config import TrainConfig
from training.data import ImageData
from training.export import export_model
from training.loop import _write_run_files
from training.rundir import read_run, run_commands

FIRST = "gan-train --dataset digits --conditional --resolution 16 --steps 200 --name resumable"
RESUME = "gan-train --resume runs/00001-resumable --steps 400"


def _data() -> ImageData:
    return ImageData(np.zeros((4, 16, 16, 1), np.uint8), np.zeros(4, np.int32), ["0"])


def test_run_json_keeps_the_first_command_and_each_resume(tmp_path: Path):
    config = TrainConfig(dataset="digits", resolution=16)
    _write_run_files(tmp_path, config, _data(), FIRST, resumed=False)
    meta = json.loads((tmp_path / "run.json").read_text())
    assert meta["command"] == FIRST and meta["commands"] == [FIRST]
    _write_run_files(tmp_path, config, _data(), RESUME, resumed=True)
    meta = json.loads((tmp_path / "run.json").read_text())
    assert meta["command"] == RESUME
    assert meta["commands"] == run_commands(meta) == [FIRST, RESUME]


def test_history_of_a_run_written_before_it_was_kept():
    meta = {"command": FIRST, "resumed": [{"command": RESUME, "at": "2026-01-01T00:00:00Z"}]}
    assert run_commands(meta) == [FIRST, RESUME]
    assert run_commands({}) == []


def test_an_export_after_a_resume_records_the_resumed_command(exported_model, tmp_path: Path):
    run_dir = tmp_path / "00001-resumable"
    shutil.copytree(exported_model.run_dir, run_dir, ignore=shutil.ignore_patterns("checkpoints"))
    config, _ = read_run(run_dir)
    _write_run_files(run_dir, config, _data(), RESUME, resumed=True)
    version = export_model(
        exported_model.result.gan, tmp_path / "models", "resumed", run_dir=run_dir,
        calibration_count=8,
    )  # fmt: skip
    info = json.loads((version / "model.json").read_text())
    assert info["command"] == RESUME
    assert info["commands"] == ["gan-train (tests)", RESUME]
