"""GAN losses as plain functions of logits, returning per-example values (shape [B]).

Usage::

    from training import losses

    d_per_example = losses.discriminator_loss("hinge", real_logits, fake_logits)
    g_per_example = losses.generator_loss("nonsaturating", fake_logits)
    loss = tf.nn.compute_average_loss(d_per_example, global_batch_size=64)

Per-example values (not means) let the caller average over the *global* batch, which keeps the
update identical across any number of replicas. The penalties (:func:`gradient_penalty` for
WGAN-GP, :func:`r1_penalty`) need the discriminator itself and are per-example too.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

LOSS_NAMES = ("nonsaturating", "minimax", "hinge", "wgan-gp")


def discriminator_loss(
    name: str, real_logits: tf.Tensor, fake_logits: tf.Tensor, label_smoothing: float = 0.0
) -> tf.Tensor:
    """The discriminator's per-example loss (without penalties).

    nonsaturating/minimax: -log D(x) - log(1 - D(G(z))) (with one-sided label smoothing);
    hinge: relu(1 - D(x)) + relu(1 + D(G(z))); wgan-gp: D(G(z)) - D(x).
    """
    if name in ("nonsaturating", "minimax"):
        # softplus(-l) = -log sigmoid(l); softplus(l) = -log(1 - sigmoid(l)).
        target = 1.0 - label_smoothing
        real = target * tf.nn.softplus(-real_logits) + (1.0 - target) * tf.nn.softplus(real_logits)
        return real + tf.nn.softplus(fake_logits)
    if name == "hinge":
        return tf.nn.relu(1.0 - real_logits) + tf.nn.relu(1.0 + fake_logits)
    if name == "wgan-gp":
        return fake_logits - real_logits
    raise ValueError(f"unknown loss {name!r}; expected one of {list(LOSS_NAMES)}")


def generator_loss(name: str, fake_logits: tf.Tensor) -> tf.Tensor:
    """The generator's per-example loss.

    nonsaturating: -log D(G(z)); minimax: log(1 - D(G(z))); hinge and wgan-gp: -D(G(z)).
    """
    if name == "nonsaturating":
        return tf.nn.softplus(-fake_logits)
    if name == "minimax":
        return -tf.nn.softplus(fake_logits)
    if name in ("hinge", "wgan-gp"):
        return -fake_logits
    raise ValueError(f"unknown loss {name!r}; expected one of {list(LOSS_NAMES)}")


def _input_gradient_sq_norm(
    critic: Callable[[tf.Tensor], tf.Tensor], images: tf.Tensor
) -> tf.Tensor:
    """Per-example squared L2 norm of d critic(images) / d images."""
    with tf.GradientTape() as tape:
        tape.watch(images)
        total = tf.reduce_sum(critic(images))
    grads = tf.cast(tape.gradient(total, images), tf.float32)
    return tf.reduce_sum(tf.square(grads), axis=list(range(1, len(images.shape))))


def gradient_penalty(
    critic: Callable[[tf.Tensor], tf.Tensor],
    real: tf.Tensor,
    fake: tf.Tensor,
    alpha: tf.Tensor,
    epsilon: float = 1e-12,
) -> tf.Tensor:
    """WGAN-GP's per-example (||grad D(x_hat)|| - 1)^2 at x_hat = alpha real + (1 - alpha) fake.

    ``alpha`` is uniform in [0, 1], one per example (shape [B]); ``epsilon`` inside the square
    root keeps the norm's gradient finite where the input gradient is zero.
    """
    a = tf.reshape(tf.cast(alpha, real.dtype), [-1] + [1] * (len(real.shape) - 1))
    mixed = a * real + (1.0 - a) * tf.cast(fake, real.dtype)
    norm = tf.sqrt(_input_gradient_sq_norm(critic, mixed) + epsilon)
    return tf.square(norm - 1.0)


def r1_penalty(
    critic: Callable[[tf.Tensor], tf.Tensor], real: tf.Tensor, gamma: float
) -> tf.Tensor:
    """R1 (Mescheder et al., 2018): per-example gamma / 2 * ||grad D(x)||^2 on real images."""
    return 0.5 * gamma * _input_gradient_sq_norm(critic, real)
