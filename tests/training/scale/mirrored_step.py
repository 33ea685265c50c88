"""Run in a fresh process: one vs two replicas of the train step on the same global batch.

``python -m tests.training.scale.mirrored_step ARCHITECTURE OUT.json`` splits the CPU into two
logical devices (which must happen before TensorFlow initialises), trains the same tiny GAN for
a few steps (two D steps per G step, a new batch at every step, WGAN-GP and DiffAugment, so
that every kind of random draw is in play) under the default strategy and under MirroredStrategy
over both devices, and writes the largest weight difference and the size of the update to
OUT.json.
It also runs DiffAugment per replica and records the errors that ``--jit`` and an odd global
batch give with two CPU replicas.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from training.distribute import make_strategy, set_precision, split_cpu

STEPS = 3


def _dataset(config: Any) -> Any:
    """A new global batch at every step (random images and labels keyed by the step)."""
    import tensorflow as tf

    from training.gan import stack_critic_batches

    rows = config.batch_size * config.n_critic
    shape = [rows, config.resolution, config.resolution, config.channels]

    def batch(step: Any) -> tuple[Any, Any]:
        seed = tf.stack([tf.constant(0, tf.int64), step])
        images = tf.random.stateless_uniform(shape, seed=seed, minval=-1.0, maxval=1.0)
        labels = tf.random.stateless_uniform([rows], seed=seed + 1, maxval=3, dtype=tf.int32)
        return images, labels

    dataset = tf.data.Dataset.range(2**62).map(batch)
    return dataset.map(stack_critic_batches(config.n_critic)) if config.n_critic > 1 else dataset


def _train(config: Any, strategy_name: str, steps: int) -> tuple[list[Any], list[Any], Any]:
    """The weights before and after ``steps`` train steps under ``strategy_name``, and the GAN."""
    import keras

    from training.loop import build_gan

    set_precision(config.precision)
    keras.utils.set_random_seed(0)
    strategy = make_strategy(strategy_name)
    gan = build_gan(config, num_classes=3, strategy=strategy)
    before = [v.numpy().copy() for v in gan.generator.weights + gan.discriminator.weights]
    gan.fit(_dataset(config), epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    after = [v.numpy().copy() for v in gan.generator.weights + gan.discriminator.weights]
    assert int(gan.step.numpy()) == steps
    return before, after, gan


def _moving_stddevs(config: Any) -> list[float]:
    """Each replica's copy of D's moving minibatch deviation after two mirrored steps."""
    _, _, gan = _train(config, "mirrored", 2)
    variable = gan.discriminator.get_layer("minibatch_stddev").moving_stddev.value
    return [float(v.numpy()) for v in gan.distribute_strategy.experimental_local_results(variable)]


def main(architecture: str, out: str) -> None:
    split_cpu(2)
    import numpy as np

    from training.config import TrainConfig

    config = TrainConfig(
        architecture=architecture,
        resolution=32,
        channels=1,
        conditional=True,
        z_dim=8,
        g_width=2 if architecture == "resnet" else 4,
        d_width=2 if architecture == "resnet" else 4,
        batch_size=8,
        loss="hinge" if architecture == "resnet" else "wgan-gp",
        n_critic=2,
        augment="color,translation,cutout",
        lr_g=1e-2,
        lr_d=1e-2,
        steps=STEPS,
    )
    start_one, one, _ = _train(config, "none", STEPS)
    start_two, two, _ = _train(config, "mirrored", STEPS)
    result: dict[str, Any] = {
        "same_start": all(np.array_equal(a, b) for a, b in zip(start_one, start_two, strict=True)),
        "max_difference": max(float(np.abs(a - b).max()) for a, b in zip(one, two, strict=True)),
        "max_update": max(float(np.abs(a - b).max()) for a, b in zip(one, start_one, strict=True)),
    }
    # DiffAugment runs per replica inside a strategy; XLA is refused with CPU replicas.
    import tensorflow as tf

    from training.augment import make_augment
    from training.distribute import DistributionError, check_jit

    strategy = make_strategy("mirrored")
    augment = make_augment("color,translation,cutout")
    batches = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors(tf.zeros([4, 16, 16, 3])).repeat(2)
    )
    seed = tf.constant([0, 1], tf.int64)
    per_replica = strategy.run(tf.function(augment), args=(next(iter(batches)), seed))
    local = strategy.experimental_local_results(per_replica)
    result["augment_shapes"] = [list(t.shape) for t in local]
    try:
        check_jit(strategy)
        result["jit_error"] = ""
    except DistributionError as error:
        result["jit_error"] = str(error)
    # A global batch that does not split evenly over the replicas is refused before training.
    from training.config import ConfigError
    from training.loop import train

    try:
        train(config.replace(batch_size=7, strategy="mirrored"), outdir=out + ".runs")
        result["odd_batch_error"] = ""
    except ConfigError as error:
        result["odd_batch_error"] = str(error)
    # Minibatch standard deviation: each replica groups its own rows, and the replicas' moving
    # averages are averaged; a group larger than a replica's batch is refused before training.
    if architecture == "dcgan":  # the ResNet's D has no minibatch deviation
        result["mbstd_moving"] = _moving_stddevs(config.replace(mbstd_group=2))
        try:
            train(config.replace(mbstd_group=8, strategy="mirrored"), outdir=out + ".runs")
            result["mbstd_replica_error"] = ""
        except ConfigError as error:
            result["mbstd_replica_error"] = str(error)
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
