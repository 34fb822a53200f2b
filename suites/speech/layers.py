"""Small Keras layers of the acoustic model: length masks, frame stacking, SpecAugment."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="lstm_suite")
class SequenceMask(keras.layers.Layer):
    """`(frames [B, T, ...], lengths [B])` -> boolean mask `[B, T]` of valid steps."""

    def call(self, inputs):
        frames, lengths = inputs
        steps = ops.arange(ops.shape(frames)[1], dtype="int32")
        return ops.less(steps[None, :], ops.cast(lengths, "int32")[:, None])

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0][:2])


@keras.saving.register_keras_serializable(package="lstm_suite")
class ZeroPadding(keras.layers.Layer):
    """`(frames [B, T, F], lengths [B])` -> frames with every step at or past its length zeroed.

    Keeps what the front end sees at the end of an utterance independent of batch padding.
    """

    def call(self, inputs):
        frames, lengths = inputs
        steps = ops.arange(ops.shape(frames)[1], dtype="int32")
        valid = ops.less(steps[None, :], ops.cast(lengths, "int32")[:, None])
        return ops.where(valid[:, :, None], frames, ops.zeros_like(frames))

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@keras.saving.register_keras_serializable(package="lstm_suite")
class UtteranceMeanNorm(keras.layers.Layer):
    """Subtracts each utterance's per-feature mean over its valid frames (cepstral mean norm).

    `(frames [B, T, F], lengths [B])` -> frames; removes fixed channel/speaker offsets.
    """

    def call(self, inputs):
        frames, lengths = inputs
        steps = ops.arange(ops.shape(frames)[1], dtype="int32")
        valid = ops.less(steps[None, :], ops.cast(lengths, "int32")[:, None])
        weights = ops.cast(valid, frames.dtype)[:, :, None]
        count = ops.maximum(ops.sum(weights, axis=1, keepdims=True), 1.0)
        mean = ops.sum(frames * weights, axis=1, keepdims=True) / count
        return frames - mean

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@keras.saving.register_keras_serializable(package="lstm_suite")
class FrameStack(keras.layers.Layer):
    """Stacks `stride` consecutive frames: `[B, T, F]` -> `[B, ceil(T / stride), stride * F]`.

    Also maps lengths: `(frames, lengths)` -> `(stacked, ceil(lengths / stride))`.

    Args:
        stride: frames per stacked frame (>= 1).
    """

    def __init__(self, stride: int = 3, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(stride, int) or stride < 1:
            raise ValueError(f"stride must be a positive int, got {stride!r}")
        self.stride = stride

    def call(self, inputs):
        frames, lengths = inputs
        k = self.stride
        t = ops.shape(frames)[1]
        pad = (k - t % k) % k
        frames = ops.pad(frames, [[0, 0], [0, pad], [0, 0]])
        dim = frames.shape[-1]
        stacked = ops.reshape(frames, (ops.shape(frames)[0], -1, k * dim))
        return stacked, ops.floor_divide(ops.cast(lengths, "int32") + (k - 1), k)

    def compute_output_shape(self, input_shape):
        (b, t, f), lengths_shape = input_shape
        t = None if t is None else -(-t // self.stride)
        return (b, t, f * self.stride), lengths_shape

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}


@keras.saving.register_keras_serializable(package="lstm_suite")
class SpecAugment(keras.layers.Layer):
    """SpecAugment time and frequency masks (Park et al., 2019), active only in training.

    Each example gets `freq_masks` bands of up to `freq_width` features and `time_masks` spans of
    up to `time_width` frames (at most `max_time_ratio` of its length) set to `fill` (0 = the
    mean after normalisation).

    Args:
        freq_masks: frequency masks per example.
        freq_width: maximum width of a frequency mask.
        time_masks: time masks per example.
        time_width: maximum width of a time mask in frames.
        max_time_ratio: upper bound on a time mask's width as a fraction of the length.
        fill: value written into masked cells.
        seed: seed of the layer's random stream.
    """

    def __init__(
        self,
        freq_masks: int = 2,
        freq_width: int = 15,
        time_masks: int = 2,
        time_width: int = 20,
        max_time_ratio: float = 0.2,
        fill: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name in ("freq_masks", "freq_width", "time_masks", "time_width"):
            value = locals()[name]
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, got {value!r}")
        if not 0.0 <= max_time_ratio <= 1.0:
            raise ValueError(f"max_time_ratio must be in [0, 1], got {max_time_ratio}")
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.time_masks, self.time_width = time_masks, time_width
        self.max_time_ratio, self.fill, self.seed = max_time_ratio, fill, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _band_mask(self, batch, size, count, max_width, extent=None):
        """[batch, size] boolean: `count` random bands of width <= max_width inside `extent`."""
        positions = ops.arange(size, dtype="float32")[None, None, :]
        max_width = ops.cast(max_width, "float32")
        shape = (batch, count, 1)
        width = ops.floor(keras.random.uniform(shape, seed=self.seed_generator) * (max_width + 1))
        extent = ops.cast(size if extent is None else extent, "float32")
        start_max = ops.maximum(extent - width, 0.0)
        start = ops.floor(keras.random.uniform(shape, seed=self.seed_generator) * start_max)
        inside = ops.logical_and(positions >= start, positions < start + width)
        return ops.any(inside, axis=1)

    def call(self, inputs, lengths=None, training=None):
        if not training or (self.freq_masks == 0 and self.time_masks == 0):
            return inputs
        batch, steps, dim = ops.shape(inputs)[0], ops.shape(inputs)[1], ops.shape(inputs)[2]
        masked = ops.zeros((batch, steps, dim), dtype="bool")
        if self.freq_masks:
            band = self._band_mask(batch, dim, self.freq_masks, self.freq_width)
            masked = ops.logical_or(masked, band[:, None, :])
        if self.time_masks:
            valid = ops.cast(steps if lengths is None else lengths, "float32")
            limit = ops.minimum(float(self.time_width), ops.floor(valid * self.max_time_ratio))
            limit = ops.reshape(ops.broadcast_to(limit, (batch,)), (batch, 1, 1))
            extent = ops.reshape(ops.broadcast_to(valid, (batch,)), (batch, 1, 1))
            span = self._band_mask(batch, steps, self.time_masks, limit, extent)
            masked = ops.logical_or(masked, span[:, :, None])
        return ops.where(masked, ops.cast(self.fill, inputs.dtype), inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "freq_masks": self.freq_masks,
            "freq_width": self.freq_width,
            "time_masks": self.time_masks,
            "time_width": self.time_width,
            "max_time_ratio": self.max_time_ratio,
            "fill": self.fill,
            "seed": self.seed,
        }
