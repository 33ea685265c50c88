"""How much memory a training step needs per image, and the largest batch that fits a budget.

Usage::

    from training.footprint import STEP_BUDGET, bytes_per_image, largest_batch

    per_image = bytes_per_image(config)            # about 2.6 MB: 128x128 colour, DCGAN width 8
    batch = largest_batch(per_image, cap=64)       # 64: 64 images need 0.17 GB of the 2 GiB

The automatic recipe (:mod:`training.recipe`) reads it to choose a batch that fits; nothing here
imports TensorFlow.

The estimate: a training step keeps every layer's output, one float32 per element, for the
backward pass, once for G and once for D, plus :data:`AUGMENT_COPIES` image-sized tensors per
image when DiffAugment is on. Layer by layer, from the layouts of :mod:`training.nets.layouts`:

- DCGAN generator: per level, the (transposed) convolution, each normalisation's tensors (1, 2
  with the class's gain and bias, 3 with z's as well) and the ReLU; then the image and its tanh.
- DCGAN discriminator: the input, then per level the convolution and the LeakyReLU.
- ResNet blocks: every operation's output (normalisations, ReLUs, up-sampling, both convolutions,
  the shortcut, pooling, the sum).

Memory per image grows with the resolution: the channels halve per doubling, so every level's
feature maps hold about as many floats as the level before it, and one more level comes with
each doubling; the images themselves grow with its square. Checked against TensorFlow's
allocator (``benchmarks/step_memory.py``: the peak of a step at batch 8 and 32 on a CPU;
docs/recipe.md, "How the recipe scales"): the DCGAN used 0.97 to 1.27 times the estimate, the
ResNet 0.73 to 0.82 times.
"""

from __future__ import annotations

import itertools

from training.config import TrainConfig
from training.nets.layouts import base_size, dcgan_widths, num_upsamplings, resnet_layout

FLOAT_BYTES = 4
# What a step may hold in activations: with TensorFlow itself (about 0.6 GB) and a data set of
# a few thousand images it fits in 4 GB, a laptop's spare memory or a small GPU's.
STEP_BUDGET = 2 * 2**30
# Image-sized tensors DiffAugment adds per image: 4 measured at 128x128 (0.77 MB per image with
# color,translation against none).
AUGMENT_COPIES = 4
BATCH_MULTIPLE = 8  # batches are multiples of 8: replicas and mbstd groups of 2, 4 or 8 share them


def bytes_per_image(config: TrainConfig) -> int:
    """Estimated bytes a training step of ``config``'s networks holds per image of the batch."""
    return FLOAT_BYTES * activations_per_image(config)


def activations_per_image(config: TrainConfig) -> int:
    """Floats a training step keeps per image: G's and D's layer outputs, and augmentation's."""
    res, channels = config.resolution, config.channels
    d_channels = channels + int(config.mask_channel)
    if config.architecture == "resnet":
        total = _resnet_generator(res, channels, config.g_width)
        total += _resnet_discriminator(res, d_channels, config.d_width)
    else:
        norm = 1
        if config.conditional and config.g_conditioning != "concat":
            norm = 3 if config.g_conditioning == "batchnorm-z" else 2
        total = _dcgan_generator(res, channels, config.g_width, config.max_width, norm)
        total += _dcgan_discriminator(res, d_channels, config.d_width, config.max_width)
    if config.augment:
        total += AUGMENT_COPIES * res * res * d_channels
    return total


def largest_batch(
    per_image: int, cap: int, budget: int = STEP_BUDGET, multiple: int = BATCH_MULTIPLE
) -> int:
    """The largest multiple of ``multiple`` up to ``cap`` whose images fit ``budget`` bytes
    (``multiple`` when not even that many fit; ``cap`` when it is smaller)."""
    if cap <= multiple:
        return cap
    fits = budget // max(per_image, 1)
    return max(multiple, min(cap, fits // multiple * multiple))


def _dcgan_generator(res: int, channels: int, width: int, max_width: int, norm: int) -> int:
    count = num_upsamplings(res)
    sizes = [base_size(res) * 2**i for i in range(count)]
    # Per level: the convolution (or the dense projection), the normalisation, the ReLU.
    levels = sum(
        (2 + norm) * size * size * ch
        for size, ch in zip(sizes, dcgan_widths(width, max_width, count), strict=True)
    )
    return levels + 2 * res * res * channels  # the image, and its tanh


def _dcgan_discriminator(res: int, channels: int, width: int, max_width: int) -> int:
    count = num_upsamplings(res)
    sizes = [base_size(res) * 2**i for i in range(count)]  # the convolutions' outputs, coarse first
    levels = sum(
        2 * size * size * ch  # the convolution and the LeakyReLU
        for size, ch in zip(sizes, dcgan_widths(width, max_width, count), strict=True)
    )
    return res * res * channels + levels


def _resnet_generator(res: int, channels: int, width: int) -> int:
    multipliers = resnet_layout(res).g_channels
    total = 4 * 4 * multipliers[0] * width  # the dense projection to 4x4
    size = 4
    for c_in, c_out in itertools.pairwise(multipliers):
        c_in, c_out = c_in * width, c_out * width
        big = 4 * size * size  # after the 2x up-sampling
        # norm and ReLU at the input size; up-sampling of the main path and of the shortcut;
        # conv1, norm, ReLU, conv2, the shortcut's conv and the sum after it.
        total += 2 * size * size * c_in + 2 * big * c_in + 6 * big * c_out
        size *= 2
    last = multipliers[-1] * width
    return total + 2 * res * res * last + 2 * res * res * channels  # norm, ReLU; conv, tanh


def _resnet_discriminator(res: int, channels: int, width: int) -> int:
    layout = resnet_layout(res)
    total = res * res * channels  # the input
    size, c_in = res, channels
    for index, (multiplier, down) in enumerate(zip(layout.d_channels, layout.d_down, strict=True)):
        c_out = multiplier * width
        area = size * size
        out_area = area // 4 if down else area
        if index > 0:
            total += area * c_in  # the leading ReLU
        total += 3 * area * c_out  # conv1, its ReLU, conv2
        if down:
            total += out_area * c_out  # pooling the main path
        if index == 0:
            total += out_area * c_in + out_area * c_out  # the shortcut: pool, then conv
        elif down or c_in != c_out:
            total += area * c_out + (out_area * c_out if down else 0)  # conv, then pool
        total += out_area * c_out  # the sum
        size, c_in = (size // 2 if down else size), c_out
    return total + size * size * c_in  # the head's ReLU
