"""Log-mel features with librosa, energy trimming, and per-band normalisation statistics.

Framing is librosa's: centred frames (`center=True`) with zero padding (`pad_mode="constant"`),
a periodic Hann window, power spectrum, Slaney mel filterbank, then
`power_to_db(ref, amin, top_db)`. `tf_features.py` reproduces exactly this in TensorFlow for the
exported graph. (MFCCs, `features.kind: mfcc`, are taken from these frames inside the model.)
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from suites.speech.config import FeatureConfig


def mel_filterbank(cfg: FeatureConfig) -> np.ndarray:
    """librosa's mel filterbank, shape `(n_mels, 1 + n_fft // 2)`."""
    import librosa

    return librosa.filters.mel(
        sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax
    )


def stft_window(cfg: FeatureConfig) -> np.ndarray:
    """librosa's analysis window: periodic Hann of `win_length`, zero-padded to `n_fft`, centred."""
    import librosa

    win = librosa.filters.get_window("hann", cfg.win_length or cfg.n_fft, fftbins=True)
    return librosa.util.pad_center(win, size=cfg.n_fft).astype(np.float32)


def compute_features(waveform: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """librosa log-mel frames of a mono waveform at `cfg.sample_rate`, `(frames, cfg.n_mels)`."""
    import librosa

    waveform = np.asarray(waveform, np.float32)
    if cfg.remove_dc and waveform.size:
        waveform = waveform - waveform.mean(dtype=np.float64).astype(np.float32)
    mel = librosa.feature.melspectrogram(
        y=waveform, sr=cfg.sample_rate, n_fft=cfg.n_fft,
        hop_length=cfg.hop_length, win_length=cfg.win_length, window="hann", center=True,
        pad_mode="constant", power=2.0, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax,
    )  # fmt: skip
    feats = librosa.power_to_db(mel, ref=cfg.ref, amin=cfg.amin, top_db=cfg.top_db)
    if cfg.trim_db is not None:
        start, stop = nonsilent_frames(waveform, cfg)
        feats = feats[:, start:stop]
    return np.ascontiguousarray(feats.T, dtype=np.float32)


# The power floor of the trimming measure (librosa.power_to_db's default amin, as in its trim).
TRIM_AMIN = 1e-10


def nonsilent_frames(waveform: np.ndarray, cfg: FeatureConfig) -> tuple[int, int]:
    """Frame range `[start, stop)` kept by `cfg.trim_db` (all frames when nothing is louder).

    A frame's level is the mean square of its `n_fft` samples (centred, zero-padded framing, no
    window) in dB relative to the loudest frame; frames from the first to the last one above
    `-trim_db` are kept.
    """
    x = np.pad(np.asarray(waveform, np.float64), cfg.n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(x, cfg.n_fft)[:: cfg.hop_length]
    ms = np.maximum((frames**2).mean(axis=1), TRIM_AMIN)
    loud = np.flatnonzero(10 * np.log10(ms / ms.max()) > -cfg.trim_db)
    return int(loud[0]), int(loud[-1]) + 1


@dataclass
class FeatureStats:
    """Per-feature mean and standard deviation over all training frames."""

    mean: list[float]
    std: list[float]

    @classmethod
    def from_frames(cls, chunks, min_std: float = 1e-3) -> FeatureStats:
        """Accumulates statistics over an iterable of `(frames, dim)` arrays (float64 sums)."""
        count, total, total_sq = 0, None, None
        for chunk in chunks:
            x = np.asarray(chunk, np.float64)
            total = x.sum(0) if total is None else total + x.sum(0)
            total_sq = (x**2).sum(0) if total_sq is None else total_sq + (x**2).sum(0)
            count += x.shape[0]
        if not count:
            raise ValueError("cannot compute feature statistics from zero frames")
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
        return cls(mean=mean.tolist(), std=np.maximum(std, min_std).tolist())

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def load(cls, path: str | Path) -> FeatureStats:
        return cls(**json.loads(Path(path).read_text()))
