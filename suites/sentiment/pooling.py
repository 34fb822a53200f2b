"""Mask-aware sequence pooling: `[batch, time, features]` (+ mask) -> `[batch, features]`.

A row whose mask is all False (an empty text) pools to zeros in both layers, never NaN.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="lstm_suite")
class MaskedGlobalMaxPooling1D(keras.layers.Layer):
    """Maximum over the valid time steps of each sequence.

    Keras' own `GlobalMaxPooling1D` ignores masks; this one excludes padded steps.

    >>> x = keras.ops.ones((2, 5, 3)); mask = keras.ops.arange(5) < 2
    >>> MaskedGlobalMaxPooling1D()(x, mask=keras.ops.stack([mask, mask])).shape
    (2, 3)
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.max(inputs, axis=1)
        valid = ops.expand_dims(ops.cast(mask, "bool"), -1)
        lowest = ops.full_like(inputs, -1e9 if inputs.dtype != "float16" else -6e4)
        pooled = ops.max(ops.where(valid, inputs, lowest), axis=1)
        any_valid = ops.any(valid, axis=1)
        return ops.where(any_valid, pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="lstm_suite")
class AttentionPooling1D(keras.layers.Layer):
    """Additive self-attention pooling (Yang et al. 2016): `sum_t softmax_t(v·tanh(W h_t + b)) h_t`.

    Args:
        units: width of the hidden scoring layer (`W` is `[features, units]`).
        kernel_initializer: initializer of `W` and `v`.

    Call arguments:
        inputs: `[batch, time, features]`.
        mask: optional boolean `[batch, time]`; padded steps get zero weight.
    """

    def __init__(self, units: int = 64, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units <= 0:
            raise ValueError(f"units must be a positive int, got {units!r}")
        self.units = units
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        features = input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel", shape=(features, self.units), initializer=self.kernel_initializer
        )
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self.context = self.add_weight(
            name="context", shape=(self.units, 1), initializer=self.kernel_initializer
        )

    def attention_weights(self, inputs, mask=None):
        """The pooling weights `[batch, time]` (zero on padding; all zero for an empty row)."""
        scores = ops.squeeze(
            ops.matmul(ops.tanh(ops.matmul(inputs, self.kernel) + self.bias), self.context), -1
        )
        scores = ops.cast(scores, "float32")
        if mask is None:
            return ops.softmax(scores, axis=-1)
        valid = ops.cast(mask, "bool")
        scores = ops.where(valid, scores, ops.full_like(scores, -1e9))
        weights = ops.softmax(scores, axis=-1) * ops.cast(valid, "float32")
        # Rows without any valid step: the softmax above is uniform over padding; zero it.
        return weights / ops.maximum(ops.sum(weights, axis=-1, keepdims=True), 1e-9)

    def call(self, inputs, mask=None):
        weights = ops.cast(self.attention_weights(inputs, mask), inputs.dtype)
        return ops.sum(inputs * ops.expand_dims(weights, -1), axis=1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
