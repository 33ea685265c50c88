"""Run directories: numbering, reading a run's options, and checking a resume against them.

Usage::

    from training.rundir import new_run_dir, read_run, resume_config

    run_dir = new_run_dir("runs", "digits")              # runs/00003-digits (next free number)
    config, meta = read_run(run_dir)                     # options.json and run.json
    config = resume_config(run_dir, {"steps": 2000})     # ConfigError if an option contradicts
    commands = run_commands(meta)                        # the first command, then each resume's

This module does not import TensorFlow, so the CLIs can validate a resume before loading it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from training.config import RESUMABLE_FIELDS, ConfigError, TrainConfig


def new_run_dir(outdir: str | Path, name: str) -> Path:
    """``outdir/NNNNN-name`` with the next free number (StyleGAN's numbering)."""
    root = Path(outdir)
    root.mkdir(parents=True, exist_ok=True)
    numbers = [int(m.group(1)) for p in root.iterdir() if (m := re.match(r"(\d{5})-", p.name))]
    path = root / f"{max(numbers, default=-1) + 1:05d}-{name}"
    path.mkdir()
    return path


def read_run(run_dir: str | Path) -> tuple[TrainConfig, dict[str, Any]]:
    """The run's TrainConfig and its ``run.json``; ConfigError when it is not a run directory."""
    path = Path(run_dir)
    try:
        options = json.loads((path / "options.json").read_text())
        meta = json.loads((path / "run.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"{str(path)!r} is not a run directory ({error})") from error
    return TrainConfig.from_dict(options), meta


def run_commands(meta: dict[str, Any]) -> list[str]:
    """Every command that trained a run (``run.json``'s ``meta``), first to last."""
    if "commands" in meta:
        return [str(c) for c in meta["commands"]]
    # Written before the history was kept: the first command, then each resume's.
    first = [meta["command"]] if meta.get("command") else []
    return first + [r["command"] for r in meta.get("resumed", []) if r.get("command")]


def resume_config(run_dir: str | Path, overrides: dict[str, Any]) -> TrainConfig:
    """The run's options with ``overrides`` applied; contradicting options are a ConfigError.

    Only options that do not change the model, data or optimizers (``RESUMABLE_FIELDS``, e.g.
    ``steps``) may differ from the run's.
    """
    saved, _ = read_run(run_dir)
    saved_values = saved.to_dict()
    clashes = [
        f"{key}={value!r} (the run has {saved_values[key]!r})"
        for key, value in overrides.items()
        if key in saved_values and value != saved_values[key] and key not in RESUMABLE_FIELDS
    ]
    if clashes:
        raise ConfigError(
            "cannot resume with options that contradict the run: " + ", ".join(clashes)
        )
    return saved.replace(**{k: v for k, v in overrides.items() if k in RESUMABLE_FIELDS})
