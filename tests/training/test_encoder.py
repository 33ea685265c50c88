"""The encoder trained on G's samples, and the complete signature's optimisation."""

import numpy as np
import tensorflow as tf

from training.completion import CompletionSignatures
from training.encoder import build_encoder, random_masks, train_encoder


def test_random_masks_mix_the_kinds():
    masks = random_masks(np.random.RandomState(0), 400, 16)[..., 0]
    assert masks.shape == (400, 16, 16) and set(np.unique(masks)) <= {0.0, 1.0}
    observed = masks.mean(axis=(1, 2))
    assert np.sum(observed == 1.0) > 50  # complete images
    halves = [m for m in masks if m[:8].all() and not m[8:].any()]
    assert halves  # a missing bottom half is among them
    assert np.sum((observed > 0.05) & (observed < 0.95)) > 100  # dropout and blocks


def test_training_reduces_the_losses(exported_model):
    gan = exported_model.result.gan
    encoder = build_encoder(16, 1, gan.config.z_dim, gan.num_classes, width=8)
    history = train_encoder(
        encoder, gan.ema_generator, z_dim=gan.config.z_dim, num_classes=gan.num_classes,
        steps=60, batch_size=32, log_every=1, learning_rate=3e-3,
    )  # fmt: skip
    first = np.mean([r["latent_mse"] + r["image_mse"] for r in history[:10]])
    last = np.mean([r["latent_mse"] + r["image_mse"] for r in history[-10:]])
    assert last < 0.9 * first


def _module(exported_model, max_steps: int = 500) -> CompletionSignatures:
    gan = exported_model.result.gan
    encoder = build_encoder(16, 1, gan.config.z_dim, gan.num_classes, width=8)
    return CompletionSignatures(
        gan.ema_generator, encoder, gan.config.z_dim, 16, 1, max_steps=max_steps
    )


def _target(exported_model, count: int = 3) -> dict:
    gan = exported_model.result.gan
    z = np.random.RandomState(1).randn(count, gan.config.z_dim).astype(np.float32)
    labels = np.arange(count, dtype=np.int32)
    x = gan.ema_generator([z, labels], training=False).numpy()
    images = np.clip(np.round(x * 127.5 + 127.5), 0, 255).astype(np.uint8)
    masks = np.ones((count, 16, 16), np.uint8)
    masks[:, 8:] = 0
    return {"images": tf.constant(images), "masks": tf.constant(masks), "labels": labels}


def test_steps_reduce_the_error_on_observed_pixels(exported_model):
    module = _module(exported_model)
    target = _target(exported_model)
    before = module.complete(**target, steps=tf.constant(0))["observed_error"].numpy()
    after = module.complete(**target, steps=tf.constant(60))["observed_error"].numpy()
    # The targets are G's own images: the optimum is reachable, the untrained guess is not.
    assert np.mean(after) < 0.8 * np.mean(before)


def test_steps_are_capped_by_the_signature(exported_model):
    module = _module(exported_model, max_steps=3)
    target = _target(exported_model)
    capped = module.complete(**target, steps=tf.constant(100_000))["z"].numpy()
    three = module.complete(**target, steps=tf.constant(3))["z"].numpy()
    np.testing.assert_array_equal(capped, three)  # the same graph and inputs, on one machine


def test_a_row_does_not_depend_on_its_batch(exported_model):
    module = _module(exported_model)
    target = _target(exported_model)
    alone = {k: v[:1] for k, v in target.items()}
    together = module.complete(**target, steps=tf.constant(20))["z"].numpy()[0]
    single = module.complete(**alone, steps=tf.constant(20))["z"].numpy()[0]
    # Each row's loss and Adam state are its own; only kernels' summation order differs
    # between batch shapes (relative 1e-6 per op), amplified over 20 steps: 1e-3 bounds it.
    np.testing.assert_allclose(single, together, atol=1e-3)


def test_gan_train_exports_the_encoder_signatures(tmp_path):
    import json

    from training.cli.train import main as train_main

    argv = ["--dataset", "digits", "--resolution", "16", "--z-dim", "8", "--g-width", "8",
            "--d-width", "8", "--max-width", "16", "--batch-size", "16", "--steps", "2",
            "--holdout", "100", "--sample-every", "0", "--checkpoint-every", "0",
            "--outdir", str(tmp_path / "runs"), "--models-dir", str(tmp_path / "models"),
            "--export", "withenc", "--encoder-steps", "2"]  # fmt: skip
    assert train_main(argv) == 0
    info = json.loads((tmp_path / "models" / "withenc" / "1" / "model.json").read_text())
    assert info["signatures"] == ["complete", "encode", "generate", "score"]
