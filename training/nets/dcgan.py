"""DCGAN generator and discriminator factories (class-conditional when there are labels).

Usage (``training.nets.architectures.build_networks`` picks the family from a config)::

    from training.nets.dcgan import build_discriminator, build_generator

    generator = build_generator(config, num_classes=10)
    discriminator = build_discriminator(config, num_classes=10)
    images = generator([z, labels])              # tanh images float32 [B, H, W, C]
    logits = discriminator([images, labels])     # float32 [B]

Both networks take the labels input always (int32 [B]) so that conditional and unconditional
models share one calling convention; unconditional networks ignore it. Square resolutions 16, 32,
64, 128 (upsampling from 4x4) and 28 (from 7x7) are supported, with 1 or 3 channels.

The generator conditions by concatenating a learned label embedding to z (``g_conditioning``
"concat") or by conditional batch norm, a per-class gain and bias in every normalisation
("batchnorm", which makes the class harder to ignore). "batchnorm-z" adds a gain and bias that
are linear in z to every normalisation (BigGAN's skip-z, Brock et al. 2019): z then reaches every
scale directly, not only through the first layer, so that it can vary a class's shapes and not
only its colours. The discriminator
conditions by projection (Miyato & Koyama, 2018): logit = w.phi(x) + <embed(y), phi(x)>.
The last layers compute in float32 so logits and images stay float32 under a mixed policy.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

from training.config import TrainConfig
from training.nets import resnet
from training.nets.layouts import base_size, dcgan_widths, num_upsamplings

LABEL_EMBED_DIM = 32


def build_generator(
    config: TrainConfig | None = None,
    *,
    num_classes: int = 0,
    resolution: int | None = None,
    channels: int | None = None,
    z_dim: int | None = None,
    width: int | None = None,
    max_width: int | None = None,
) -> keras.Model:
    """The DCGAN generator: [z float32 [B, z_dim], labels int32 [B]] -> tanh images [B,H,W,C].

    Options come from ``config`` unless given as keywords; ``num_classes`` > 0 makes it
    class-conditional.
    """
    cfg = config or TrainConfig()
    res = resolution or cfg.resolution
    out_channels = channels or cfg.channels
    zdim = z_dim or cfg.z_dim
    widths = dcgan_widths(width or cfg.g_width, max_width or cfg.max_width, num_upsamplings(res))
    size = base_size(res)

    z = keras.Input((zdim,), dtype="float32", name="z")
    labels = keras.Input((), dtype="int32", name="labels")
    h = z
    by_norm = num_classes > 0 and cfg.g_conditioning in ("batchnorm", "batchnorm-z")
    by_latent = by_norm and cfg.g_conditioning == "batchnorm-z"
    if num_classes > 0 and not by_norm:
        embedded = layers.Embedding(num_classes, LABEL_EMBED_DIM, name="label_embedding")(labels)
        h = layers.Concatenate(name="z_and_label")([z, embedded])

    def norm(x: Any, name: str) -> Any:
        if by_norm:  # the class sets every normalisation's gain and bias (as the ResNet's does)
            x = resnet.ConditionalBatchNorm(num_classes, name=name)([x, labels])
            if by_latent:  # and z shifts them, image by image
                x = LatentModulation(name=f"{name}_z")([x, z])
            return x
        # Synchronised statistics: a batch split over replicas is normalised as one device would.
        return layers.BatchNormalization(synchronized=True, name=name)(x)

    h = layers.Dense(size * size * widths[0], use_bias=False, name="project")(h)
    h = layers.Reshape((size, size, widths[0]))(h)
    h = norm(h, "project_bn")
    h = layers.ReLU()(h)
    for i, ch in enumerate(widths[1:], start=1):
        h = layers.Conv2DTranspose(ch, 4, 2, "same", use_bias=False, name=f"up{i}")(h)
        h = norm(h, f"up{i}_bn")
        h = layers.ReLU()(h)
    h = layers.Conv2DTranspose(out_channels, 4, 2, "same", name="to_image")(h)
    images = layers.Activation("tanh", dtype="float32", name="images")(h)
    inputs = [z, labels]
    if num_classes == 0:
        # Keep the labels input in the graph (a zero contribution) so that both kinds of model
        # share one signature.
        images = _IgnoreInput(name="ignore_labels")([images, labels])
    return keras.Model(inputs, images, name="generator")


def build_discriminator(
    config: TrainConfig | None = None,
    *,
    num_classes: int = 0,
    resolution: int | None = None,
    channels: int | None = None,
    width: int | None = None,
    max_width: int | None = None,
) -> keras.Model:
    """The DCGAN discriminator: [images in [-1, 1] [B,H,W,C], labels int32 [B]] -> logits [B]."""
    cfg = config or TrainConfig()
    res = resolution or cfg.resolution
    in_channels = channels or cfg.channels
    count = num_upsamplings(res)
    widths = list(reversed(dcgan_widths(width or cfg.d_width, max_width or cfg.max_width, count)))

    images = keras.Input((res, res, in_channels), dtype="float32", name="images")
    labels = keras.Input((), dtype="int32", name="labels")
    group = cfg.mbstd_group
    h = images
    for i, ch in enumerate(widths):
        if group > 0 and i == len(widths) - 1:
            # Before the last convolution, as in ProGAN and StyleGAN: the statistic is mixed with
            # the image's own features rather than only added to the logit.
            h = MinibatchStddev(group, name="minibatch_stddev")(h)
        h = layers.Conv2D(ch, 4, 2, "same", name=f"down{i}")(h)
        h = layers.LeakyReLU(0.2)(h)
    features = layers.Flatten(name="features")(h)
    # float32 from here on: the logits must not overflow or lose precision under mixed policies.
    features = layers.Activation("linear", dtype="float32", name="features_f32")(features)
    logits = layers.Dense(1, dtype="float32", name="logit")(features)
    logits = layers.Reshape((), dtype="float32", name="logits")(logits)
    if num_classes > 0:
        embedded = layers.Embedding(
            num_classes, features.shape[-1], dtype="float32", name="projection"
        )(labels)
        logits = _Projection(dtype="float32", name="projected_logits")([logits, embedded, features])
    else:
        logits = _IgnoreInput(dtype="float32", name="ignore_labels")([logits, labels])
    return keras.Model([images, labels], logits, name="discriminator")


def with_class_scores(discriminator: keras.Model) -> keras.Model:
    """``[images, labels] -> [logits, class scores [B, K]]``, sharing every layer with ``D``.

    The class scores are the projection term for every class, ``<embed(k), phi(x)>``: an
    auxiliary classifier (AC-GAN, Odena et al. 2017) that adds no weights, so training it
    sharpens exactly the class evidence D's logit uses. Only the conditional DCGAN discriminator
    has the named layers this needs; anything else raises ValueError.
    """
    missing = "an auxiliary class loss needs the conditional DCGAN discriminator"
    features = _layer(discriminator, "features_f32", missing).output
    projection = _layer(discriminator, "projection", missing)
    scores = _ClassScores(projection, dtype="float32", name="class_scores")(features)
    return keras.Model(discriminator.inputs, [discriminator.output, scores])


def with_features(discriminator: keras.Model) -> keras.Model:
    """``[images, labels] -> features [B, F]``: D's last hidden layer, sharing every layer with D.

    What the mode-seeking term measures with ``diversity_space="features"``: two images differ
    there as much as they differ to D, shape as well as colour. Only the DCGAN discriminator has
    the named layer this needs; anything else raises ValueError.
    """
    features = _layer(discriminator, "features_f32", "D's features need the DCGAN discriminator")
    return keras.Model(discriminator.inputs, features.output)


def _layer(model: keras.Model, name: str, missing: str) -> layers.Layer:
    """``model``'s layer ``name``; ValueError(``missing``) when it has none (another family)."""
    try:
        return model.get_layer(name)
    except ValueError:
        raise ValueError(missing) from None


class MinibatchStddev(layers.Layer):
    """Appends one channel: how much the images of a small group differ (ProGAN, Karras 2018).

    Training: the batch is split into groups of ``group_size`` images (image ``i`` in group
    ``i % (N / group_size)``, as StyleGAN2-ADA does); each group's standard deviation of every
    feature over its images, averaged over features and pixels, becomes a constant channel of
    each of its images. A generator whose samples look alike gives small values that real
    batches never show, so D can see the collapse that no single image reveals. ``N`` must be a
    multiple of ``group_size`` (``TrainConfig.validate`` checks the batch).

    Inference (``training`` false: the exported ``score`` signature, ``/score``): the channel is
    the moving average of the training values, so that an image's score never depends on the
    other images of its batch.
    """

    def __init__(self, group_size: int, momentum: float = 0.99, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.group_size = group_size
        self.momentum = momentum

    def build(self, input_shape: Any) -> None:
        # "mean": replicas of a MirroredStrategy each update it from their own batch.
        self.moving_stddev = self.add_weight(
            shape=(), initializer="ones", trainable=False, name="moving_stddev",
            aggregation="mean", autocast=False,
        )  # fmt: skip

    def call(self, x: Any, training: bool | None = None) -> Any:
        shape = ops.shape(x)
        if training:
            h, w, c = x.shape[1], x.shape[2], x.shape[3]
            y = ops.reshape(ops.cast(x, "float32"), (self.group_size, -1, h, w, c))
            y = ops.sqrt(ops.var(y, axis=0) + 1e-8)  # [n, H, W, C]: over each group's images
            y = ops.mean(y, axis=(1, 2, 3))  # [n]
            self.moving_stddev.assign(
                self.momentum * self.moving_stddev + (1.0 - self.momentum) * ops.mean(y)
            )
            stat = ops.reshape(ops.tile(y, (self.group_size,)), (-1, 1, 1, 1))
        else:
            stat = ops.reshape(self.moving_stddev, (1, 1, 1, 1))
        channel = ops.broadcast_to(ops.cast(stat, x.dtype), (shape[0], shape[1], shape[2], 1))
        return ops.concatenate([x, channel], axis=-1)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*input_shape[:-1], input_shape[-1] + 1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "group_size": self.group_size, "momentum": self.momentum}


class LatentModulation(layers.Layer):
    """``[features [B, H, W, C], z [B, Z]] -> features * (1 + z A) + z B``.

    A per-image gain and bias of every channel, linear in z (``A``, ``B``: [Z, C]). Both start at
    zero, so a new generator computes what plain conditional batch norm computes and training
    decides how much z should reach this scale.
    """

    def build(self, input_shape: Any) -> None:
        channels, z_dim = int(input_shape[0][-1]), int(input_shape[1][-1])
        self.gain = self.add_weight(shape=(z_dim, channels), initializer="zeros", name="gain")
        self.bias = self.add_weight(shape=(z_dim, channels), initializer="zeros", name="bias")

    def call(self, inputs: list[Any]) -> Any:
        features, z = inputs
        z = ops.cast(z, features.dtype)
        gain = ops.matmul(z, ops.cast(self.gain, features.dtype))[:, None, None, :]
        bias = ops.matmul(z, ops.cast(self.bias, features.dtype))[:, None, None, :]
        return features * (1.0 + gain) + bias

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape[0]


class _ClassScores(layers.Layer):
    """Features [B, F] -> [B, K]: the features against every class embedding of the projection."""

    def __init__(self, projection: layers.Embedding, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.projection = projection  # shared, not copied: its embeddings are D's

    def call(self, features: Any) -> Any:
        return ops.matmul(features, ops.transpose(self.projection.embeddings))


class _IgnoreInput(layers.Layer):
    """Returns its first input unchanged; the second is an input the model accepts but ignores."""

    def call(self, inputs: list[Any]) -> Any:
        return inputs[0]


class _Projection(layers.Layer):
    """logit + <embedding(y), features>: the projection discriminator's class term."""

    def call(self, inputs: list[Any]) -> Any:
        logits, embedded, features = inputs
        return logits + ops.sum(embedded * features, axis=-1)
