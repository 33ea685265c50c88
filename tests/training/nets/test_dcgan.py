"""Network shapes, ranges, dtypes and conditioning for every supported resolution and channels."""

import keras
import numpy as np
import pytest

from training.config import TrainConfig
from training.nets.architectures import build_networks
from training.nets.dcgan import build_discriminator, build_generator

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


def test_minibatch_stddev_appends_each_groups_spread_and_tracks_it():
    from training.nets.dcgan import MinibatchStddev

    x = np.random.RandomState(0).randn(8, 4, 4, 3).astype("float32")
    layer = MinibatchStddev(4, momentum=0.9)
    out = np.asarray(layer(x, training=True))
    assert out.shape == (8, 4, 4, 4)
    np.testing.assert_array_equal(out[..., :3], x)
    # Image i is in group i % 2 (StyleGAN2-ADA's layout): the spread of images {0,2,4,6} and
    # {1,3,5,7}, each feature's standard deviation averaged over features and pixels.
    groups = x.reshape(4, 2, 4, 4, 3)
    spread = np.sqrt(groups.var(axis=0) + 1e-8).mean(axis=(1, 2, 3))
    # float32 means and square roots of 4-value groups, then a mean of 48: a few ulps (1e-7)
    # relative; 1e-5 leaves margin for any CPU's summation order.
    np.testing.assert_allclose(out[..., 3], np.broadcast_to(spread[np.arange(8) % 2, None, None],
                                                            (8, 4, 4)), rtol=1e-5)  # fmt: skip
    moving = 0.9 * 1.0 + 0.1 * spread.mean()
    np.testing.assert_allclose(float(layer.moving_stddev.numpy()), moving, rtol=1e-5)
    # At inference every image gets the moving average, whatever the batch holds.
    alone = np.asarray(layer(x[:1], training=False))
    np.testing.assert_allclose(alone[..., 3], moving, rtol=1e-5)
    assert float(layer.moving_stddev.numpy()) == pytest.approx(moving)  # inference leaves it


def test_a_discriminator_with_minibatch_stddev_scores_each_image_on_its_own():
    config = TrainConfig(resolution=16, channels=3, mbstd_group=4, **TINY)
    discriminator = build_discriminator(config, num_classes=3)
    images = np.random.RandomState(1).uniform(-1, 1, (8, 16, 16, 3)).astype("float32")
    labels = np.arange(8, dtype=np.int32) % 3
    # Training: a group's images change each other's logits (that is the point).
    together = np.asarray(discriminator([images, labels], training=True))
    varied = images.copy()
    varied[4] = 0.0  # another image in image 0's group (0 and 4: group 0 of two)
    changed = np.asarray(discriminator([varied, labels], training=True))
    assert abs(together[0] - changed[0]) > 1e-6
    # Inference: image 0 scored alone and beside others gets the same logit, up to float32
    # rounding of convolutions run at another batch size (a few ulps of sums of ~50 terms).
    batch = np.asarray(discriminator([images, labels], training=False))
    alone = np.asarray(discriminator([images[:1], labels[:1]], training=False))
    np.testing.assert_allclose(alone[0], batch[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(discriminator([varied, labels], training=False))[0], batch[0],
        rtol=1e-5, atol=1e-6,
    )  # fmt: skip


def test_minibatch_stddev_options_are_checked():
    from training.config import ConfigError

    with pytest.raises(ConfigError, match="mbstd_group must be 0 or divide the batch size 64"):
        TrainConfig(mbstd_group=3).validate()
    with pytest.raises(ConfigError, match="mbstd_group needs the DCGAN discriminator"):
        TrainConfig(mbstd_group=4, architecture="resnet").validate()
    TrainConfig(mbstd_group=4).validate()
