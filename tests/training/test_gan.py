"""The GAN's train_step: counters, n_critic, EMA, global-batch averaging, a short real run."""

import json

import numpy as np
import pytest
import tensorflow as tf

from tests.training.tiny import TINY
from training import losses
from training.gan import ema_beta
from training.loop import build_gan


def _batches(config, count: int = 4) -> tf.data.Dataset:
    rng = np.random.RandomState(0)
    size = config.batch_size * config.n_critic
    x = rng.uniform(-1, 1, (size * count, 16, 16, 1)).astype("float32")
    y = rng.randint(0, 10, size * count).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(size).repeat()


def test_ema_rampup_and_decay():
    assert float(ema_beta(tf.constant(0), 0.999, 0.05)) < 1e-6  # copies at the start
    assert float(ema_beta(tf.constant(10**7), 0.999, 0.05)) == pytest.approx(0.999, rel=1e-6)
    assert float(ema_beta(tf.constant(3), 0.999, 0.0)) == pytest.approx(0.999, rel=1e-6)
    early = float(ema_beta(tf.constant(1000), 0.999, 0.05))  # half-life 50 steps, not 693
    assert early == pytest.approx(0.5 ** (1 / 50), rel=1e-5)


def test_wgan_gp_runs_n_critic_discriminator_steps():
    config = TINY.replace(loss="wgan-gp", n_critic=2, r1_gamma=1.0)
    gan = build_gan(config, num_classes=10)
    logs = gan.fit(_batches(config), steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)
    history = logs.history
    assert int(gan.step.numpy()) == 2
    assert int(gan.g_optimizer.iterations.numpy()) == 2
    assert int(gan.d_optimizer.iterations.numpy()) == 4
    assert int(gan.images_seen.numpy()) == 2 * 2 * config.batch_size
    assert history["d_penalty"][0] > 0 and np.isfinite(history["d_loss"][0])


def test_ema_generator_averages_weights_and_copies_batch_norm_statistics():
    # decay 0.5 without ramp-up: after one step, ema = (initial + updated) / 2 exactly.
    gan = build_gan(TINY.replace(ema_decay=0.5, ema_rampup=0.0), num_classes=10)
    initial = [w.numpy().copy() for w in gan.generator.weights]
    gan.fit(_batches(TINY), steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
    trainable = {id(w) for w in gan.generator.trainable_weights}
    for ema, live, start in zip(
        gan.ema_generator.weights, gan.generator.weights, initial, strict=True
    ):
        expected = (start + live.numpy()) / 2 if id(live) in trainable else live.numpy()
        np.testing.assert_allclose(ema.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert any(
        not np.allclose(s, w.numpy()) for s, w in zip(initial, gan.generator.weights, strict=True)
    )


def test_replica_slices_of_the_global_batch_add_up_to_the_one_device_update():
    # Under N replicas each replica averages the loss of its slice, and the strategy SUMS the
    # replicas' gradients: the sum must be one device's gradient on the whole global batch.
    # (tests/training/test_strategy.py runs the real two-device strategy end to end.)
    gan = build_gan(TINY.replace(batch_size=32), num_classes=10)
    rng = np.random.RandomState(0)
    real = tf.constant(rng.uniform(-1, 1, (32, 16, 16, 1)).astype("float32"))
    fake = tf.constant(rng.uniform(-1, 1, (32, 16, 16, 1)).astype("float32"))
    labels = tf.constant(rng.randint(0, 10, 32).astype("int32"))
    variables = gan.discriminator.trainable_variables

    def gradients(rows: slice) -> list[np.ndarray]:
        with tf.GradientTape() as tape:
            per_example = losses.discriminator_loss(
                "nonsaturating", gan._d(real[rows], labels[rows]), gan._d(fake[rows], labels[rows])
            )
            loss = gan._average(per_example)
        return [tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, variables)]

    one_device = gradients(slice(0, 32))
    replicas = [gradients(slice(0, 16)), gradients(slice(16, 32))]
    for whole, first, second in zip(one_device, *replicas, strict=True):
        # float32 sums of 16 + 16 terms against one of 32 round differently: a few ulps of the
        # largest partial sum, far below the factor 2 that averaging per replica would give.
        np.testing.assert_allclose(first + second, whole, rtol=1e-4, atol=1e-6)
    assert any(np.abs(g).max() > 1e-4 for g in one_device)  # the gradients are not all zero


def test_short_digits_run_moves_both_losses_and_round_trips(exported_model):
    records = [
        json.loads(line)
        for line in (exported_model.run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in records] == list(range(5, 41, 5))
    first, last = records[0], records[-1]
    assert abs(first["d_loss"] - last["d_loss"]) > 1e-3
    assert abs(first["g_loss"] - last["g_loss"]) > 1e-3
    from training.export import verify

    assert verify(exported_model.version_dir, exported_model.result.gan) <= 1.0
