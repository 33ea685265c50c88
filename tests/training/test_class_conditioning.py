"""The stronger class conditioning of small-data runs: conditional batch norm in G, and the
auxiliary class loss on D's projection."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.training.tiny import TINY, train_and_export
from training.config import ConfigError, TrainConfig
from training.nets.dcgan import (
    LatentModulation,
    build_discriminator,
    build_generator,
    with_class_scores,
)

SMALL = {"g_width": 4, "d_width": 4, "max_width": 16, "z_dim": 8, "resolution": 16}


def test_batchnorm_conditioning_has_a_gain_and_bias_per_class_and_no_label_embedding():
    generator = build_generator(TrainConfig(g_conditioning="batchnorm", **SMALL), num_classes=3)
    names = [layer.name for layer in generator.layers]
    assert "label_embedding" not in names
    gains = [w for w in generator.weights if w.shape[0] == 3]  # one row per class
    assert len(gains) == 2 * 2  # gamma and beta of both normalisations (4x4 and 8x8 at 16 px)
    # At initialisation every class has gain 1 and bias 0; set class 1's bias and the class
    # changes the image, as training will.
    z = np.ones((2, 8), np.float32)
    same = np.asarray(generator([z, np.array([0, 1], np.int32)]))
    for weight in gains:
        if np.allclose(weight.numpy(), 0):  # the biases start at 0, the gains at 1
            values = weight.numpy()
            values[1] += 0.5
            weight.assign(values)
    moved = np.asarray(generator([z, np.array([0, 1], np.int32)]))
    np.testing.assert_allclose(moved[0], same[0], atol=1e-6)  # class 0 untouched
    assert np.abs(moved[1] - same[1]).max() > 1e-3


def test_latent_modulation_is_a_gain_and_bias_linear_in_z():
    rng = np.random.RandomState(0)
    features = rng.normal(size=(3, 2, 2, 5)).astype(np.float32)
    z = rng.normal(size=(3, 4)).astype(np.float32)
    layer = LatentModulation()
    np.testing.assert_array_equal(np.asarray(layer([features, z])), features)  # starts at zero
    gain, bias = (rng.normal(size=(4, 5)).astype(np.float32) for _ in range(2))
    layer.gain.assign(gain)
    layer.bias.assign(bias)
    expected = features * (1 + z @ gain)[:, None, None, :] + (z @ bias)[:, None, None, :]
    # Sums of 4 float32 products of unit-sized terms, then one product and one sum: 1e-5
    # relative and absolute covers their rounding on any machine.
    np.testing.assert_allclose(np.asarray(layer([features, z])), expected, rtol=1e-5, atol=1e-5)


def test_batchnorm_z_starts_as_batchnorm_and_lets_z_shift_every_normalisation():
    plain = build_generator(TrainConfig(g_conditioning="batchnorm", **SMALL), num_classes=3)
    skip = build_generator(TrainConfig(g_conditioning="batchnorm-z", **SMALL), num_classes=3)
    modulations = [layer for layer in skip.layers if isinstance(layer, LatentModulation)]
    assert [m.name for m in modulations] == ["project_bn_z", "up1_bn_z"]  # one per normalisation
    modulated = {id(w) for m in modulations for w in m.weights}
    shared = [w for w in skip.weights if id(w) not in modulated]
    for mine, theirs in zip(shared, plain.weights, strict=True):
        mine.assign(theirs)
    rng = np.random.RandomState(1)
    z = rng.normal(size=(4, 8)).astype(np.float32)
    labels = np.array([0, 1, 2, 0], np.int32)
    # Same weights and a zero modulation: the same arithmetic, so the same images.
    np.testing.assert_allclose(np.asarray(skip([z, labels])), np.asarray(plain([z, labels])))
    # The finest normalisation's bias made to depend on z (as training may): the images change.
    modulations[-1].bias.assign(rng.normal(size=modulations[-1].bias.shape).astype(np.float32))
    moved = np.asarray(skip([z, labels])) - np.asarray(plain([z, labels]))
    assert np.abs(moved).max() > 1e-3


def test_class_scores_are_the_projection_term_of_every_class():
    discriminator = build_discriminator(TrainConfig(**SMALL), num_classes=3)
    both = with_class_scores(discriminator)
    rng = np.random.RandomState(0)
    embeddings = discriminator.get_layer("projection").embeddings
    embeddings.assign(rng.normal(size=embeddings.shape).astype(np.float32))  # not near zero
    x = rng.uniform(-1, 1, size=(4, 16, 16, 1)).astype(np.float32)
    labels = np.array([0, 1, 2, 0], np.int32)
    logits, scores = (np.asarray(t) for t in both([x, labels]))
    np.testing.assert_allclose(logits, np.asarray(discriminator([x, labels])), rtol=1e-5, atol=1e-5)
    # D(x, k) - D(x, j) = score_k - score_j: the plain logit cancels. Sums of a few hundred
    # float32 products of unit-sized terms: 1e-4 absolute covers their rounding.
    for k in range(3):
        d_k = np.asarray(discriminator([x, np.full(4, k, np.int32)]))
        d_0 = np.asarray(discriminator([x, np.zeros(4, np.int32)]))
        np.testing.assert_allclose(d_k - d_0, scores[:, k] - scores[:, 0], atol=1e-4)
    assert {w.path for w in both.weights} == {w.path for w in discriminator.weights}


@pytest.mark.parametrize(
    "changes",
    [{"architecture": "resnet", "conditional": True}, {"conditional": False}],
)
def test_class_weight_needs_a_conditional_dcgan(changes):
    with pytest.raises(ConfigError, match="class_weight needs a conditional DCGAN"):
        TrainConfig(class_weight=1.0, **changes).validate()


def test_the_class_boost_falls_linearly_to_the_class_weight_and_stays_there():
    import tensorflow as tf

    from training.gan import scheduled_scale

    def at(steps: tuple[int, ...], start: float) -> list[float]:
        return [float(scheduled_scale(tf.constant(s, tf.int64), start, 1000)) for s in steps]

    # float32 arithmetic on small integers and halves: exact to a few ulps.
    np.testing.assert_allclose(at((0, 500, 1000, 9000), 3.0), [3.0, 2.0, 1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(at((0, 250, 1000, 9000), 0.0), [0.0, 0.25, 1.0, 1.0], atol=1e-6)
    assert float(scheduled_scale(tf.constant(0, tf.int64), 3.0, 0)) == 1.0  # no schedule
    with pytest.raises(ConfigError, match="class_boost_steps"):
        TrainConfig(class_boost_steps=-1).validate()
    with pytest.raises(ConfigError, match="diversity_ramp_steps"):
        TrainConfig(diversity_ramp_steps=-1).validate()


@pytest.mark.parametrize("conditioning", ["batchnorm", "batchnorm-z"])
def test_the_class_loss_teaches_d_the_classes_and_the_run_exports(
    tmp_path: Path, conditioning: str
):
    config = TINY.replace(
        class_weight=1.0, g_conditioning=conditioning, steps=60, sample_every=0, log_every=10
    )
    model = train_and_export(tmp_path, config)
    lines = (model.run_dir / "metrics.jsonl").read_text().splitlines()
    class_losses = [json.loads(line)["d_class_loss"] for line in lines if "d_class_loss" in line]
    # Ten classes: an untrained D's cross-entropy is about ln(10) = 2.30; real digits are easy.
    assert class_losses[0] > 1.5 and class_losses[-1] < 0.8 * class_losses[0]
    card = json.loads((model.version_dir / "model.json").read_text())
    assert card["training_options"]["g_conditioning"] == conditioning


def test_mode_seeking_pairs_adjacent_rows_of_one_class_and_grows_as_they_merge():
    import tensorflow as tf

    from training.gan import mode_seeking, paired_labels

    assert paired_labels(tf.constant([3, 1, 4, 1, 5])).numpy().tolist() == [3, 3, 4, 4, 5]
    z = tf.constant([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [0.0, 0.0], [5.0, 5.0]])
    apart = tf.constant(np.stack([np.full((2, 2, 1), v) for v in (0.0, 1.0, 0.0, 0.5, 9.0)]))
    term = mode_seeking(z, tf.cast(apart, tf.float32)).numpy()
    # Pair 0: z distance 1, image distance 1 -> 1; pair 1: z distance 2, image distance 0.5 -> 4.
    np.testing.assert_allclose(term, [1.0, 1.0, 4.0, 4.0, 0.0], rtol=1e-4)
    x = tf.Variable(tf.cast(apart, tf.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(mode_seeking(z, x))
    step = tape.gradient(loss, x).numpy()[:2, 0, 0, 0]
    assert step[0] > 0 > step[1]  # descending the gradient moves the pair's images apart


def test_mode_seeking_measures_features_as_it_measures_pixels():
    import tensorflow as tf

    from training.gan import mode_seeking

    z = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    pixels = tf.constant(np.stack([np.full((2, 2, 1), v) for v in (0.0, 0.5)]), tf.float32)
    features = tf.constant([[0.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5]])
    # The same mean absolute difference (0.5) over 4 values: the same term, 1 / (0.5 / 1).
    np.testing.assert_allclose(mode_seeking(z, pixels).numpy(), [2.0, 2.0], rtol=1e-4)
    np.testing.assert_allclose(mode_seeking(z, features).numpy(), [2.0, 2.0], rtol=1e-4)


def test_the_feature_space_term_is_measured_in_ds_features():
    import tensorflow as tf

    from training.gan import GAN, mode_seeking

    config = TrainConfig(conditional=True, diversity_weight=1.0, diversity_space="features",
                         **SMALL)  # fmt: skip
    generator = build_generator(config, num_classes=3)
    discriminator = build_discriminator(config, num_classes=3)
    gan = GAN(generator, discriminator, config, num_classes=3)
    rng = np.random.RandomState(2)
    z = tf.constant(rng.normal(size=(4, 8)).astype(np.float32))
    labels = tf.constant([0, 0, 1, 1])
    images = tf.constant(rng.uniform(-1, 1, size=(4, 16, 16, 1)).astype(np.float32))
    features = discriminator.get_layer("features_f32").output
    expected = mode_seeking(z, keras.Model(discriminator.inputs, features)([images, labels]))
    term = gan._mode_seeking(z, images, labels).numpy()
    # The same layers on the same inputs (D has no normalisation to differ between calls).
    np.testing.assert_allclose(term, expected.numpy(), rtol=1e-5)
    assert not np.allclose(term, mode_seeking(z, images).numpy(), rtol=0.1)
    pixels = GAN(generator, discriminator, config.replace(diversity_space="pixels"), 3)
    np.testing.assert_allclose(pixels._mode_seeking(z, images, labels), mode_seeking(z, images))


def test_the_feature_space_needs_the_dcgan_discriminator_and_old_runs_keep_pixels():
    with pytest.raises(ConfigError, match="diversity_space features needs the DCGAN"):
        TrainConfig(architecture="resnet", diversity_space="features").validate()
    saved = TrainConfig(diversity_weight=1.0).to_dict()
    del saved["diversity_space"]  # options saved before the choice existed
    assert TrainConfig.from_dict(saved).diversity_space == "pixels"


@pytest.mark.parametrize("space", ["pixels", "features"])
def test_a_diversity_weight_trains(tmp_path: Path, space: str):
    config = TINY.replace(
        diversity_weight=1.0, diversity_space=space, steps=4, sample_every=0, checkpoint_every=0
    )
    model = train_and_export(tmp_path, config)
    options = json.loads((model.run_dir / "options.json").read_text())
    assert options["diversity_weight"] == 1.0 and options["diversity_space"] == space
