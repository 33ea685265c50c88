"""The encoder trained on G's samples, and the complete signature's optimisation."""

import numpy as np
import tensorflow as tf

from training.completion import CLASS_WEIGHT, PRIOR_WEIGHT, CompletionSignatures
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


def test_the_encoder_reads_a_class_only_for_a_conditional_model():
    x, m = np.zeros((2, 16, 16, 1), np.float32), np.ones((2, 16, 16, 1), np.float32)
    labels = np.zeros(2, np.int32)
    conditional = build_encoder(16, 1, 8, num_classes=10, width=8, hidden=16)([x, m, labels])
    assert conditional["z"].shape == (2, 8) and conditional["class_logits"].shape == (2, 10)
    assert set(build_encoder(16, 1, 8, num_classes=0, width=8, hidden=16)([x, m, labels])) == {"z"}


def test_training_on_real_images_learns_their_classes(exported_model):
    # The training images under random masks: their classes are learnt (the tiny G, trained for
    # 40 steps, draws them too poorly for their image loss to fall much; it is recorded).
    gan, data = exported_model.result.gan, exported_model.result.data
    encoder = build_encoder(16, 1, gan.config.z_dim, gan.num_classes, width=8, hidden=32)
    history = train_encoder(
        encoder, gan.ema_generator, z_dim=gan.config.z_dim, num_classes=gan.num_classes,
        steps=80, batch_size=32, log_every=1, learning_rate=3e-3, real=data,
    )  # fmt: skip
    assert {"latent_mse", "image_mse", "real_mse", "class_ce"} <= set(history[0])
    assert all(np.isfinite(r["real_mse"]) for r in history)
    first = np.mean([r["class_ce"] for r in history[:10]])
    last = np.mean([r["class_ce"] for r in history[-10:]])
    assert last < 0.8 * first


def test_class_cost_is_the_fit_less_the_weighted_log_probability_of_the_class(exported_model):
    module = _module(exported_model)
    target = _target(exported_model)
    out = module.complete(**target, steps=tf.constant(0))
    gan = exported_model.result.gan
    x = target["images"].numpy().astype(np.float32) / 127.5 - 1.0
    m = target["masks"].numpy().astype(np.float32)[..., None]
    guess = module.encoder([x * m, m, target["labels"]], training=False)
    z = guess["z"].numpy()
    np.testing.assert_allclose(out["z"].numpy(), z, atol=1e-5)  # 0 steps: E's guess
    generated = gan.ema_generator([z, target["labels"]], training=False).numpy()
    fit = (m * (generated - x) ** 2).sum(axis=(1, 2, 3)) / m.sum(axis=(1, 2, 3))
    loss = fit + PRIOR_WEIGHT * (z**2).mean(axis=1)
    logits = guess["class_logits"].numpy().astype(np.float64)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = loss - CLASS_WEIGHT * log_p[np.arange(len(z)), target["labels"]]
    # The same float32 arithmetic in a graph and eagerly: sums of ~100 terms of order 1, a few
    # float32 ulps (1e-7 relative) apart; 1e-5 leaves room for a different summation order.
    np.testing.assert_allclose(out["class_cost"].numpy(), expected, rtol=1e-5, atol=1e-5)


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
