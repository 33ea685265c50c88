"""ResNet-SN networks: shapes and ranges, spectral norm, conditional BN, projection, precision."""

from __future__ import annotations

from collections.abc import Iterator

import keras
import numpy as np
import pytest
import tensorflow as tf

from training.nets.resnet import build_resnet_discriminator, build_resnet_generator
from training.nets.spectral import SNConv2D, SNDense

Z_DIM = 8


def _z(batch: int, seed: int = 0) -> tf.Tensor:
    return tf.constant(np.random.default_rng(seed).normal(size=(batch, Z_DIM)), tf.float32)


@pytest.fixture
def float16_policy() -> Iterator[None]:
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@pytest.mark.parametrize(("resolution", "channels"), [(32, 1), (32, 3), (64, 3), (128, 1)])
def test_shapes_dtypes_and_ranges(resolution: int, channels: int) -> None:
    g = build_resnet_generator(
        resolution=resolution, channels=channels, z_dim=Z_DIM, num_classes=3, width=2
    )
    d = build_resnet_discriminator(resolution=resolution, channels=channels, num_classes=3, width=2)
    labels = tf.constant([0, 2], tf.int32)
    images = g([_z(2), labels], training=False)
    assert images.shape == (2, resolution, resolution, channels)
    assert images.dtype == tf.float32
    assert np.all(np.abs(images.numpy()) <= 1.0)
    logits = d([images, labels], training=False)
    assert logits.shape == (2,)
    assert logits.dtype == tf.float32
    assert np.isfinite(logits.numpy()).all()


def test_unsupported_shapes_are_rejected_clearly() -> None:
    with pytest.raises(ValueError, match="resolutions 32, 64, 128, not 48"):
        build_resnet_generator(resolution=48, channels=3, z_dim=Z_DIM)
    with pytest.raises(ValueError, match="resolutions 32, 64, 128, not 28"):
        build_resnet_discriminator(resolution=28, channels=1)
    with pytest.raises(ValueError, match="channels must be 1 or 3, not 2"):
        build_resnet_generator(resolution=32, channels=2, z_dim=Z_DIM)
    # D's input may carry a mask channel beside the image (partly observed data), no more.
    with pytest.raises(ValueError, match="channels must be 1 or 2 or 3 or 4, not 5"):
        build_resnet_discriminator(resolution=32, channels=5)


@pytest.mark.parametrize("layer", [SNConv2D(6, 3), SNDense(5)])
def test_spectral_norm_bounds_the_largest_singular_value(layer: keras.layers.Layer) -> None:
    inputs = tf.ones([2, 8, 8, 4]) if isinstance(layer, SNConv2D) else tf.ones([2, 4])
    layer(inputs)
    # Make the raw kernel's norm far from 1, so the bound is the normalisation's doing.
    layer.kernel.assign(layer.kernel.numpy() * 50.0)
    raw = np.linalg.svd(layer.kernel.numpy().reshape(-1, layer.kernel.shape[-1]), compute_uv=False)
    assert raw[0] > 5
    u_before = layer.u.numpy().copy()
    layer(inputs, training=False)
    assert np.array_equal(layer.u.numpy(), u_before)  # inference never moves u
    for _ in range(30):  # power iterations, one per training call
        layer(inputs, training=True)
    assert not np.array_equal(layer.u.numpy(), u_before)
    kernel = layer.normalized_kernel().numpy().reshape(-1, layer.kernel.shape[-1])
    sigma = np.linalg.svd(kernel, compute_uv=False)
    assert sigma[0] == pytest.approx(1.0, abs=0.02)


def test_gradients_reach_the_spectrally_normalised_kernels() -> None:
    d = build_resnet_discriminator(resolution=32, channels=3, num_classes=4, width=2)
    images = tf.random.uniform([2, 32, 32, 3], -1, 1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(d([images, tf.constant([1, 3])], training=True))
    grads = tape.gradient(loss, d.trainable_variables)
    assert len(grads) == len(d.trainable_variables)
    assert all(g is not None and np.isfinite(g.numpy()).all() for g in grads)
    assert sum(float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads) >= len(grads) - 1


def _randomise_class_embeddings(model: keras.Model) -> int:
    rng = np.random.default_rng(3)
    changed = 0
    for variable in model.weights:
        if "embedding" in variable.path or "embed/" in variable.path:
            variable.assign(variable.numpy() + rng.normal(0, 0.5, variable.shape))
            changed += 1
    return changed


def test_conditional_batch_norm_makes_the_image_depend_on_the_label() -> None:
    g = build_resnet_generator(resolution=32, channels=1, z_dim=Z_DIM, num_classes=4, width=2)
    assert _randomise_class_embeddings(g) > 0
    z = tf.repeat(_z(1), 4, axis=0)
    images = g([z, tf.range(4)], training=False).numpy()
    for a in range(4):
        for b in range(a + 1, 4):
            assert np.abs(images[a] - images[b]).mean() > 1e-3
    # The same label and z give the same image.
    again = g([z, tf.range(4)], training=False).numpy()
    assert np.allclose(images, again)


def test_unconditional_networks_ignore_the_label() -> None:
    g = build_resnet_generator(resolution=32, channels=1, z_dim=Z_DIM, num_classes=0, width=2)
    d = build_resnet_discriminator(resolution=32, channels=1, num_classes=0, width=2)
    z = tf.repeat(_z(1), 2, axis=0)
    images = g([z, tf.constant([0, 7])], training=False).numpy()
    # The same z in two rows of one batch: vectorised kernels may treat rows 0 and 1 apart and
    # sum in another order (seen: 3.3e-7 on an AVX2 CPU), so equal up to float32 rounding over
    # the network's few hundred accumulated products, not bit for bit.
    np.testing.assert_allclose(images[0], images[1], rtol=0, atol=1e-5)
    logits = d([tf.constant(images), tf.constant([0, 7])], training=False).numpy()
    np.testing.assert_allclose(logits[0], logits[1], rtol=1e-4, atol=1e-5)


def test_projection_discriminator_depends_on_the_label() -> None:
    d = build_resnet_discriminator(resolution=32, channels=3, num_classes=5, width=2)
    images = tf.repeat(tf.random.uniform([1, 32, 32, 3], -1, 1), 5, axis=0)
    logits = d([images, tf.range(5)], training=False).numpy()
    assert len(np.unique(np.round(logits, 6))) == 5


def test_mixed_precision_keeps_outputs_and_kernels_float32(float16_policy: None) -> None:
    g = build_resnet_generator(resolution=32, channels=3, z_dim=Z_DIM, num_classes=2, width=2)
    d = build_resnet_discriminator(resolution=32, channels=3, num_classes=2, width=2)
    labels = tf.constant([0, 1])
    images = g([_z(2), labels], training=True)
    logits = d([images, labels], training=True)
    assert images.dtype == tf.float32
    assert logits.dtype == tf.float32
    assert np.isfinite(logits.numpy()).all()
    assert all(v.dtype == "float32" for v in g.weights + d.weights)
    block = d.get_layer("block1")
    assert block.conv1.compute_dtype == "float16"  # the bulk of the work runs in half precision


def test_build_networks_dispatches_resnet_with_the_config_widths() -> None:
    from training.config import TrainConfig
    from training.nets.architectures import build_networks

    config = TrainConfig(architecture="resnet", resolution=32, channels=3, z_dim=Z_DIM)
    g, d = build_networks(config.replace(g_width=2, d_width=3), num_classes=4)
    assert g.name == "resnet_generator_32" and d.name == "resnet_discriminator_32"
    assert g.get_layer("block0").filters == 8  # 4 x g_width
    assert d.get_layer("block0").filters == 12  # 4 x d_width at 32 px
