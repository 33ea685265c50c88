"""What the same (model version, seed, class, psi) promises: the same image within one grey level.

Usage::

    from gan_contract.reproducibility import MAX_PIXEL_DEVIATION, pixel_deviation

    if pixel_deviation(alone, batched) > MAX_PIXEL_DEVIATION:
        ...  # a real fault, not rounding

Why a tolerance and not identical bytes: a float32 network's output depends, in its last bits,
on how the kernels sum (vector width, blocking, the rows beside it in the batch, cuDNN's choice
of algorithm per shape). Those differences are about 1e-6 relative before the output is mapped
to 0..255, so they can move a pixel that lies near a rounding boundary to the next grey level,
but never further. Identical bytes hold only for the same machine, batch shape and row position.
"""

from __future__ import annotations

import numpy as np

#: The largest difference, in grey levels (0..255), between two renderings of the same image.
MAX_PIXEL_DEVIATION = 1


def pixel_deviation(a: np.ndarray, b: np.ndarray) -> int:
    """The largest absolute difference between two uint8 images (or batches) of one shape."""
    if a.shape != b.shape:
        raise ValueError(f"images of different shapes: {a.shape} and {b.shape}")
    if a.size == 0:
        return 0
    return int(np.max(np.abs(a.astype(np.int16) - b.astype(np.int16))))
