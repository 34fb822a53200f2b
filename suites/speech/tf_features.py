"""TensorFlow-native features that reproduce `features.compute_features` on padded batches.

librosa's window, mel filterbank and DCT are embedded as constants; framing is centred with zero
padding, so a zero-padded batch gives each utterance exactly the frames librosa gives it alone
(the first `1 + length // hop_length` frames). The per-utterance `top_db` floor uses the maximum
over those valid frames only. With `trim_db`, each utterance's frames are then cut to its
non-silent range (as `features.nonsilent_frames`) and shifted to the start of the row.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from suites.speech.config import FeatureConfig
from suites.speech.features import TRIM_AMIN, mel_filterbank, stft_window


class TFFeatureExtractor(tf.Module):
    """Waveforms `[batch, samples]` + lengths -> log-mel `[batch, frames, n_mels]` + frame lengths.

    Args:
        cfg: the feature config the model was trained with.
    """

    def __init__(self, cfg: FeatureConfig, name: str | None = None):
        super().__init__(name=name)
        self.cfg = cfg
        self._window = tf.constant(stft_window(cfg), tf.float32)
        self._mel = tf.constant(mel_filterbank(cfg).T.astype(np.float32))  # (bins, n_mels)

    def frame_lengths(self, waveform_length: tf.Tensor) -> tf.Tensor:
        """Valid frames per utterance: `1 + samples // hop_length`."""
        return 1 + tf.cast(waveform_length, tf.int32) // self.cfg.hop_length

    def __call__(self, waveform: tf.Tensor, waveform_length: tf.Tensor):
        cfg = self.cfg
        waveform = tf.convert_to_tensor(waveform, tf.float32)
        lengths = tf.cast(waveform_length, tf.int32)
        # Zero out anything past each length so padding never leaks into valid frames.
        valid = tf.sequence_mask(lengths, tf.shape(waveform)[1], dtype=tf.float32)
        if cfg.remove_dc:  # each row's mean over its own samples
            count = tf.cast(tf.maximum(lengths, 1), tf.float32)[:, None]
            waveform = waveform - tf.reduce_sum(waveform * valid, axis=1, keepdims=True) / count
        half = cfg.n_fft // 2
        padded = tf.pad(waveform * valid, [[0, 0], [half, half]])
        frames = tf.signal.frame(padded, cfg.n_fft, cfg.hop_length, pad_end=False)
        # 1 + samples // hop frames exist for the longest item; tf.signal.frame makes exactly that.
        spec = tf.signal.rfft(frames * self._window, fft_length=[cfg.n_fft])
        power = tf.math.square(tf.math.real(spec)) + tf.math.square(tf.math.imag(spec))
        mel = tf.tensordot(power, self._mel, axes=1)
        log_ref = 10.0 * np.log10(max(cfg.amin, cfg.ref))
        db = 10.0 / np.log(10.0) * tf.math.log(tf.maximum(mel, cfg.amin)) - log_ref
        frame_lengths = self.frame_lengths(lengths)
        frame_mask = tf.sequence_mask(frame_lengths, tf.shape(db)[1])
        if cfg.top_db is not None:
            masked = tf.where(frame_mask[:, :, None], db, tf.fill(tf.shape(db), -np.inf))
            peak = tf.reduce_max(masked, axis=[1, 2], keepdims=True)
            db = tf.maximum(db, peak - cfg.top_db)
        if cfg.trim_db is not None:
            db, frame_lengths, frame_mask = self._trim(frames, db, frame_mask)
        db = db * tf.cast(frame_mask, db.dtype)[:, :, None]
        return db, frame_lengths

    def _trim(self, frames: tf.Tensor, feats: tf.Tensor, frame_mask: tf.Tensor):
        """Cuts each row of `feats` to its non-silent frames (see `features.nonsilent_frames`)."""
        ms = tf.maximum(tf.reduce_mean(tf.square(frames), axis=-1), TRIM_AMIN)  # [B, T]
        level = tf.math.log(ms) - tf.math.log(
            tf.reduce_max(tf.where(frame_mask, ms, TRIM_AMIN), axis=1, keepdims=True)
        )
        loud = tf.logical_and(frame_mask, level > -self.cfg.trim_db * np.log(10.0) / 10.0)
        steps = tf.shape(feats)[1]
        any_loud = tf.reduce_any(loud, axis=1)
        start = tf.where(
            any_loud, tf.argmax(tf.cast(loud, tf.int32), axis=1, output_type=tf.int32), 0
        )
        last = steps - 1 - tf.argmax(tf.cast(loud[:, ::-1], tf.int32), axis=1, output_type=tf.int32)
        stop = tf.where(any_loud, last + 1, tf.reduce_sum(tf.cast(frame_mask, tf.int32), axis=1))
        index = tf.minimum(start[:, None] + tf.range(steps)[None, :], steps - 1)
        trimmed = tf.gather(feats, index, batch_dims=1)
        lengths = stop - start
        return trimmed, lengths, tf.sequence_mask(lengths, steps)
