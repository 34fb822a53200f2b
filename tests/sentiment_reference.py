"""An independent reference for subword sentiment runs (shared by the sentiment test files)."""

from __future__ import annotations

import numpy as np
import sentencepiece

from suites.sentiment.text import normalize_texts


def reference_probabilities(run_dir, config, model, texts):
    """The checkpoint's probabilities on ids from `sentencepiece` itself (not the task's encode)."""
    processor = sentencepiece.SentencePieceProcessor(
        model_file=str(run_dir / "artifacts" / "sentencepiece.model")
    )
    normalised = normalize_texts(texts, config.data.normalization)
    rows = [processor.encode(t)[: config.data.max_length] for t in normalised]
    width = max([1, *map(len, rows)])
    ids = np.array([row + [0] * (width - len(row)) for row in rows], np.int32)
    return np.asarray(model(ids, training=False))
