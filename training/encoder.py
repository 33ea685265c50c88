"""The encoder E: from a partly observed image (and its class) back to a latent z of G.

E is trained after G, on G's own samples: z ~ N(0, I) -> x = G(z, y) -> a random mask m ->
E(x * m, m, y) = z', with a latent loss ``|z' - z|^2`` and an image loss
``|G(z', y) - x|^2`` over the whole image (G's samples are complete, so the missing pixels
are known here). G stays frozen. This needs no change to adversarial training, works for any
trained generator (also one restored from an exported model version), and yields an encoder
that has seen every kind of hole the service accepts.

Usage::

    from training.encoder import build_encoder, train_encoder

    encoder = build_encoder(resolution=28, channels=1, z_dim=64, num_classes=10)
    history = train_encoder(encoder, gan.ema_generator, z_dim=64, num_classes=10, steps=2000)
    z = encoder([x * m, m, labels])          # x float [-1, 1] [B, H, W, C], m float [B, H, W, 1]

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

from training.nets.dcgan import LABEL_EMBED_DIM, base_size, num_upsamplings


def build_encoder(
    resolution: int, channels: int, z_dim: int, num_classes: int = 0, width: int = 32
) -> keras.Model:
    """E([x, mask, labels]) -> z float32 [B, z_dim]: strided convolutions over the image with
    its mask as one more channel, then dense layers (with a label embedding when conditional).
    """
    x_in = keras.Input((resolution, resolution, channels), name="x")
    m_in = keras.Input((resolution, resolution, 1), name="mask")
    y_in = keras.Input((), dtype="int32", name="labels")
    h = layers.Concatenate()([x_in, m_in])
    for level in range(num_upsamplings(resolution)):
        h = layers.Conv2D(min(width * 2**level, 256), 4, strides=2, padding="same")(h)
        h = layers.LeakyReLU(0.2)(h)
    side = base_size(resolution)
    h = layers.Reshape((side * side * min(width * 2 ** (num_upsamplings(resolution) - 1), 256),))(h)
    if num_classes:
        embed = layers.Embedding(num_classes, LABEL_EMBED_DIM)(y_in)
        h = layers.Concatenate()([h, embed])
    h = layers.LeakyReLU(0.2)(layers.Dense(512)(h))
    z = layers.Dense(z_dim, dtype="float32", name="z")(h)
    return keras.Model([x_in, m_in, y_in], z, name="encoder")


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
) -> list[dict[str, float]]:
    """Train ``encoder`` on ``generator``'s samples for ``steps`` steps (G is not changed).

    Returns one record per ``log_every`` steps (and the last): step, latent and image loss.
    ``progress`` draws a tqdm bar on stderr with the step, the ETA and the latest losses: a
    real model's encoder trains for minutes.
    """
    optimizer = keras.optimizers.Adam(learning_rate)
    resolution = int(generator.output_shape[1])

    @tf.function
    def step(z: tf.Tensor, labels: tf.Tensor, masks: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x = quantize(tf.cast(generator([z, labels], training=False), tf.float32))
        with tf.GradientTape() as tape:
            z_hat = encoder([x * masks, masks, labels], training=True)
            latent = tf.reduce_mean(tf.square(z_hat - z))
            image = tf.constant(0.0)
            if image_weight > 0:
                x_hat = tf.cast(generator([z_hat, labels], training=False), tf.float32)
                image = tf.reduce_mean(tf.square(x_hat - x))
            loss = latent + image_weight * image
        grads = tape.gradient(loss, encoder.trainable_variables)
        optimizer.apply_gradients(zip(grads, encoder.trainable_variables, strict=True))
        return latent, image

    rng = np.random.RandomState(seed)
    history: list[dict[str, float]] = []
    bar = _progress_bar(steps) if progress else None
    started = time.perf_counter()
    try:
        for index in range(1, steps + 1):
            z = rng.randn(batch_size, z_dim).astype(np.float32)
            labels = rng.randint(0, max(num_classes, 1), size=batch_size).astype(np.int32)
            latent, image = step(z, labels, random_masks(rng, batch_size, resolution))
            if index == steps or (log_every and index % log_every == 0):
                history.append({
                    "step": index,
                    "latent_mse": float(latent),
                    "image_mse": float(image),
                    "seconds": time.perf_counter() - started,
                })  # fmt: skip
            if bar is not None:
                if index == 1:
                    bar.set_description_str("encoder", refresh=False)
                # Reading a loss waits for the step: every 10th is enough for the eye.
                if index == 1 or index % 10 == 0 or index == steps:
                    bar.set_postfix(
                        latent=f"{float(latent):.4f}", image=f"{float(image):.4f}", refresh=False
                    )
                bar.update(1)
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


def latent_error(
    encoder: keras.Model, generator: keras.Model, z_dim: int, num_classes: int, count: int = 256
) -> dict[str, Any]:
    """How well E inverts G on fresh samples: latent MSE and image MSE (complete images)."""
    rng = np.random.RandomState(12345)
    z = tf.constant(rng.randn(count, z_dim).astype(np.float32))
    labels = tf.constant(rng.randint(0, max(num_classes, 1), size=count).astype(np.int32))
    x = quantize(tf.cast(generator([z, labels], training=False), tf.float32))
    ones = tf.ones_like(x[..., :1])
    z_hat = encoder([x, ones, labels], training=False)
    x_hat = tf.cast(generator([z_hat, labels], training=False), tf.float32)
    return {
        "latent_mse": float(tf.reduce_mean(tf.square(z_hat - z))),
        "image_mse": float(tf.reduce_mean(tf.square(x_hat - x))),
        "count": count,
    }


def fit_encoder(
    generator: keras.Model,
    *,
    z_dim: int,
    num_classes: int,
    steps: int,
    seed: int = 0,
    batch_size: int = 64,
    verbose: bool = False,
) -> tuple[keras.Model, dict[str, Any]]:
    """Build and train an encoder for ``generator``; returns it and what model.json records
    about it (method, steps, final losses, errors on fresh samples). ``verbose`` shows a
    progress bar with the losses on stderr while it trains."""
    resolution, channels = int(generator.output_shape[1]), int(generator.output_shape[3])
    policy = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("float32")  # a small network: float32 everywhere
    try:
        encoder = build_encoder(resolution, channels, z_dim, num_classes)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    history = train_encoder(
        encoder, generator, z_dim=z_dim, num_classes=num_classes, steps=steps,
        batch_size=batch_size, seed=seed, log_every=max(steps // 10, 1), progress=verbose,
    )  # fmt: skip
    info = {
        "method": "trained on the generator's samples after training (latent + image loss)",
        "steps": steps,
        "batch_size": batch_size,
        "final": history[-1] if history else {},
        "on_fresh_samples": latent_error(encoder, generator, z_dim, num_classes),
    }
    return encoder, info
