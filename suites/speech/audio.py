"""Audio loading: any file soundfile reads, as mono float32 at a requested sample rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


class AudioError(ValueError):
    """An audio file that cannot be used: unreadable, corrupt, empty or silent. Names the file."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def resample(waveform: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Resamples a mono waveform with librosa (soxr high quality) unless the rates already match."""
    if orig_rate == target_rate or waveform.size == 0:
        return waveform.astype(np.float32, copy=False)
    import librosa

    out = librosa.resample(waveform, orig_sr=orig_rate, target_sr=target_rate, res_type="soxr_hq")
    return out.astype(np.float32, copy=False)


def to_mono(waveform: np.ndarray) -> np.ndarray:
    """Averages channels of a `(frames, channels)` array; passes a 1-D array through."""
    if waveform.ndim == 2:
        return waveform.mean(axis=1)
    if waveform.ndim != 1:
        raise ValueError(f"waveform must be 1-D or (frames, channels), got shape {waveform.shape}")
    return waveform


def load_audio(
    path: str | Path, sample_rate: int, min_samples: int = 1, silence_threshold: float = 0.0
) -> np.ndarray:
    """Reads an audio file as mono float32 in [-1, 1] at `sample_rate`.

    Args:
        path: a WAV, FLAC, OGG, ... file (whatever libsndfile reads).
        sample_rate: the rate to return; other rates are resampled.
        min_samples: clips shorter than this (after resampling) are rejected.
        silence_threshold: clips whose peak |amplitude| is <= this are rejected as silent
            (0.0 rejects only all-zero clips).

    Returns:
        A float32 array of shape `(samples,)`.

    Raises:
        AudioError: the file is missing, unreadable/corrupt, empty, too short or silent.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "file not found")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise AudioError(path, f"unreadable or corrupt audio ({err})") from err
    waveform = resample(to_mono(data), int(rate), sample_rate)
    check_waveform(waveform, path, min_samples, silence_threshold)
    return waveform


def check_waveform(
    waveform: np.ndarray, name: str | Path, min_samples: int = 1, silence_threshold: float = 0.0
) -> None:
    """Raises AudioError if `waveform` is shorter than `min_samples`, non-finite or silent.

    `min_samples=0` accepts an empty clip; a negative `silence_threshold` accepts silence.
    """
    if waveform.size == 0 and min_samples > 0:
        raise AudioError(name, "empty audio (0 samples)")
    if waveform.size < min_samples:
        raise AudioError(name, f"too short: {waveform.size} samples < {min_samples}")
    if not np.all(np.isfinite(waveform)):
        raise AudioError(name, "audio contains NaN or Inf samples")
    if waveform.size and float(np.max(np.abs(waveform))) <= silence_threshold:
        raise AudioError(name, f"silent clip (peak amplitude <= {silence_threshold})")
