"""The encoder E: from a partly observed image back to a latent z of G, and to its class.

E reads the observed pixels (the image times its mask, and the mask as one more channel) and
guesses two things: z, the latent from which G (given the class) draws the image, and, for a
conditional G, the class itself (logits over the classes, read from the observed pixels alone).
``/complete`` starts its refinement at the guessed z, and without a class from the request it
weighs each class's completion by how likely E finds that class (``training.completion``).

E is trained after G, with G frozen, on two sources:

- G's own samples: z ~ N(0, I) -> x = G(z, y) -> a random mask m -> E(x * m, m, y), with a
  latent loss ``|z' - z|^2``, an image loss ``|G(z', y) - x|^2`` over the whole image (G's samples
  are complete, so the missing pixels are known) and the class's cross-entropy;
- when the training images are at hand, those too: E sees a real image under a random mask, as a
  user will give it, with the image loss over every pixel the data has (the missing ones
  included: it learns to guess them), a prior term that keeps z where G was trained, and the
  true class's cross-entropy. G's samples alone leave E guessing on real digits, which G draws
  only approximately: on the bundled MNIST model, the class found from a missing bottom half went
  from 88.6% to 94.2% right with the real images added (docs/measurements.md).

This needs no change to adversarial training, works for any trained generator (also one restored
from an exported model version), and yields an encoder that has seen every kind of hole the
service accepts.

Usage::

    from training.encoder import build_encoder, fit_encoder

    encoder = build_encoder(resolution=28, channels=1, z_dim=64, num_classes=10)
    out = encoder([x * m, m, labels])   # x float [-1, 1] [B, H, W, C], m float [B, H, W, 1]
    out["z"], out["class_logits"]       # [B, z_dim]; [B, K] (conditional models only)
    encoder, info = fit_encoder(gan.ema_generator, z_dim=64, num_classes=10, steps=3000,
                                real=train_data, verbose=True)

The masks drawn while training (:func:`random_masks`) mix complete images, pixel dropout at a
random rate, one random square block, and one missing half (top, bottom, left or right).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from training.data import ImageData
from training.nets.dcgan import LABEL_EMBED_DIM
from training.nets.layouts import ENCODER_HIDDEN, ENCODER_WIDTH, base_size, num_upsamplings

# The weight of the prior term on real images: (mean(z'^2) - 1)^2, zero for a typical N(0, I)
# draw. Without it the image loss alone may push z' where G was never trained.
REAL_PRIOR_WEIGHT = 0.1


def _features(h: Any, resolution: int, width: int, name: str) -> Any:
    """Strided convolutions down to the base size, flattened."""
    for level in range(num_upsamplings(resolution)):
        h = layers.Conv2D(
            min(width * 2**level, 256), 4, strides=2, padding="same", name=f"{name}_conv{level}"
        )(h)
        h = layers.LeakyReLU(0.2)(h)
    side = base_size(resolution)
    top = min(width * 2 ** (num_upsamplings(resolution) - 1), 256)
    return layers.Reshape((side * side * top,), name=f"{name}_flat")(h)


def build_encoder(
    resolution: int,
    channels: int,
    z_dim: int,
    num_classes: int = 0,
    width: int = ENCODER_WIDTH,
    hidden: int = ENCODER_HIDDEN,
) -> keras.Model:
    """E([x, mask, labels]) -> {"z": float32 [B, z_dim], "class_logits": float32 [B, K]}.

    Two branches over the image with its mask as one more channel, each strided convolutions
    then a dense layer of ``hidden`` units: z's (with a label embedding when conditional) and,
    only when ``num_classes`` > 0, the class's, which ignores the labels input. For MNIST
    (28x28, 10 classes, z_dim 64) the defaults make 0.85M weights, 3.4 MB: twice the width
    (1.7M weights) found the class and the missing pixels no better, and the bundled model's
    ``width=8, hidden=128`` (0.22M weights) as well (docs/measurements.md).
    """
    x_in = keras.Input((resolution, resolution, channels), name="x")
    m_in = keras.Input((resolution, resolution, 1), name="mask")
    y_in = keras.Input((), dtype="int32", name="labels")
    seen = layers.Concatenate(name="observed")([x_in, m_in])
    h = _features(seen, resolution, width, "z")
    if num_classes:
        embed = layers.Embedding(num_classes, LABEL_EMBED_DIM, name="z_label")(y_in)
        h = layers.Concatenate(name="z_with_label")([h, embed])
    h = layers.LeakyReLU(0.2)(layers.Dense(hidden, name="z_hidden")(h))
    outputs = {"z": layers.Dense(z_dim, dtype="float32", name="z")(h)}
    if num_classes:
        c = _features(seen, resolution, width, "class")
        c = layers.LeakyReLU(0.2)(layers.Dense(hidden, name="class_hidden")(c))
        outputs["class_logits"] = layers.Dense(num_classes, dtype="float32", name="class")(c)
    return keras.Model([x_in, m_in, y_in], outputs, name="encoder")


def random_masks(rng: np.random.RandomState, count: int, resolution: int) -> np.ndarray:
    """float32 [count, R, R, 1] masks (1 = observed): a mix of complete images, dropout at a
    rate in [0, 0.9), one square block of side R/4..3R/4, and one missing half."""
    masks = np.ones((count, resolution, resolution), np.float32)
    kinds = rng.randint(0, 4, size=count)
    half = resolution // 2
    for mask, kind in zip(masks, kinds, strict=True):
        if kind == 1:
            mask[...] = rng.random_sample(mask.shape) >= rng.uniform(0.0, 0.9)
        elif kind == 2:
            side = rng.randint(resolution // 4, 3 * resolution // 4 + 1)
            top, left = rng.randint(0, resolution - side + 1, size=2)
            mask[top : top + side, left : left + side] = 0
        elif kind == 3:
            which = rng.randint(0, 4)
            if which == 0:
                mask[half:] = 0  # bottom
            elif which == 1:
                mask[:half] = 0  # top
            elif which == 2:
                mask[:, half:] = 0  # right
            else:
                mask[:, :half] = 0  # left
    return masks[..., None]


def quantize(x: tf.Tensor) -> tf.Tensor:
    """Images in [-1, 1] rounded to the uint8 grid (what the signatures receive)."""
    return tf.round(tf.clip_by_value(x, -1.0, 1.0) * 127.5 + 127.5) / 127.5 - 1.0


class _RealImages:
    """Batches of training images for the encoder: pixels in [-1, 1], the pixels the data has
    (1 = known; all of them unless the data is partly observed) and the classes."""

    def __init__(self, data: ImageData, num_classes: int) -> None:
        self.data = data
        self.num_classes = num_classes

    def batch(self, rng: np.random.RandomState, size: int) -> tuple[np.ndarray, ...]:
        index = rng.randint(0, len(self.data), size=size)
        x = self.data.images[index].astype(np.float32) / 127.5 - 1.0
        if self.data.masks is None:
            known = np.ones((size, *x.shape[1:3], 1), np.float32)
        else:
            known = (self.data.masks[index] != 0).astype(np.float32)[..., None]
        labels = np.zeros(size, np.int32)
        if self.num_classes and self.data.labels is not None:
            labels = self.data.labels[index].astype(np.int32)
        return x, known, labels


def _class_loss(out: dict[str, tf.Tensor], labels: tf.Tensor) -> tf.Tensor:
    if "class_logits" not in out:
        return tf.constant(0.0)
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels, out["class_logits"])
    )


def train_encoder(
    encoder: keras.Model,
    generator: keras.Model,
    *,
    z_dim: int,
    num_classes: int,
    steps: int,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    image_weight: float = 1.0,
    seed: int = 0,
    log_every: int = 0,
    progress: bool = False,
    real: ImageData | None = None,
) -> list[dict[str, float]]:
    """Train ``encoder`` for ``steps`` steps (G is not changed): each step on a batch of
    ``generator``'s samples and, with ``real`` (training images), a batch of those too.

    Returns one record per ``log_every`` steps (and the last): step, latent, image and class
    losses (and the image loss on real images). ``progress`` draws a tqdm bar on stderr with
    the step, the ETA and the latest losses: a real model's encoder trains for minutes.
    """
    optimizer = keras.optimizers.Adam(learning_rate)
    resolution = int(generator.output_shape[1])
    images = _RealImages(real, num_classes) if real is not None and len(real) else None

    def g(z: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        return tf.cast(generator([z, labels], training=False), tf.float32)

    @tf.function
    def step(
        z: tf.Tensor, labels: tf.Tensor, masks: tf.Tensor, real_batch: tuple[tf.Tensor, ...]
    ) -> dict[str, tf.Tensor]:
        x = quantize(g(z, labels))
        with tf.GradientTape() as tape:
            out = encoder([x * masks, masks, labels], training=True)
            losses = {"latent": tf.reduce_mean(tf.square(out["z"] - z))}
            losses["image"] = tf.reduce_mean(tf.square(g(out["z"], labels) - x))
            losses["class"] = _class_loss(out, labels)
            loss = losses["latent"] + image_weight * losses["image"] + losses["class"]
            if real_batch:
                x_real, known, real_labels, real_masks = real_batch
                seen = real_masks * known
                out = encoder([x_real * seen, seen, real_labels], training=True)
                error = known * tf.square(g(out["z"], real_labels) - x_real)
                losses["real"] = tf.reduce_sum(error) / tf.maximum(tf.reduce_sum(known), 1.0)
                prior = tf.square(tf.reduce_mean(tf.square(out["z"])) - 1.0)
                real_class = _class_loss(out, real_labels)
                loss += image_weight * losses["real"] + REAL_PRIOR_WEIGHT * prior + real_class
                losses["class"] = (losses["class"] + real_class) / 2.0
        grads = tape.gradient(loss, encoder.trainable_variables)
        optimizer.apply_gradients(zip(grads, encoder.trainable_variables, strict=True))
        return losses

    rng = np.random.RandomState(seed)
    history: list[dict[str, float]] = []
    bar = _progress_bar(steps) if progress else None
    started = time.perf_counter()
    try:
        for index in range(1, steps + 1):
            z = rng.randn(batch_size, z_dim).astype(np.float32)
            labels = rng.randint(0, max(num_classes, 1), size=batch_size).astype(np.int32)
            masks = random_masks(rng, batch_size, resolution)
            real_batch: tuple[np.ndarray, ...] = ()
            if images is not None:
                real_batch = (
                    *images.batch(rng, batch_size),
                    random_masks(rng, batch_size, resolution),
                )
            losses = step(z, labels, masks, real_batch)
            if index == steps or (log_every and index % log_every == 0):
                record = {f"{name}_mse" if name != "class" else "class_ce": float(value)
                          for name, value in losses.items()}  # fmt: skip
                history.append({"step": index, **record, "seconds": time.perf_counter() - started})
            if bar is not None:
                _show(bar, index, steps, losses)
    finally:
        if bar is not None:
            bar.close()
    return history


def _progress_bar(steps: int) -> Any:
    """A tqdm bar on stderr for ``steps`` encoder steps; the first step traces the graph."""
    from tqdm import tqdm

    return tqdm(
        total=steps, unit="step", dynamic_ncols=True, desc="tracing the encoder step",
        file=sys.stderr,
    )  # fmt: skip


def _show(bar: Any, index: int, steps: int, losses: dict[str, tf.Tensor]) -> None:
    """Advance the bar; its losses are refreshed every 10th step (reading one waits for it)."""
    if index == 1:
        bar.set_description_str("encoder", refresh=False)
    if index == 1 or index % 10 == 0 or index == steps:
        bar.set_postfix({name: f"{float(value):.4f}" for name, value in losses.items()},
                        refresh=False)  # fmt: skip
    bar.update(1)


def latent_error(
    encoder: keras.Model, generator: keras.Model, z_dim: int, num_classes: int, count: int = 256
) -> dict[str, Any]:
    """How well E inverts G on fresh samples (complete images): latent MSE, image MSE and, for
    a conditional G, how often E's class is the class the sample was drawn in."""
    rng = np.random.RandomState(12345)
    z = tf.constant(rng.randn(count, z_dim).astype(np.float32))
    labels = tf.constant(rng.randint(0, max(num_classes, 1), size=count).astype(np.int32))
    x = quantize(tf.cast(generator([z, labels], training=False), tf.float32))
    ones = tf.ones_like(x[..., :1])
    out = encoder([x, ones, labels], training=False)
    x_hat = tf.cast(generator([out["z"], labels], training=False), tf.float32)
    result: dict[str, Any] = {
        "latent_mse": float(tf.reduce_mean(tf.square(out["z"] - z))),
        "image_mse": float(tf.reduce_mean(tf.square(x_hat - x))),
        "count": count,
    }
    if "class_logits" in out:
        found = tf.argmax(out["class_logits"], axis=1, output_type=tf.int32)
        result["class_accuracy"] = float(tf.reduce_mean(tf.cast(found == labels, tf.float32)))
    return result


def fit_encoder(
    generator: keras.Model,
    *,
    z_dim: int,
    num_classes: int,
    steps: int,
    seed: int = 0,
    batch_size: int = 64,
    verbose: bool = False,
    real: ImageData | None = None,
    width: int = ENCODER_WIDTH,
    hidden: int = ENCODER_HIDDEN,
) -> tuple[keras.Model, dict[str, Any]]:
    """Build and train an encoder for ``generator`` (on ``real`` training images too, when
    given); returns it and what model.json records about it (method, size, steps, final losses,
    errors on fresh samples). ``width`` and ``hidden`` size it as :func:`build_encoder` does.
    ``verbose`` shows a progress bar with the losses on stderr while it trains."""
    resolution, channels = int(generator.output_shape[1]), int(generator.output_shape[3])
    policy = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("float32")  # a small network: float32 everywhere
    try:
        encoder = build_encoder(resolution, channels, z_dim, num_classes, width, hidden)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    history = train_encoder(
        encoder, generator, z_dim=z_dim, num_classes=num_classes, steps=steps,
        batch_size=batch_size, seed=seed, log_every=max(steps // 10, 1), progress=verbose,
        real=real,
    )  # fmt: skip
    real_images = len(real) if real is not None else 0
    method = "trained after G on its samples (latent + image + class loss)"
    if real_images:
        method += f" and on {real_images} masked training images (image + prior + class loss)"
    info = {
        "method": method,
        "steps": steps,
        "batch_size": batch_size,
        "real_images": real_images,
        "width": width,
        "hidden": hidden,
        "parameters": int(encoder.count_params()),
        "final": history[-1] if history else {},
        "on_fresh_samples": latent_error(encoder, generator, z_dim, num_classes),
    }
    return encoder, info
