"""Acoustic features with librosa (log-mel or MFCC) and per-bin normalisation statistics.

Framing is librosa's: centred frames (`center=True`) with zero padding (`pad_mode="constant"`),
a periodic Hann window, power spectrum, Slaney mel filterbank, then
`power_to_db(ref, amin, top_db)` and, for MFCC, an orthonormal DCT-II. `tf_features.py` reproduces
exactly this in TensorFlow for the exported graph.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np


@dataclass
class FeatureConfig:
    """How waveforms become feature frames (every field is part of the cache key)."""

    kind: Literal["logmel", "mfcc"] = "logmel"  # log-mel filterbank energies or MFCCs on them
    sample_rate: int = 16000  # Hz; all audio is resampled to this rate
    n_fft: int = 400  # FFT size in samples (25 ms at 16 kHz)
    win_length: int | None = None  # Hann window length (<= n_fft); None = n_fft
    hop_length: int = 160  # frame shift in samples (10 ms at 16 kHz)
    n_mels: int = 80  # mel bands (Slaney scale and norm, librosa's default)
    fmin: float = 0.0  # lowest mel band edge in Hz
    fmax: float | None = None  # highest mel band edge in Hz; None = sample_rate / 2
    n_mfcc: int = 13  # MFCCs kept when kind == "mfcc"
    ref: float = 1.0  # power_to_db reference power
    amin: float = 1e-10  # power floor before the log
    top_db: float | None = 80.0  # per-utterance floor at (max - top_db) dB; None = no floor
    remove_dc: bool = False  # subtract each clip's mean sample value before framing (a DC
    # offset adds power to the lowest bands, which per-utterance CMN cannot remove)
    trim_db: float | None = None  # drop leading/trailing frames whose mean-square amplitude
    # (un-windowed n_fft frames: librosa.effects.trim's measure) is more than this many dB below
    # the utterance's loudest frame (energy VAD; also in the export); None = keep every frame

    def __post_init__(self):
        if self.kind not in ("logmel", "mfcc"):
            raise ValueError(f"features.kind must be 'logmel' or 'mfcc', got {self.kind!r}")
        for key in ("sample_rate", "n_fft", "hop_length", "n_mels"):
            if getattr(self, key) <= 0:
                raise ValueError(f"features.{key} must be positive, got {getattr(self, key)}")
        if self.win_length is not None and not 0 < self.win_length <= self.n_fft:
            raise ValueError(f"features.win_length must be in (0, n_fft], got {self.win_length}")
        if self.trim_db is not None and self.trim_db <= 0:
            raise ValueError(f"features.trim_db must be positive or null, got {self.trim_db}")
        if self.kind == "mfcc" and not 0 < self.n_mfcc <= self.n_mels:
            raise ValueError(f"features.n_mfcc must be in (0, n_mels], got {self.n_mfcc}")

    @property
    def dim(self) -> int:
        """Features per frame."""
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels

    def num_frames(self, num_samples: int) -> int:
        """Frames librosa makes from `num_samples` samples with centred framing (untrimmed)."""
        return 1 + num_samples // self.hop_length

    def key(self) -> str:
        """A short hash of this config, used to key feature caches."""
        fields = dataclasses.asdict(self)
        # (the keys of configs without these later options stay as they were)
        if fields["trim_db"] is None:
            del fields["trim_db"]
        if not fields["remove_dc"]:
            del fields["remove_dc"]
        blob = json.dumps(fields, sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:12]


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


def dct_matrix(cfg: FeatureConfig) -> np.ndarray:
    """Orthonormal DCT-II as used by `librosa.feature.mfcc`, shape `(n_mfcc, n_mels)`."""
    import scipy.fft

    return scipy.fft.dct(np.eye(cfg.n_mels), type=2, norm="ortho", axis=0)[: cfg.n_mfcc]


def compute_features(waveform: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """librosa features of a mono waveform at `cfg.sample_rate`, shape `(frames, cfg.dim)`."""
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
    if cfg.kind == "mfcc":
        feats = librosa.feature.mfcc(S=feats, n_mfcc=cfg.n_mfcc, dct_type=2, norm="ortho")
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
