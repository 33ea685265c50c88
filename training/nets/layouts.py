"""The networks' layouts: how many levels each family has and how many channels each level gets.

Usage::

    from training.nets.layouts import dcgan_widths, num_upsamplings, resnet_layout

    num_upsamplings(128)                  # 5: 4 -> 8 -> 16 -> 32 -> 64 -> 128
    dcgan_widths(8, 512, 5)               # [128, 64, 32, 16, 8]: from 4x4 to the finest level
    resnet_layout(128).g_channels         # (16, 16, 8, 4, 2, 1): multiples of the base width

Pure Python (no TensorFlow), so that the recipe (:mod:`training.recipe`) and the memory estimate
(:mod:`training.footprint`) read the same numbers the factories in :mod:`training.nets.dcgan`
and :mod:`training.nets.resnet` build from.

Both families add one level per doubling of the resolution, and their channels halve from level
to level toward the image (the DCGAN from ``width`` at the finest level doubling toward 4x4 up to
a cap; the ResNet by BigGAN's multipliers at 64 and 128), as StyleGAN2-ADA's networks do
(``min(channel_base / resolution, channel_max)`` channels at each resolution).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RESNET_RESOLUTIONS = (32, 64, 128)
# The encoder's default size (:mod:`training.encoder`, ``gan-export --encoder-width/--encoder-
# hidden``): the first convolution's channels (doubling per level, at most 256) and the dense
# layer's units in each branch.
ENCODER_WIDTH = 16
ENCODER_HIDDEN = 256


def base_size(resolution: int) -> int:
    """The smallest feature map: 7 for 28x28 (MNIST), else 4."""
    return 7 if resolution == 28 else 4


def num_upsamplings(resolution: int) -> int:
    """How many 2x up/down-samplings separate ``resolution`` from its base size."""
    ratio = resolution // base_size(resolution)
    steps = round(math.log2(ratio))
    if base_size(resolution) * 2**steps != resolution or steps < 2:
        raise ValueError(f"unsupported resolution {resolution}: expected 16, 28, 32, 64 or 128")
    return steps


def dcgan_widths(width: int, max_width: int, count: int) -> list[int]:
    """The DCGAN's channels from the coarsest level to the finest: ``width`` at the finest,
    doubling toward the coarse end up to ``max_width``."""
    return [min(width * 2 ** (count - 1 - i), max_width) for i in range(count)]


@dataclass(frozen=True)
class ResNetLayout:
    """BigGAN's channel multipliers of the base width for one resolution.

    ``g_channels``: the 4x4 start, then each up-block's output; ``d_channels``: each down-block's
    output, and ``d_down`` whether that block halves the resolution.
    """

    g_channels: tuple[int, ...]
    d_channels: tuple[int, ...]
    d_down: tuple[bool, ...]


_RESNET = {
    32: ResNetLayout((4, 4, 4, 4), (4, 4, 4, 4), (True, True, False, False)),
    64: ResNetLayout((16, 16, 8, 4, 2), (1, 2, 4, 8, 16), (True, True, True, True, False)),
    128: ResNetLayout(
        (16, 16, 8, 4, 2, 1), (1, 2, 4, 8, 16, 16), (True, True, True, True, True, False)
    ),
}


def resnet_layout(resolution: int) -> ResNetLayout:
    """The ResNet's layout at ``resolution`` (32, 64 or 128); ValueError for any other."""
    if resolution not in _RESNET:
        raise ValueError(
            f"the ResNet networks support resolutions "
            f"{', '.join(map(str, RESNET_RESOLUTIONS))}, not {resolution}"
        )
    return _RESNET[resolution]
