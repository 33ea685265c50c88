"""The optional ``encode`` and ``complete`` signatures of an exported model (docs/model-format.md).

Usage (``training.export`` does this when it is given an encoder)::

    module = CompletionSignatures(generator, encoder, z_dim, resolution, channels)
    signatures = {"encode": module.encode, "complete": module.complete}

``encode(images, masks, labels) -> z`` is the encoder's guess. ``complete(images, masks, labels,
steps)`` starts at that guess and refines z with ``steps`` Adam steps (at most
:data:`MAX_STEPS`; more are cut) on the squared error over the observed pixels plus a prior
term ``prior_weight * mean(z^2)`` (the negative log-density of N(0, I) up to scale, which keeps
z where G was trained, as the StyleGAN projector's regularisation does). Every row's loss and
Adam state are its own, so a row's result does not depend on the other rows of its batch beyond
floating-point summation order. It returns the completed images (observed pixels kept, missing
ones from G), z, the mean absolute error on the observed pixels in grey levels, and
``class_cost``: what a caller that does not know the class compares between the completions of
one image in every class, the lowest being the class to keep.

``class_cost`` is the refined loss (the fit to the observed pixels and the prior) minus
``class_weight`` times the log-probability of the row's class that the encoder reads from the
observed pixels. The fit alone picks the class poorly: a conditional G draws a 9 whose top half
is a 7's as readily as a 7, and every class fits a top half about as well once refined. On the
bundled MNIST model with the bottom half missing, the fit alone found the right class for 80-85%
of the held-out digits (50 to 0 refinement steps), ``class_cost`` for 93% (docs/measurements.md,
"Completion on MNIST"). For an unconditional model ``class_cost`` is the loss.

Masks are uint8 [B, H, W]: 0 = missing, anything else = observed (gan_contract.masks).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

MAX_STEPS = 500
LEARNING_RATE = 0.05
PRIOR_WEIGHT = 0.01
ADAM_BETAS = (0.9, 0.999)
# How much the encoder's class weighs against the fit in class_cost: a class the encoder finds
# e (2.7) times likelier may fit the observed pixels worse by this much (a mean squared error in
# [-1, 1], where a refined fit of a half digit is about 0.05 to 0.15).
CLASS_WEIGHT = 0.05


def completion_info(max_steps: int = MAX_STEPS) -> dict[str, Any]:
    """The ``completion`` entry of model.json: how ``complete`` optimises."""
    return {
        "max_steps": max_steps,
        "optimizer": "adam",
        "learning_rate": LEARNING_RATE,
        "prior_weight": PRIOR_WEIGHT,
        "loss": "mean squared error on observed pixels in [-1, 1] + prior_weight * mean(z^2)",
        "class_weight": CLASS_WEIGHT,
        "class_cost": "loss - class_weight * log p(class | observed pixels), p from the encoder",
    }


class CompletionSignatures(tf.Module):
    """``encode`` and ``complete`` around a generator and its encoder."""

    def __init__(
        self,
        generator: keras.Model,
        encoder: keras.Model,
        z_dim: int,
        resolution: int,
        channels: int,
        max_steps: int = MAX_STEPS,
    ) -> None:
        super().__init__(name="completion")
        self.generator = generator
        self.encoder = encoder
        self.max_steps = max_steps
        images = tf.TensorSpec([None, resolution, resolution, channels], tf.uint8, name="images")
        masks = tf.TensorSpec([None, resolution, resolution], tf.uint8, name="masks")
        labels = tf.TensorSpec([None], tf.int32, name="labels")
        steps = tf.TensorSpec([], tf.int32, name="steps")
        self.encode = tf.function(self._encode, input_signature=[images, masks, labels])
        self.complete = tf.function(self._complete, input_signature=[images, masks, labels, steps])

    def _inputs(self, images: tf.Tensor, masks: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x = tf.cast(images, tf.float32) / 127.5 - 1.0
        m = tf.cast(tf.not_equal(masks, 0), tf.float32)[..., None]
        return x, m

    def _guess(self, x: tf.Tensor, m: tf.Tensor, labels: tf.Tensor) -> dict[str, tf.Tensor]:
        out = self.encoder([x * m, m, labels], training=False)
        return {name: tf.cast(value, tf.float32) for name, value in out.items()}

    def _encode(self, images: tf.Tensor, masks: tf.Tensor, labels: tf.Tensor) -> dict:
        x, m = self._inputs(images, masks)
        return {"z": self._guess(x, m, labels)["z"]}

    def _class_cost(
        self, loss: tf.Tensor, guess: dict[str, tf.Tensor], labels: tf.Tensor
    ) -> tf.Tensor:
        """The refined loss, minus CLASS_WEIGHT times log p(label | observed) from E."""
        if "class_logits" not in guess:
            return loss
        log_p = tf.nn.log_softmax(guess["class_logits"], axis=1)
        return loss - CLASS_WEIGHT * tf.gather(log_p, labels, axis=1, batch_dims=1)

    def _g(self, z: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        return tf.cast(self.generator([z, labels], training=False), tf.float32)

    def _complete(
        self, images: tf.Tensor, masks: tf.Tensor, labels: tf.Tensor, steps: tf.Tensor
    ) -> dict:
        x, m = self._inputs(images, masks)
        # Observed values per row (pixels x channels); at least 1 so a padding row is harmless.
        channels = tf.cast(tf.shape(x)[3], tf.float32)
        observed = tf.maximum(tf.reduce_sum(m, axis=[1, 2, 3]) * channels, 1.0)
        steps = tf.clip_by_value(steps, 0, self.max_steps)
        beta1, beta2 = ADAM_BETAS

        def row_losses(z: tf.Tensor, generated: tf.Tensor | None = None) -> tf.Tensor:
            generated = self._g(z, labels) if generated is None else generated
            error = tf.reduce_sum(m * tf.square(generated - x), axis=[1, 2, 3])
            return error / observed + PRIOR_WEIGHT * tf.reduce_mean(tf.square(z), axis=1)

        def body(i: tf.Tensor, z: tf.Tensor, m1: tf.Tensor, m2: tf.Tensor) -> tuple:
            with tf.GradientTape() as tape:
                tape.watch(z)
                # The sum of per-row losses: each row's gradient is that of its own loss.
                total = tf.reduce_sum(row_losses(z))
            grad = tape.gradient(total, z)
            m1 = beta1 * m1 + (1.0 - beta1) * grad
            m2 = beta2 * m2 + (1.0 - beta2) * tf.square(grad)
            t = tf.cast(i + 1, tf.float32)
            update = (m1 / (1.0 - beta1**t)) / (tf.sqrt(m2 / (1.0 - beta2**t)) + 1e-8)
            return i + 1, z - LEARNING_RATE * update, m1, m2

        guess = self._guess(x, m, labels)
        z0 = guess["z"]
        zeros = tf.zeros_like(z0)
        _, z, _, _ = tf.while_loop(
            lambda i, *_: i < steps, body, (tf.constant(0), z0, zeros, zeros)
        )
        generated = self._g(z, labels)
        pixels = tf.clip_by_value(tf.round(generated * 127.5 + 127.5), 0.0, 255.0)
        completed = tf.where(m > 0, images, tf.cast(pixels, tf.uint8))
        difference = tf.abs(pixels - tf.cast(images, tf.float32)) * m
        error = tf.reduce_sum(difference, axis=[1, 2, 3]) / observed
        cost = self._class_cost(row_losses(z, generated), guess, labels)
        return {"images": completed, "z": z, "observed_error": error, "class_cost": cost}
