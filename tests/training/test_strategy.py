"""Distribution strategies end to end, each in fresh processes (TF fixes its devices per process).

- MirroredStrategy over two logical CPU devices applies the same update as one device on the same
  global batches: two D steps per G step, a new batch at every step, WGAN-GP and DiffAugment, so
  that each replica must pair every real image with the label, noise, mixing weight and
  augmentation one device gives it.
- Two MultiWorkerMirroredStrategy workers on loopback train a few steps through ``gan-train``;
  the chief exports a model that loads, the other worker writes nothing.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 240


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT), **extra}
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


@pytest.mark.slow
def test_mirrored_two_devices_apply_the_same_update_as_one(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    process = subprocess.run(
        [sys.executable, "-m", "tests.training.scale.mirrored_step", "dcgan", str(out)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["same_start"]
    assert result["max_update"] > 1e-3  # the steps did move the weights
    # Two replicas add the same per-example terms in another order (two partial sums, then the
    # all-reduce), which changes each gradient by a few float32 ulps (2**-24, about 6e-8,
    # relative to the terms); Adam divides by the gradient's scale, so a step moves by about that
    # relative amount too, and three steps of D and G feeding each other grow it to some 1e-5 of
    # the update (2.6e-5 measured). 1e-3 of the update leaves a wide margin for other CPUs, while
    # any other pairing of an image with its label, noise or augmentation changes the update by
    # its own size.
    assert result["max_difference"] < 1e-3 * result["max_update"]
    assert result["augment_shapes"] == [[2, 16, 16, 3], [2, 16, 16, 3]]
    assert "--jit with 2 replicas needs GPUs" in result["jit_error"]
    assert "must be a multiple of the 2 replicas" in result["odd_batch_error"]
    assert not (tmp_path / "result.json.runs").exists()  # refused before any run directory
    # Minibatch deviation: both replicas hold the same moving average, moved off its initial 1.0.
    first, second = result["mbstd_moving"]
    assert first == pytest.approx(second, rel=1e-6) and first != 1.0 and np.isfinite(first)
    assert "--mbstd-group 8 must divide each replica's batch (4" in result["mbstd_replica_error"]


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.slow
def test_two_workers_train_and_only_the_chief_exports(tmp_path: Path) -> None:
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    args = [
        "--dataset", "digits", "--resolution", "16", "--channels", "1", "--conditional",
        "--z-dim", "8", "--g-width", "8", "--d-width", "8", "--max-width", "16",
        "--batch-size", "16", "--steps", "3", "--holdout", "50", "--log-every", "1",
        "--strategy", "multiworker", "--outdir", str(tmp_path / "runs"),
        "--models-dir", str(tmp_path / "models"), "--export", "tiny",
    ]  # fmt: skip
    code = "import sys; from training.cli.train import main; sys.exit(main())"
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", code, *args],
                cwd=tmp_path,
                env=_env(TF_CONFIG=json.dumps(tf_config)),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=TIMEOUT)
            outputs.append((process.returncode, stdout, stderr))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    for returncode, stdout, stderr in outputs:
        assert returncode == 0, stdout[-2000:] + stderr[-3000:]
    assert "finished at step 3" in outputs[0][1]
    assert "finished at step 3" in outputs[1][1]
    assert "exported" in outputs[0][1]
    assert "not the chief" in outputs[1][1]

    # One run directory and one model version: the second worker kept nothing.
    assert len(list((tmp_path / "runs").iterdir())) == 1
    versions = [p for p in (tmp_path / "models" / "tiny").iterdir() if p.is_dir()]
    assert [v.name for v in versions] == ["1"]
    info = json.loads((versions[0] / "model.json").read_text())
    assert info["steps"] == 3
    assert info["training_options"]["strategy"] == "multiworker"

    import tensorflow as tf

    model = tf.saved_model.load(str(versions[0]))
    images = model.signatures["generate"](
        z=tf.zeros([2, 8]), labels=tf.constant([0, 1]), truncation_psi=tf.constant(1.0)
    )["images"].numpy()
    assert images.shape == (2, 16, 16, 1) and images.dtype == np.uint8
    logits = model.signatures["score"](images=tf.constant(images), labels=tf.constant([0, 1]))
    assert logits["logits"].shape == (2,)


def test_missing_tf_config_is_a_clear_cli_error(tmp_path: Path) -> None:
    code = "import sys; from training.cli.train import main; sys.exit(main())"
    process = subprocess.run(
        [sys.executable, "-c", code, "--dataset", "digits", "--strategy", "multiworker",
         "--steps", "1", "--outdir", str(tmp_path)],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert process.returncode == 2
    assert "needs the TF_CONFIG environment variable" in process.stderr
    assert "Traceback" not in process.stderr
