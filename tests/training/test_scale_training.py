"""The scale options on one device: ResNet-SN with DiffAugment under mixed float16, and XLA.

A couple of steps through ``training.loop.train`` and an export: the loss-scaled optimizers are
in place, the weights stay finite, and the exported signatures keep the float32-in, uint8-out
contract with float32 logits. XLA is checked on a tiny DCGAN (compiling the ResNet under mixed
precision takes half a minute on a CPU).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from training.config import TrainConfig

SCALE = TrainConfig(
    dataset="digits",
    resolution=32,
    channels=1,
    conditional=True,
    z_dim=8,
    architecture="resnet",
    loss="hinge",
    g_width=2,
    d_width=2,
    batch_size=8,
    steps=2,
    holdout=20,
    sample_every=0,
    checkpoint_every=0,
    log_every=1,
    precision="mixed_float16",
    augment="color,translation,cutout",
    strategy="none",
)


# About 20 s (tracing the ResNet's loss-scaled step): `make test-extended`, which CI runs too.
@pytest.mark.extended
def test_resnet_mixed_precision_augment_trains_and_exports(
    tmp_path: Path, restore_policy: None
) -> None:
    from training.export import export_model
    from training.loop import train

    result = train(SCALE, outdir=tmp_path / "runs", verbose=False)
    gan = result.gan
    assert int(gan.step.numpy()) == 2
    assert isinstance(gan.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer)
    assert gan.generator.get_layer("block0").conv1.compute_dtype == "float16"
    weights = gan.generator.get_weights() + gan.discriminator.get_weights()
    assert all(np.isfinite(w).all() for w in weights)

    version = export_model(
        gan, tmp_path / "models", "scale", holdout=result.holdout, calibration_count=16
    )
    loaded = tf.saved_model.load(str(version))
    generate = loaded.signatures["generate"]
    assert generate.structured_input_signature[1]["z"].dtype == tf.float32
    images = generate(
        z=tf.zeros([3, 8]), labels=tf.constant([0, 1, 2]), truncation_psi=tf.constant(1.0)
    )["images"]
    assert images.dtype == tf.uint8 and images.shape == (3, 32, 32, 1)
    logits = loaded.signatures["score"](images=images, labels=tf.constant([0, 1, 2]))["logits"]
    assert logits.dtype == tf.float32 and logits.shape == (3,)
    assert np.isfinite(logits.numpy()).all()


def test_jit_compiles_the_train_step_with_xla() -> None:
    from training.loop import build_gan

    config = TrainConfig(
        resolution=16, channels=1, z_dim=8, g_width=4, d_width=4, batch_size=4, jit=True
    )
    gan = build_gan(config, num_classes=0)
    images = tf.random.uniform([4, 16, 16, 1], -1, 1)
    dataset = tf.data.Dataset.from_tensors((images, tf.zeros([4], tf.int32))).repeat()
    before = [w.copy() for w in gan.discriminator.get_weights()]
    gan.fit(dataset, epochs=1, steps_per_epoch=2, verbose=0, shuffle=False)
    assert gan.jit_compile  # Keras silently turns XLA off for models it cannot compile
    assert int(gan.step.numpy()) == 2
    after = gan.discriminator.get_weights()
    assert all(np.isfinite(w).all() for w in after)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def test_an_unknown_augment_policy_is_a_config_error() -> None:
    from training.config import ConfigError
    from training.loop import build_gan

    with pytest.raises(ConfigError, match="unknown augmentation 'flip'"):
        build_gan(TrainConfig(resolution=16, g_width=4, d_width=4, augment="color,flip"), 0)
