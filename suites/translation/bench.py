"""Decoding speed of a translation export on this machine: sentences/s, greedy and beam.

    python -m suites.translation.bench --export-dir DIR --input-file sources.txt [--batch-size 32]

Each signature is warmed up on one batch first (graph tracing is not counted), then timed over
all inputs in batches of `--batch-size`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def bench(export_dir: Path, texts: list[str], batch_size: int) -> dict[str, float]:
    """Sentences per second of every signature of the export over `texts`."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 - registers the SentencePiece ops

    loaded = tf.saved_model.load(str(export_dir))
    results = {}
    for name in ("greedy", "serving_default"):
        fn = loaded.signatures[name]
        fn(text=tf.constant(texts[:batch_size]))  # warm-up
        started = time.perf_counter()
        for i in range(0, len(texts), batch_size):
            fn(text=tf.constant(texts[i : i + batch_size]))
        results[f"sentences_per_second_{name}"] = len(texts) / (time.perf_counter() - started)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export-dir", type=Path, required=True)
    parser.add_argument("--input-file", type=Path, required=True, help="one source per line")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=500, help="sentences to time")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from suites.translation.data import read_lines

    texts = [t for t in read_lines(args.input_file) if t.strip()][: args.limit]
    print(json.dumps(bench(args.export_dir, texts, args.batch_size), indent=2))


if __name__ == "__main__":
    main()
