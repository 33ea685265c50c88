"""The uint8 mapping of generated images (seeds and grids: tests/gan_contract/)."""

import numpy as np

from training.sampling import to_uint8


def test_uint8_mapping_rounds_and_clips():
    values = np.array([-1.5, -1.0, 0.0, 0.5, 1.0, 2.0])
    assert to_uint8(values).tolist() == [0, 0, 128, 191, 255, 255]
