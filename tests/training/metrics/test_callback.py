"""EvalCallback records metrics every N steps to JSONL and TensorBoard, and keeps the last."""

from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from training.metrics.callback import EvalCallback, last_eval_metrics
from training.metrics.extractors import ExtractorError
from training.metrics.real_images import RealImages


def _tiny_generator() -> keras.Model:
    z = keras.Input((8,), name="z")
    labels = keras.Input((), dtype="int32", name="labels")
    x = keras.layers.Dense(28 * 28, activation="tanh")(z)
    return keras.Model([z, labels], keras.layers.Reshape((28, 28, 1))(x))


def test_records_every_n_steps_and_at_the_end(tmp_path: Path, mnist: RealImages):
    fake_gan = SimpleNamespace(
        ema_generator=_tiny_generator(),
        config=SimpleNamespace(z_dim=8),
        step=tf.Variable(0, dtype=tf.int64),
        images_seen=tf.Variable(0, dtype=tf.int64),
    )
    callback = EvalCallback(
        tmp_path,
        every=2,
        images=mnist.images[:300],
        labels=mnist.labels[:300],
        num_classes=10,
        num=100,
    )
    callback.set_model(fake_gan)
    for step in (1, 2, 3):
        fake_gan.step.assign(step)
        fake_gan.images_seen.assign(step * 64)
        callback.on_train_batch_end(step - 1)
    callback.on_train_end()
    assert last_eval_metrics(tmp_path)["step"] == 3
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2  # step 2, then the end (step 3)
    last = last_eval_metrics(tmp_path)
    assert callback.last is not None
    assert last["fd"] == callback.last["fd"] > 0
    assert 0.0 <= last["class_accuracy"] <= 1.0
    assert len(last["coverage_per_class"]) == 10
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    # The end of training at an already measured step does not measure again.
    callback.on_train_end()
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2


def test_no_record_means_empty_metrics(tmp_path: Path):
    assert last_eval_metrics(tmp_path) == {}
    (tmp_path / "metrics.jsonl").write_text('{"step": 5, "g_loss": 1.0}\n{"step": 6, "eval/')
    assert last_eval_metrics(tmp_path) == {}


def test_unusable_extractor_fails_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("GAN_EVAL_EXTRACTOR", raising=False)
    images = np.zeros((20, 32, 32, 3), np.uint8)
    with pytest.raises(ExtractorError, match="GAN_EVAL_EXTRACTOR"):
        EvalCallback(tmp_path, every=10, images=images, labels=None)
    monkeypatch.setenv("GAN_EVAL_EXTRACTOR", f"inception:{tmp_path / 'absent.h5'}")
    with pytest.raises(ExtractorError, match="InceptionV3 weights not found"):
        EvalCallback(tmp_path, every=10, images=images, labels=None)
