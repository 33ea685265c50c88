"""Spectrally normalised layers (Miyato et al., "Spectral Normalization for GANs", ICLR 2018).

Each layer divides its kernel, reshaped to a matrix [fan_in, units], by an estimate of its largest
singular value, kept up to date by one power iteration per training call (the vector ``u`` is a
non-trainable weight). The division happens in the forward pass, so gradients flow through the
normalisation as in the paper (``keras.layers.SpectralNormalization`` instead overwrites the
kernel variable with its normalised value, which drops that gradient term and writes to a
trainable variable inside every replica's step).

Usage::

    from training.nets.spectral import SNConv2D, SNDense, SNEmbedding

    x = SNConv2D(128, 3)(images)                   # "same" padding, stride 1
    logits = SNDense(1, dtype="float32")(features)

The power iteration and the division run in float32 whatever the layer's dtype policy; only the
convolution or matrix product runs in the compute dtype (float16/bfloat16 under mixed precision).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


def _l2_normalize(x: Any) -> Any:
    return x / ops.sqrt(ops.sum(ops.square(x)) + 1e-12)


class _SpectralNorm(keras.layers.Layer):
    """Shared machinery: a float32 ``kernel`` and a power-iteration vector ``u``."""

    def _add_spectral_weights(self, shape: tuple[int, ...], initializer: Any) -> None:
        # autocast=False keeps the kernel float32 inside call(), so sigma is estimated in float32.
        self.kernel = self.add_weight(
            name="kernel", shape=shape, initializer=initializer, autocast=False
        )
        self.u = self.add_weight(
            name="sn_u",
            shape=(1, shape[-1]),
            initializer=keras.initializers.RandomNormal(stddev=1.0),
            trainable=False,
            autocast=False,
            # Every replica computes the same u from the same weights; averaging keeps them equal.
            aggregation="mean",
        )

    def normalized_kernel(self, training: bool = False) -> Any:
        """The kernel divided by its estimated spectral norm (float32).

        In training, one power iteration refines ``u`` and stores it; in inference the stored
        ``u`` is used as it is, so the exported model is deterministic.
        """
        kernel = ops.convert_to_tensor(self.kernel)
        matrix = ops.reshape(kernel, (-1, kernel.shape[-1]))  # [fan_in, units]
        u = ops.convert_to_tensor(self.u)
        if training:
            v = _l2_normalize(ops.matmul(u, ops.transpose(matrix)))
            u = _l2_normalize(ops.matmul(v, matrix))
            self.u.assign(u)
        u = ops.stop_gradient(u)
        v = ops.stop_gradient(_l2_normalize(ops.matmul(u, ops.transpose(matrix))))
        sigma = ops.sum(ops.matmul(v, matrix) * u)
        return kernel / sigma


class SNConv2D(_SpectralNorm):
    """A 2-D convolution with a spectrally normalised kernel (NHWC, bias, no activation)."""

    def __init__(
        self,
        filters: int,
        kernel_size: int,
        strides: int = 1,
        padding: str = "same",
        kernel_initializer: Any = "glorot_uniform",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.padding = padding
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        shape = (self.kernel_size, self.kernel_size, int(input_shape[-1]), self.filters)  # type: ignore[arg-type]
        self._add_spectral_weights(shape, self.kernel_initializer)
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        kernel = ops.cast(self.normalized_kernel(bool(training)), self.compute_dtype)
        outputs = ops.conv(inputs, kernel, strides=self.strides, padding=self.padding)
        return outputs + self.bias

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        batch, height, width = input_shape[0], input_shape[1], input_shape[2]
        if self.padding == "same" and height is not None and width is not None:
            height, width = -(-height // self.strides), -(-width // self.strides)
        elif height is not None and width is not None:
            height = (height - self.kernel_size) // self.strides + 1
            width = (width - self.kernel_size) // self.strides + 1
        return (batch, height, width, self.filters)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


class SNDense(_SpectralNorm):
    """A dense layer with a spectrally normalised kernel (bias, no activation)."""

    def __init__(self, units: int, use_bias: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.use_bias = use_bias

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self._add_spectral_weights((int(input_shape[-1]), self.units), "glorot_uniform")  # type: ignore[arg-type]
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        kernel = ops.cast(self.normalized_kernel(bool(training)), self.compute_dtype)
        outputs = ops.matmul(inputs, kernel)
        return outputs + self.bias if self.use_bias else outputs

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "use_bias": self.use_bias}


class SNEmbedding(_SpectralNorm):
    """A class embedding [num_classes, dim] with a spectrally normalised table (the projection)."""

    def __init__(self, num_classes: int, dim: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.dim = dim

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self._add_spectral_weights((self.num_classes, self.dim), "glorot_uniform")

    def call(self, labels: Any, training: bool | None = None) -> Any:
        table = ops.cast(self.normalized_kernel(bool(training)), self.compute_dtype)
        return ops.take(table, ops.cast(labels, "int32"), axis=0)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape, self.dim)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_classes": self.num_classes, "dim": self.dim}
