"""Compiles librosa's numba functions that the speech code and tests call, into NUMBA_CACHE_DIR.

Run as a script by `tests/conftest.py` once per machine (under a file lock); each pytest worker
then starts from a copy of the filled cache instead of compiling the same functions itself
(~15 CPU-seconds per process on a cold cache).
"""

from __future__ import annotations

import numpy as np


def main() -> None:
    """Calls every librosa function with numba code on its path, on a short tone."""
    import librosa

    rate = 16000
    wave = np.sin(2 * np.pi * 220.0 * np.arange(rate // 2) / rate).astype(np.float32)
    librosa.resample(wave, orig_sr=rate, target_sr=8000, res_type="soxr_hq")
    librosa.effects.trim(wave)
    librosa.effects.pitch_shift(wave, sr=rate, n_steps=1.0)
    mel = librosa.feature.melspectrogram(y=wave, sr=rate)
    librosa.power_to_db(mel)
    librosa.feature.mfcc(y=wave, sr=rate)
    librosa.feature.rms(y=wave)
    librosa.pyin(wave, fmin=60, fmax=500, sr=rate)


if __name__ == "__main__":
    main()
