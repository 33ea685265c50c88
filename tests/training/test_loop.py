"""Runs: the run directory, exact resume, NaN stops, SIGTERM checkpoints."""

import json
import os
import signal
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.training.tiny import TINY
from training import losses
from training.config import ConfigError
from training.loop import TrainingDiverged, train
from training.rundir import new_run_dir, resume_config

QUICK = TINY.replace(sample_every=0, checkpoint_every=0, log_every=2)


def _optimizer_state(gan) -> list[np.ndarray]:
    return [v.numpy() for v in gan.g_optimizer.variables + gan.d_optimizer.variables]


def test_run_directory_contents(exported_model):
    run = exported_model.run_dir
    assert run.name == "00000-digits"
    assert json.loads((run / "options.json").read_text()) == TINY.to_dict()
    meta = json.loads((run / "run.json").read_text())
    assert meta["num_classes"] == 10 and meta["command"] == "gan-train (tests)"
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == [
        "step-0000020.png",
        "step-0000040.png",
    ]
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith("ckpt-40")


def test_run_numbers_increase(tmp_path: Path):
    assert new_run_dir(tmp_path, "a").name == "00000-a"
    (tmp_path / "00007-old").mkdir()
    assert new_run_dir(tmp_path, "b").name == "00008-b"


def test_resume_continues_exactly(tmp_path: Path):
    # With DiffAugment: its draws come from the step's seed, as the noise does, so the resumed
    # run augments as the uninterrupted one did at the same steps.
    config = QUICK.replace(augment="color,translation,cutout")
    straight = train(config.replace(steps=10), outdir=tmp_path / "a", verbose=False)
    first = train(config.replace(steps=6), outdir=tmp_path / "b", verbose=False)
    assert int(first.gan.step.numpy()) == 6
    config = resume_config(first.run_dir, {"steps": 10})
    resumed = train(config, resume=first.run_dir, verbose=False)
    assert int(resumed.gan.step.numpy()) == 10
    assert int(resumed.gan.g_optimizer.iterations.numpy()) == 10
    assert int(resumed.gan.images_seen.numpy()) == int(straight.gan.images_seen.numpy())
    # Same machine, same batch shapes, same inputs: only the order TensorFlow's threads finish
    # reductions in may differ, a few float32 ulps (about 1e-7 relative) per step, which ten
    # Adam steps keep far below these bounds; another augmentation or noise would move the
    # weights by whole steps (lr = 1e-3).
    for a, b in zip(_optimizer_state(straight.gan), _optimizer_state(resumed.gan), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    for name in ("generator", "discriminator", "ema_generator"):
        pairs = zip(
            getattr(straight.gan, name).weights, getattr(resumed.gan, name).weights, strict=True
        )
        for a, b in pairs:
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)


def test_resume_rejects_contradicting_options(exported_model):
    with pytest.raises(ConfigError, match="z_dim=32"):
        resume_config(exported_model.run_dir, {"z_dim": 32, "steps": 80})
    assert resume_config(exported_model.run_dir, {"steps": 80}).steps == 80


def test_nan_loss_names_the_step_and_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    poison = tf.Variable(0.0)
    original = losses.generator_loss
    monkeypatch.setattr(
        losses, "generator_loss", lambda name, logits: original(name, logits) + poison
    )

    class PoisonAfterStep4(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.step.numpy()) == 4:
                poison.assign(float("nan"))

    config = QUICK.replace(steps=10, checkpoint_every=2)
    with pytest.raises(TrainingDiverged, match=r"step 5 .*ckpt-4"):
        train(config, outdir=tmp_path, extra_callbacks=[PoisonAfterStep4()], verbose=False)
    run = next(tmp_path.iterdir())
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith("ckpt-4")


def test_sigterm_writes_a_checkpoint_and_stops(tmp_path: Path):
    class Terminate(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.step.numpy()) == 3:
                os.kill(os.getpid(), signal.SIGTERM)

    result = train(
        QUICK.replace(steps=50), outdir=tmp_path, extra_callbacks=[Terminate()], verbose=False
    )
    assert result.status == "interrupted (SIGTERM)"
    stopped = int(result.gan.step.numpy())
    assert stopped < 50
    assert result.checkpoint is not None and result.checkpoint.endswith(f"ckpt-{stopped}")
    assert signal.getsignal(signal.SIGTERM) is not None  # the handler was put back
