"""Small Keras layers of the acoustic model: masks, normalisation, frame stacking, augmentation."""

from __future__ import annotations

import math

import keras
import numpy as np
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
    """Per-utterance, per-feature normalisation over the valid frames (CMN, or CMVN with `scale`).

    `(frames [B, T, F], lengths [B])` -> frames minus the utterance's mean (divided by its standard
    deviation when `scale`); removes fixed channel/speaker offsets (and gains).

    Args:
        scale: also divide by the per-utterance standard deviation (variance normalisation).
        epsilon: added to the variance before the square root.
    """

    def __init__(self, scale: bool = False, epsilon: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        if epsilon <= 0:
            raise ValueError(f"epsilon must be positive, got {epsilon}")
        self.scale, self.epsilon = bool(scale), float(epsilon)

    def call(self, inputs):
        frames, lengths = inputs
        steps = ops.arange(ops.shape(frames)[1], dtype="int32")
        valid = ops.less(steps[None, :], ops.cast(lengths, "int32")[:, None])
        weights = ops.cast(valid, frames.dtype)[:, :, None]
        count = ops.maximum(ops.sum(weights, axis=1, keepdims=True), 1.0)
        mean = ops.sum(frames * weights, axis=1, keepdims=True) / count
        centred = frames - mean
        if not self.scale:
            return centred
        var = ops.sum(ops.square(centred) * weights, axis=1, keepdims=True) / count
        return centred / ops.sqrt(var + self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="lstm_suite")
class Cepstra(keras.layers.Layer):
    """The first `num_coefficients` orthonormal DCT-II coefficients of each frame (MFCC-style).

    `[B, T, F]` -> `[B, T, num_coefficients]`: on log-mel frames this gives MFCCs (as
    `librosa.feature.mfcc(dct_type=2, norm="ortho")`), smoothing away the fine spectral detail
    (pitch harmonics) that identifies a speaker.

    Args:
        num_coefficients: coefficients kept (1..F).
    """

    def __init__(self, num_coefficients: int = 13, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(num_coefficients, int) or num_coefficients < 1:
            raise ValueError(f"num_coefficients must be a positive int, got {num_coefficients!r}")
        self.num_coefficients = num_coefficients

    def build(self, input_shape):
        n = int(input_shape[-1])
        if self.num_coefficients > n:
            raise ValueError(f"num_coefficients={self.num_coefficients} exceeds {n} input features")
        k = np.arange(self.num_coefficients)[:, None]
        m = np.arange(n)[None, :]
        basis = np.cos(np.pi * k * (2 * m + 1) / (2 * n)) * np.sqrt(2.0 / n)
        basis[0] /= np.sqrt(2.0)
        self.basis = self.add_weight(
            name="dct_basis", shape=(n, self.num_coefficients), trainable=False,
            initializer=keras.initializers.Constant(basis.T.astype(np.float32)),
        )  # fmt: skip

    def call(self, inputs):
        return ops.matmul(inputs, ops.cast(self.basis, inputs.dtype))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.num_coefficients)

    def get_config(self):
        return {**super().get_config(), "num_coefficients": self.num_coefficients}


def _slaney_hz_to_mel(hz):
    """librosa's default (Slaney) mel scale in keras.ops: linear below 1 kHz, log above."""
    f_sp, min_log_hz, min_log_mel = 200.0 / 3, 1000.0, 15.0
    logstep = math.log(6.4) / 27.0
    log_part = min_log_mel + ops.log(ops.maximum(hz, min_log_hz) / min_log_hz) / logstep
    return ops.where(hz >= min_log_hz, log_part, hz / f_sp)


@keras.saving.register_keras_serializable(package="lstm_suite")
class VTLP(keras.layers.Layer):
    """Vocal tract length perturbation of log-mel frames (Jaitly & Hinton, 2013), training only.

    Each example draws a warp factor `alpha ~ U(min_factor, max_factor)`; the frequency axis is
    warped piecewise-linearly, `f -> alpha * f` up to `boundary * min(alpha, 1) / alpha` and a
    line from there to the Nyquist frequency (which stays fixed): the warped spectrum at `g` is
    the original at `warp^-1(g)`, read from the mel bands by linear interpolation in mel between
    band centres (clamped at the edges). Simulates speakers with other vocal tract lengths.

    Args:
        sample_rate, n_mels, fmin, fmax: the mel filterbank of the input (Slaney scale, as
            librosa's default); `fmax` None = sample_rate / 2.
        min_factor, max_factor: range of the warp factor (e.g. 0.9, 1.1).
        boundary: `F_hi` of the warp as a fraction of the Nyquist frequency.
        seed: seed of the layer's random stream.
    """

    def __init__(
        self,
        sample_rate: int,
        n_mels: int,
        fmin: float = 0.0,
        fmax: float | None = None,
        min_factor: float = 0.9,
        max_factor: float = 1.1,
        boundary: float = 0.8,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if n_mels < 2:
            raise ValueError(f"n_mels must be >= 2, got {n_mels}")
        if not 0.0 < min_factor <= max_factor:
            raise ValueError(f"need 0 < min_factor <= max_factor, got {min_factor}, {max_factor}")
        if not 0.0 < boundary < 1.0:
            raise ValueError(f"boundary must be in (0, 1), got {boundary}")
        self.sample_rate, self.n_mels = int(sample_rate), int(n_mels)
        self.fmin, self.fmax = float(fmin), None if fmax is None else float(fmax)
        self.min_factor, self.max_factor = float(min_factor), float(max_factor)
        self.boundary, self.seed = float(boundary), seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.nyquist = self.sample_rate / 2.0
        top = self.nyquist if self.fmax is None else self.fmax
        # Band centres are n_mels points equally spaced in mel strictly inside [fmin, top].
        self.mel_lo, self.mel_hi = _slaney_hz_to_mel_float(self.fmin), _slaney_hz_to_mel_float(top)
        step = (self.mel_hi - self.mel_lo) / (self.n_mels + 1)
        mels = [self.mel_lo + step * (k + 1) for k in range(self.n_mels)]
        self.centres_hz = [_slaney_mel_to_hz(m) for m in mels]

    def source_frequencies(self, alpha):
        """For warp factors `alpha [B]`: the original frequency (Hz) of every band centre [B, F]."""
        g = ops.convert_to_tensor(self.centres_hz, "float32")[None, :]
        alpha = ops.cast(alpha, "float32")[:, None]
        half = self.nyquist
        f_hi = self.boundary * half
        knee_out = f_hi * ops.minimum(alpha, 1.0)  # warp(knee_in): where the line starts
        knee_in = knee_out / alpha
        upper = half - (half - g) * (half - knee_in) / (half - knee_out)
        return ops.where(g <= knee_out, g / alpha, upper)

    def warp(self, inputs, alpha):
        """Warps `inputs [B, T, F]` (log-mel) with per-example factors `alpha [B]`."""
        src = _slaney_hz_to_mel(self.source_frequencies(alpha))
        pos = (src - self.mel_lo) / (self.mel_hi - self.mel_lo) * (self.n_mels + 1) - 1.0
        pos = ops.clip(pos, 0.0, float(self.n_mels - 1))
        lo = ops.minimum(ops.floor(pos), float(self.n_mels - 2))
        frac = ops.cast(pos - lo, inputs.dtype)[:, None, :]
        lo = ops.cast(lo, "int32")
        shape = ops.shape(inputs)
        idx_lo = ops.broadcast_to(lo[:, None, :], shape)
        left = ops.take_along_axis(inputs, idx_lo, axis=2)
        right = ops.take_along_axis(inputs, idx_lo + 1, axis=2)
        return left * (1.0 - frac) + right * frac

    def call(self, inputs, training=None):
        if not training or self.min_factor == self.max_factor == 1.0:
            return inputs
        alpha = keras.random.uniform(
            (ops.shape(inputs)[0],), self.min_factor, self.max_factor, seed=self.seed_generator
        )
        return self.warp(inputs, alpha)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "sample_rate": self.sample_rate,
            "n_mels": self.n_mels,
            "fmin": self.fmin,
            "fmax": self.fmax,
            "min_factor": self.min_factor,
            "max_factor": self.max_factor,
            "boundary": self.boundary,
            "seed": self.seed,
        }


def _slaney_hz_to_mel_float(hz: float) -> float:
    """The Slaney mel scale for a Python float."""
    if hz >= 1000.0:
        return 15.0 + math.log(hz / 1000.0) / (math.log(6.4) / 27.0)
    return hz * 3 / 200.0


def _slaney_mel_to_hz(mel: float) -> float:
    """Inverse of the Slaney mel scale for a Python float."""
    if mel >= 15.0:
        return 1000.0 * math.exp(math.log(6.4) / 27.0 * (mel - 15.0))
    return mel * 200.0 / 3


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
