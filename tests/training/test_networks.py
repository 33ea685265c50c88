"""Network shapes, ranges, dtypes and conditioning for every supported resolution and channels."""

import keras
import numpy as np
import pytest

from training.config import TrainConfig
from training.networks import build_discriminator, build_generator, build_networks

TINY = {"g_width": 4, "d_width": 4, "max_width": 16, "z_dim": 8}


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("resolution", [16, 28, 32, 64, 128])
def test_shapes_and_ranges(resolution: int, channels: int):
    config = TrainConfig(resolution=resolution, channels=channels, **TINY)
    generator, discriminator = build_networks(config, num_classes=3)
    z = np.random.RandomState(0).randn(2, 8).astype("float32") * 3
    labels = np.array([0, 2], np.int32)
    images = np.asarray(generator([z, labels]))
    assert images.shape == (2, resolution, resolution, channels)
    assert images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0
    logits = np.asarray(discriminator([images, labels]))
    assert logits.shape == (2,) and logits.dtype == np.float32


def test_conditional_networks_use_labels_and_unconditional_ignore_them():
    config = TrainConfig(resolution=16, **TINY)
    z = np.ones((2, 8), np.float32)
    a, b = np.array([0, 0], np.int32), np.array([1, 1], np.int32)
    conditional = build_generator(config, num_classes=2)
    assert not np.allclose(conditional([z, a]), conditional([z, b]))
    plain = build_generator(config)
    # Same rows, same shape: equal up to float32 rounding (kernels need not be bit-reproducible).
    np.testing.assert_allclose(plain([z, a]), plain([z, b]), rtol=1e-5, atol=1e-6)
    x = np.asarray(plain([z, a]))
    d_conditional = build_discriminator(config, num_classes=2)
    assert not np.allclose(d_conditional([x, a]), d_conditional([x, b]))
    d_plain = build_discriminator(config)
    np.testing.assert_allclose(d_plain([x, a]), d_plain([x, b]), rtol=1e-5, atol=1e-6)


def test_outputs_stay_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        generator, discriminator = build_networks(TrainConfig(resolution=16, **TINY), 2)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    labels = keras.ops.zeros((2,), "int32")
    images = generator([keras.ops.zeros((2, 8)), labels])
    assert images.dtype == "float32"
    assert discriminator([images, labels]).dtype == "float32"


def test_unsupported_resolution_is_an_error():
    with pytest.raises(ValueError, match="unsupported resolution"):
        build_generator(TrainConfig(**TINY), resolution=48)
