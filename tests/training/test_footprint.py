"""The memory estimate of a training step: what it counts, how it grows, the batch it allows."""

from __future__ import annotations

import math

import keras
import pytest

from training import footprint
from training.config import TrainConfig
from training.nets.architectures import build_networks

# Layers whose outputs the estimate counts for the DCGAN (reshapes and the labels' pass-through
# layers make no new tensor; the logit head is a few floats per image).
COUNTED = (
    keras.layers.Dense,
    keras.layers.BatchNormalization,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.Conv2D,
    keras.layers.Conv2DTranspose,
)


def _layer_outputs(model: keras.Model) -> int:
    total = 0
    for layer in model.layers:
        counted = isinstance(layer, COUNTED) and layer.name != "logit"
        if counted or layer.name == "images":  # G's tanh, and D's input
            total += math.prod(layer.output.shape[1:])
    return total


@pytest.mark.parametrize("resolution", [64, 128])
def test_the_dcgan_estimate_counts_every_layer_output_of_both_networks(resolution: int):
    config = TrainConfig(resolution=resolution, channels=3, z_dim=8, g_width=4, d_width=2,
                         max_width=16)  # fmt: skip
    generator, discriminator = build_networks(config)
    expected = _layer_outputs(generator) + _layer_outputs(discriminator)
    assert footprint.activations_per_image(config) == expected
    augmented = footprint.activations_per_image(config.replace(augment="color,translation"))
    assert augmented == expected + footprint.AUGMENT_COPIES * resolution * resolution * 3


@pytest.mark.parametrize(
    ("architecture", "width"), [("dcgan", 16), ("resnet", 8)]
)  # fmt: skip
def test_memory_per_image_grows_with_the_resolution(architecture: str, width: int):
    base = TrainConfig(channels=3, architecture=architecture, g_width=width, d_width=width)
    sizes = [footprint.bytes_per_image(base.replace(resolution=r)) for r in (32, 64, 128)]
    assert sizes[0] < sizes[1] < sizes[2]


def test_the_largest_batch_is_a_multiple_of_8_that_fits_the_budget():
    mb = 10**6
    assert footprint.largest_batch(3 * mb, cap=64, budget=2000 * mb) == 64
    assert footprint.largest_batch(68 * mb, cap=64, budget=2000 * mb) == 24  # 29 fit
    assert footprint.largest_batch(900 * mb, cap=64, budget=2000 * mb) == 8  # the least
    assert footprint.largest_batch(68 * mb, cap=4, budget=2000 * mb) == 4  # a tiny data set's
