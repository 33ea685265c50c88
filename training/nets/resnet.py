"""SNGAN-style ResNet generator and discriminator for 32, 64 and 128 pixels.

Miyato et al. (SNGAN, ICLR 2018) and Miyato & Koyama (projection discriminator, ICLR 2018), with
BigGAN's channel layouts per resolution (in :mod:`training.nets.layouts`):

- Generator: z -> dense 4x4 -> residual up-blocks (batch norm, ReLU, nearest 2x upsampling,
  3x3 convs, a learnt 1x1 shortcut) -> batch norm, ReLU, 3x3 conv, tanh. Class-conditional models
  use conditional batch norm: per-class gamma and beta from embeddings of the label.
- Discriminator: residual down-blocks of spectrally normalised convs (the first one "optimised",
  without a leading ReLU), ReLU, global sum pooling, a spectrally normalised linear output, plus
  for conditional models the projection term <embed(label), features>.

Usage (the same call signatures as the DCGAN factories in ``training.nets.dcgan``)::

    g = build_resnet_generator(resolution=32, channels=3, z_dim=128, num_classes=10, width=64)
    d = build_resnet_discriminator(resolution=32, channels=3, num_classes=10, width=64)
    images = g([z, labels])            # float32 [B, 32, 32, 3] in [-1, 1]
    logits = d([images, labels])       # float32 [B]

``num_classes=0`` builds unconditional networks (the labels input is then ignored). ``width`` is
the base channel count (64 gives BigGAN's CIFAR-10 networks, 256 channels per block); tests use 8.
Under mixed precision the output layers (G's last conv, D's linear and projection) run in float32.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

from training.nets.layouts import resnet_layout
from training.nets.spectral import SNConv2D, SNDense, SNEmbedding


def _check(
    resolution: int,
    channels: int,
    num_classes: int,
    width: int,
    channel_counts: tuple[int, ...] = (1, 3),
) -> None:
    resnet_layout(resolution)  # ValueError for a resolution without a layout
    if channels not in channel_counts:
        raise ValueError(
            f"channels must be {' or '.join(map(str, channel_counts))}, not {channels}"
        )
    if num_classes < 0:
        raise ValueError(f"num_classes must be 0 (unconditional) or more, not {num_classes}")
    if width < 1:
        raise ValueError(f"width must be positive, not {width}")


class ConditionalBatchNorm(layers.Layer):
    """Batch norm whose gamma and beta come from the class label (plain batch norm without classes).

    Statistics are synchronised across replicas, so a batch split over devices is normalised as
    the whole batch would be on one device.
    """

    def __init__(self, num_classes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        conditional = num_classes > 0
        # momentum 0.9 (PyTorch's 0.1): the moving statistics follow G closely enough for the
        # inference-mode generator that is exported.
        self.norm = layers.BatchNormalization(
            momentum=0.9, center=not conditional, scale=not conditional, synchronized=True
        )
        self.gamma: layers.Embedding | None = None
        self.beta: layers.Embedding | None = None

    def build(self, input_shape: Any) -> None:
        features_shape = input_shape[0]
        self.norm.build(features_shape)
        if self.num_classes > 0:
            units = int(features_shape[-1])
            self.gamma = layers.Embedding(self.num_classes, units, embeddings_initializer="ones")
            self.beta = layers.Embedding(self.num_classes, units, embeddings_initializer="zeros")
            self.gamma.build((None,))
            self.beta.build((None,))

    def call(self, inputs: list[Any], training: bool | None = None) -> Any:
        features, labels = inputs
        out = self.norm(features, training=training)
        if self.gamma is None or self.beta is None:
            return out
        gamma = ops.cast(self.gamma(labels), out.dtype)[:, None, None, :]
        beta = ops.cast(self.beta(labels), out.dtype)[:, None, None, :]
        return out * gamma + beta

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_classes": self.num_classes}


class GeneratorBlock(layers.Layer):
    """Pre-activation residual block that doubles the resolution."""

    def __init__(self, filters: int, num_classes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters = filters
        self.num_classes = num_classes
        self.bn1 = ConditionalBatchNorm(num_classes)
        self.bn2 = ConditionalBatchNorm(num_classes)
        self.up = layers.UpSampling2D(2, interpolation="nearest")
        self.conv1 = layers.Conv2D(filters, 3, padding="same")
        self.conv2 = layers.Conv2D(filters, 3, padding="same")
        self.shortcut = layers.Conv2D(filters, 1)

    def call(self, inputs: list[Any], training: bool | None = None) -> Any:
        x, labels = inputs
        h = ops.relu(self.bn1([x, labels], training=training))
        h = self.conv1(self.up(h))
        h = ops.relu(self.bn2([h, labels], training=training))
        h = self.conv2(h)
        return h + self.shortcut(self.up(x))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": self.filters, "num_classes": self.num_classes}


class DiscriminatorBlock(layers.Layer):
    """Residual block of spectrally normalised convs, optionally halving the resolution.

    The first block of D ("optimised") starts with a conv instead of a ReLU, since its input is
    the image, and downsamples its shortcut before the 1x1 conv (cheaper, same function).
    """

    def __init__(self, filters: int, downsample: bool, first: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters = filters
        self.downsample = downsample
        self.first = first
        self.conv1 = SNConv2D(filters, 3)
        self.conv2 = SNConv2D(filters, 3)
        self.pool = layers.AveragePooling2D(2)
        self.shortcut: SNConv2D | None = None

    def build(self, input_shape: Any) -> None:
        if self.first or self.downsample or int(input_shape[-1]) != self.filters:
            self.shortcut = SNConv2D(self.filters, 1, padding="valid")

    def call(self, x: Any, training: bool | None = None) -> Any:
        h = x if self.first else ops.relu(x)
        h = ops.relu(self.conv1(h, training=training))
        h = self.conv2(h, training=training)
        if self.downsample:
            h = self.pool(h)
        skip = x
        if self.first:
            skip = self.shortcut(self.pool(x), training=training)  # type: ignore[misc]
        elif self.shortcut is not None:
            skip = self.shortcut(x, training=training)
            if self.downsample:
                skip = self.pool(skip)
        return h + skip

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "downsample": self.downsample,
            "first": self.first,
        }


class ProjectionHead(layers.Layer):
    """ReLU, global sum pooling, a linear logit and the projection <embed(label), features>.

    Runs in float32 (give it ``dtype="float32"``) so that D's logits keep full precision under
    mixed precision; without classes the labels are ignored.
    """

    def __init__(self, num_classes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.linear = SNDense(1, dtype=self.dtype_policy, name="linear")
        self.embed: SNEmbedding | None = None

    def build(self, input_shape: Any) -> None:
        units = int(input_shape[0][-1])
        self.linear.build((None, units))
        if self.num_classes > 0:
            self.embed = SNEmbedding(self.num_classes, units, dtype=self.dtype_policy, name="embed")
            self.embed.build((None,))

    def call(self, inputs: list[Any], training: bool | None = None) -> Any:
        x, labels = inputs
        features = ops.sum(ops.relu(x), axis=(1, 2))  # [B, C]
        logits = self.linear(features, training=training)[:, 0]
        if self.embed is not None:
            embedded = self.embed(labels, training=training)
            logits = logits + ops.sum(embedded * features, axis=1)
        return logits

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_classes": self.num_classes}


def build_resnet_generator(
    resolution: int = 32,
    channels: int = 3,
    z_dim: int = 128,
    num_classes: int = 0,
    width: int = 64,
) -> keras.Model:
    """The ResNet generator: inputs [z float32 [B, z_dim], labels int32 [B]] -> tanh images."""
    _check(resolution, channels, num_classes, width)
    multipliers = resnet_layout(resolution).g_channels
    z = keras.Input((z_dim,), dtype="float32", name="z")
    labels = keras.Input((), dtype="int32", name="labels")
    start = multipliers[0] * width
    x = layers.Dense(4 * 4 * start, name="project")(z)
    x = layers.Reshape((4, 4, start))(x)
    for index, multiplier in enumerate(multipliers[1:]):
        x = GeneratorBlock(multiplier * width, num_classes, name=f"block{index}")([x, labels])
    x = ConditionalBatchNorm(num_classes, name="out_norm")([x, labels])
    x = layers.ReLU()(x)
    # float32 output layer: tanh saturation and the uint8 export are exact under mixed precision.
    x = layers.Conv2D(channels, 3, padding="same", dtype="float32", name="to_image")(x)
    images = layers.Activation("tanh", dtype="float32", name="images")(x)
    return keras.Model([z, labels], images, name=f"resnet_generator_{resolution}")


def build_resnet_discriminator(
    resolution: int = 32,
    channels: int = 3,
    num_classes: int = 0,
    width: int = 64,
) -> keras.Model:
    """The SN-ResNet projection discriminator: inputs [images in [-1, 1], labels] -> logits [B].

    ``channels``: the image's, plus one when D also takes the mask (partly observed data)."""
    _check(resolution, channels, num_classes, width, channel_counts=(1, 2, 3, 4))
    images = keras.Input((resolution, resolution, channels), dtype="float32", name="images")
    labels = keras.Input((), dtype="int32", name="labels")
    x = images
    layout = resnet_layout(resolution)
    blocks = zip(layout.d_channels, layout.d_down, strict=True)
    for index, (multiplier, down) in enumerate(blocks):
        x = DiscriminatorBlock(multiplier * width, down, first=index == 0, name=f"block{index}")(x)
    logits = ProjectionHead(num_classes, dtype="float32", name="head")([x, labels])
    return keras.Model([images, labels], logits, name=f"resnet_discriminator_{resolution}")
