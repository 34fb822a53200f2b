"""Real-time factor of a speech export on CPU: processing time / audio duration.

    python -m suites.speech.benchmark --export-dir DIR file.wav ... [--batch-size 1] [--repeats 3]

Audio is loaded and resampled first (not timed); the timed part is the SavedModel call (features,
acoustic model, decoding). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def real_time_factor(
    export_dir: str | Path, waves: list[np.ndarray], batch_size: int = 1, repeats: int = 3
) -> dict[str, float]:
    """Times `serving_default` over `waves` (mono, at the export's rate); best of `repeats`."""
    import tensorflow as tf

    from suites.speech.serving import pad_batch, read_sample_rate

    rate = read_sample_rate(export_dir)
    serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    batches = [pad_batch(waves[i : i + batch_size]) for i in range(0, len(waves), batch_size)]
    tensors = [(tf.constant(b), tf.constant(n)) for b, n in batches]
    serve(waveform=tensors[0][0], waveform_length=tensors[0][1])  # warm-up (tracing, threads)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for b, n in tensors:
            serve(waveform=b, waveform_length=n)["transcript"].numpy()
        best = min(best, time.perf_counter() - start)
    audio_seconds = sum(len(w) for w in waves) / rate
    return {
        "utterances": len(waves),
        "audio_seconds": audio_seconds,
        "processing_seconds": best,
        "rtf": best / audio_seconds,
        "batch_size": batch_size,
    }


def main(argv: list[str] | None = None) -> None:
    from suites.speech.audio import load_audio
    from suites.speech.serving import read_sample_rate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export-dir", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("wavs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    rate = read_sample_rate(args.export_dir)
    waves = [load_audio(p, rate) for p in args.wavs]
    print(json.dumps(real_time_factor(args.export_dir, waves, args.batch_size, args.repeats)))


if __name__ == "__main__":
    main()
