"""Training faults: a run killed with SIGKILL resumes from its last checkpoint with nothing
corrupt; an export interrupted half-way (an error, or SIGKILL) leaves no version directory that
the service would pick up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

TINY = [
    "--dataset", "digits", "--resolution", "16", "--z-dim", "8", "--g-width", "8",
    "--d-width", "8", "--max-width", "16", "--batch-size", "16", "--holdout", "100",
    "--sample-every", "0", "--log-every", "10", "--checkpoint-every", "10",
]  # fmt: skip
STEP_KEY = "step/.ATTRIBUTES/VARIABLE_VALUE"


def cli(command: str, *args: str) -> list[str]:
    return [sys.executable, "-c", f"from training.cli.{command} import main; main()", *args]


def popen(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    with open(log, "wb") as output:
        return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=output, stderr=output)


def wait_for(condition, timeout: float, process: subprocess.Popen[bytes], log: Path) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"exited early ({process.returncode}):\n{log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"timed out:\n{log.read_text()[-2000:]}")
        time.sleep(0.02)


def checkpoint_steps(run_dir: Path) -> list[int]:
    """The step stored in every checkpoint the run's index lists (reading all their tensors)."""
    import tensorflow as tf

    state = tf.train.get_checkpoint_state(str(run_dir / "checkpoints"))
    if state is None:
        return []
    steps = []
    for path in state.all_model_checkpoint_paths:
        reader = tf.train.load_checkpoint(path)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)  # a truncated or corrupt file fails here
        steps.append(int(reader.get_tensor(STEP_KEY)))
    return steps


# About 11 s (a training process killed and resumed): `make test-extended`, which CI runs too.
@pytest.mark.extended
def test_sigkilled_run_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    log = tmp_path / "train.log"
    train = popen(cli("train", *TINY, "--steps", "100000", "--outdir", str(runs)), log)

    def run_dir() -> Path | None:
        found = sorted(runs.glob("*/checkpoints/checkpoint")) if runs.exists() else []
        return found[0].parent.parent if found else None

    wait_for(lambda: run_dir() is not None and max(checkpoint_steps(run_dir()), default=0) >= 20,
             180, train, log)  # fmt: skip
    train.send_signal(signal.SIGKILL)  # no handler, no final checkpoint: a crash
    assert train.wait(timeout=10) == -signal.SIGKILL
    directory = run_dir()
    assert directory is not None
    last = max(checkpoint_steps(directory))
    logged_before = len((directory / "metrics.jsonl").read_text().splitlines())
    target = last + 20
    log2 = tmp_path / "resume.log"
    resume = popen(cli("train", "--resume", str(directory), "--steps", str(target)), log2)
    assert resume.wait(timeout=240) == 0, log2.read_text()[-2000:]
    steps = checkpoint_steps(directory)  # every listed checkpoint restores
    assert max(steps) == target
    assert last in steps or min(steps) > last  # older ones may have been rotated out
    # The resumed run logged steps after `last` only: it continued, it did not start over,
    # and its image counter came back with the step counter.
    lines = (directory / "metrics.jsonl").read_text().splitlines()[logged_before:]
    records = [json.loads(line) for line in lines]
    new_steps = [r["step"] for r in records if "images_seen" in r]
    assert new_steps and min(new_steps) > last and max(new_steps) == target, (last, new_steps)
    final = [r for r in records if r.get("step") == target and "images_seen" in r][-1]
    assert final["images_seen"] == target * 16


def test_export_killed_half_way_leaves_no_version(exported_model, tmp_path: Path) -> None:
    from service.repository.repository import ModelLoadError, discover

    models = tmp_path / "models"
    log = tmp_path / "export.log"
    command = cli("export", str(exported_model.run_dir), "--name", "tiny",
                  "--models-dir", str(models), "--calibration", "64")  # fmt: skip
    export = popen(command, log)
    wait_for(lambda: any((models / "tiny").glob(".export-*")), 120, export, log)
    export.send_signal(signal.SIGKILL)
    export.wait(timeout=10)
    leftovers = list((models / "tiny").iterdir())
    assert not [p for p in leftovers if p.name.isdigit()], leftovers
    assert all(p.name.startswith(".") for p in leftovers)  # hidden: never a version
    with pytest.raises(ModelLoadError, match="no models found"):
        discover(models)  # what the service (and its hot reload) sees: nothing


def test_export_failing_half_way_leaves_nothing(exported_model, tmp_path, monkeypatch) -> None:
    import tensorflow as tf

    from training import export

    real_save = tf.saved_model.save

    def save_then_fail(obj, export_dir, *args, **kwargs):  # type: ignore[no-untyped-def]
        real_save(obj, export_dir, *args, **kwargs)
        raise OSError("disk full")  # half-way: the SavedModel is written, model.json is not

    monkeypatch.setattr(export.tf.saved_model, "save", save_then_fail)
    models = tmp_path / "models"
    with pytest.raises(OSError, match="disk full"):
        export.export_model(
            exported_model.result.gan, models, "tiny", holdout=exported_model.result.holdout,
            calibration_count=16,
        )  # fmt: skip
    assert list((models / "tiny").iterdir()) == []
