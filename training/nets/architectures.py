"""The generator and discriminator of the architecture a training config names.

Usage::

    from training.nets.architectures import build_networks

    generator, discriminator = build_networks(config, num_classes=10)
    images = generator([z, labels])              # tanh images float32 [B, H, W, C]
    logits = discriminator([images, labels])     # float32 [B]

``dcgan`` networks are built by :mod:`training.nets.dcgan`, ``resnet`` ones by
:mod:`training.nets.resnet`; both families share this calling convention.
"""

from __future__ import annotations

import keras

from training.config import TrainConfig
from training.nets import resnet
from training.nets.dcgan import build_discriminator, build_generator


def build_networks(config: TrainConfig, num_classes: int = 0) -> tuple[keras.Model, keras.Model]:
    """The (generator, discriminator) pair for ``config.architecture``."""
    # D's input: the image, and its mask as a last channel when the run has one.
    d_channels = config.channels + int(config.mask_channel)
    if config.architecture == "dcgan":
        return (
            build_generator(config, num_classes=num_classes),
            build_discriminator(config, num_classes=num_classes, channels=d_channels),
        )
    if config.architecture == "resnet":
        return (
            resnet.build_resnet_generator(
                resolution=config.resolution,
                channels=config.channels,
                z_dim=config.z_dim,
                num_classes=num_classes,
                width=config.g_width,
            ),
            resnet.build_resnet_discriminator(
                resolution=config.resolution,
                channels=d_channels,
                num_classes=num_classes,
                width=config.d_width,
            ),
        )
    raise ValueError(f"unknown architecture {config.architecture!r}")
