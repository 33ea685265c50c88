"""Losses against values computed by hand."""

import numpy as np
import pytest
import tensorflow as tf

from training import losses

REAL = tf.constant([2.0, -1.0])
FAKE = tf.constant([0.5, -3.0])


def softplus(x: float) -> float:
    return float(np.log1p(np.exp(x)))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("nonsaturating", [softplus(-2) + softplus(0.5), softplus(1) + softplus(-3)]),
        ("minimax", [softplus(-2) + softplus(0.5), softplus(1) + softplus(-3)]),
        ("hinge", [0.0 + 1.5, 2.0 + 0.0]),
        ("wgan-gp", [0.5 - 2.0, -3.0 + 1.0]),
    ],
)
def test_discriminator_loss(name: str, expected: list[float]):
    np.testing.assert_allclose(losses.discriminator_loss(name, REAL, FAKE), expected, rtol=1e-5)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("nonsaturating", [softplus(-0.5), softplus(3.0)]),  # -log sigmoid(l)
        ("minimax", [-softplus(0.5), -softplus(-3.0)]),  # log(1 - sigmoid(l))
        ("hinge", [-0.5, 3.0]),
        ("wgan-gp", [-0.5, 3.0]),
    ],
)
def test_generator_loss(name: str, expected: list[float]):
    np.testing.assert_allclose(losses.generator_loss(name, FAKE), expected, rtol=1e-5)


def test_nonsaturating_is_minus_log_d():
    d = 1 / (1 + np.exp(-0.5))
    assert float(losses.generator_loss("nonsaturating", tf.constant([0.5]))[0]) == pytest.approx(
        -np.log(d), rel=1e-5
    )


def test_one_sided_label_smoothing():
    value = losses.discriminator_loss("nonsaturating", REAL[:1], FAKE[:1], label_smoothing=0.1)
    expected = 0.9 * softplus(-2) + 0.1 * softplus(2) + softplus(0.5)
    assert float(value[0]) == pytest.approx(expected, rel=1e-5)


def test_unknown_loss_is_an_error():
    with pytest.raises(ValueError, match="unknown loss"):
        losses.generator_loss("least-squares", FAKE)


def test_gradient_penalty_interpolates_with_alpha_toward_real():
    # critic(x) = sum(x^2): its input gradient is 2 x_hat. Real = 1, fake = 0 over 4 pixels.
    real = tf.ones([2, 2, 2, 1])
    fake = tf.zeros([2, 2, 2, 1])
    alpha = tf.constant([0.25, 1.0])  # x_hat = 0.25 -> norm 1 -> 0;  x_hat = 1 -> norm 4 -> 9

    def critic(x: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(tf.square(x), axis=[1, 2, 3])

    np.testing.assert_allclose(
        losses.gradient_penalty(critic, real, fake, alpha), [0.0, 9.0], atol=1e-5
    )


def test_gradient_penalty_is_finite_where_the_gradient_vanishes():
    weight = tf.Variable(0.0)
    real = tf.ones([1, 2, 2, 1])
    with tf.GradientTape() as tape:
        penalty = losses.gradient_penalty(
            lambda x: weight * tf.reduce_sum(x, axis=[1, 2, 3]), real, real * 0, tf.constant([0.5])
        )
    grad = tape.gradient(penalty, weight)
    assert float(penalty[0]) == pytest.approx(1.0, abs=1e-5)  # (sqrt(0 + eps) - 1)^2
    assert np.isfinite(float(grad))


def test_r1_penalty():
    real = tf.ones([3, 2, 2, 1])  # gradient of sum(x^2) is 2 per pixel: squared norm 16
    value = losses.r1_penalty(lambda x: tf.reduce_sum(tf.square(x), axis=[1, 2, 3]), real, 0.1)
    np.testing.assert_allclose(value, [0.8, 0.8, 0.8], rtol=1e-5)
