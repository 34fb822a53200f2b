"""Word inputs (`data.tokens: word`): PTB words -> ids (+ lexicon features), pretrained vectors.

Raw text is split into lower-cased PTB words in the graph (`shared.data.word_features.ptb_words`,
the spelling of SST and of GloVe), so the export still takes raw strings. The vocabulary
(`shared.data.word_vocab.build_vocabulary`) is `<pad>`, `<unk>`, the training words seen at least
`data.vocabulary.min_count` times, then the `data.vocabulary.vector_words` most frequent words of
`model.pretrained_vectors`; it is written to the run's artifacts (`vocabulary.txt`, one word per
line, line i = id i) so evaluation and export rebuild the same encoder. With `model.lexicon`, each
word also gets two features: its polarity in [-1, 1] and a has-entry flag.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from shared.data.lexicon import VADER, read_lexicon
from shared.data.sources import resolve_under
from shared.data.vectors import read_vectors
from shared.data.word_features import WordEncoder, ptb_words_py
from shared.data.word_vocab import build_vocabulary, count_words, coverage, embedding_matrix
from shared.errors import ConfigError, DataError
from shared.files import atomic_write_text
from shared.log import get_logger
from suites.sentiment.config import DataConfig, ModelConfig

log = get_logger(__name__)

VOCABULARY_FILE = "vocabulary.txt"


def progress() -> bool:
    """Show progress bars unless the log is quiet (`--quiet`: warnings only)."""
    return log.isEnabledFor(logging.INFO)


def check_settings(data: DataConfig, model: ModelConfig) -> None:
    """ConfigError for word features on subword tokens; DataError for a missing vector or
    lexicon file."""
    if data.tokens == "word":
        if model.uses_vectors:
            vector_path(data, model)
        if model.uses_lexicon:
            lexicon_path(data, model)
        return
    for key, used in (("pretrained_vectors", model.uses_vectors), ("lexicon", model.uses_lexicon)):
        if used:
            raise ConfigError(f"model.{key}: needs data.tokens: word (got {data.tokens!r})")


def vector_path(data: DataConfig, model: ModelConfig) -> Path:
    """The file of `model.pretrained_vectors`, relative to `data.data_dir`; must exist."""
    path = resolve_under(model.pretrained_vectors.path, data.data_dir)
    if not path.is_file():
        raise DataError(
            f"model.pretrained_vectors.path: {path} not found (data.data_dir={data.data_dir!r})"
        )
    return path


def lexicon_path(data: DataConfig, model: ModelConfig) -> str | Path:
    """`"vader"` or the file of `model.lexicon.path` (relative to `data.data_dir`); must exist."""
    if model.lexicon.path == VADER:
        return VADER
    path = resolve_under(model.lexicon.path, data.data_dir)
    if not path.is_file():
        raise DataError(f"model.lexicon.path: {path} not found (data.data_dir={data.data_dir!r})")
    return path


def lexicon(data: DataConfig, model: ModelConfig) -> dict[str, float] | None:
    """The polarity lexicon of `model.lexicon` (None without one)."""
    if not model.uses_lexicon:
        return None
    return read_lexicon(lexicon_path(data, model), model.lexicon.scale)


@dataclass
class WordVocabulary:
    """The words by id and, with pretrained vectors, the initial embedding.

    Attributes:
        words: the vocabulary, id = index (`<pad>`, `<unk>`, ...).
        matrix: float32 `[len(words), dim]` initial embedding, or None without vectors.
        has_vector: bool `[len(words)]`, True for rows from the vector file (None without).
    """

    words: list[str]
    matrix: np.ndarray | None = None
    has_vector: np.ndarray | None = None


def build(
    train_texts: list[str],
    data: DataConfig,
    model: ModelConfig,
    seed: int,
    validation_texts: list[str] | None = None,
) -> WordVocabulary:
    """The vocabulary of the training texts (+ vector words) and its initial embedding.

    Logs the coverage of the training (and validation) words by the vectors and the vocabulary.
    """
    counts = count_words(ptb_words_py(train_texts))
    check = count_words(ptb_words_py(validation_texts)) if validation_texts else None
    v = data.vocabulary
    if not model.uses_vectors:
        words = build_vocabulary(counts, (), v.min_count)
        _log_coverage(counts, check, set(words), None)
        return WordVocabulary(words)
    wanted = set(counts) | (set(check) if check else set())
    vectors = read_vectors(
        vector_path(data, model),
        model.pretrained_vectors.format,
        words=wanted,
        limit=v.vector_words,
        progress=progress(),
    )
    extra = vectors.words[: v.vector_words]
    words = build_vocabulary(counts, extra, v.min_count)
    matrix, known = embedding_matrix(words, vectors, seed)
    _log_coverage(counts, check, set(words), vectors.index)
    log.info("vocabulary: %d words, %d with a pretrained vector", len(words), int(known.sum()))
    return WordVocabulary(words, matrix, known)


def _log_coverage(train: Counter, validation: Counter | None, vocabulary: set, vectors) -> None:
    for name, counts in (("train", train), ("validation", validation)):
        if not counts:
            continue
        if vectors is not None:
            log.info("%s words with a vector: %s", name, coverage(counts, vectors))
        log.info("%s words in the vocabulary: %s", name, coverage(counts, vocabulary))


def write_vocabulary(words: list[str], path: Path) -> None:
    """Writes one word per line (line i = id i)."""
    atomic_write_text(path, "".join(f"{w}\n" for w in words))


def read_vocabulary(path: Path) -> list[str]:
    """The words written by `write_vocabulary`."""
    return path.read_text(encoding="utf-8").split("\n")[:-1]


class WordInputs(tf.Module):
    """Raw texts -> model inputs: ids, or {"ids", "lexicon"} with a lexicon (graph constants).

    Args:
        vocabulary: the words by id.
        lexicon: word -> polarity in [-1, 1], or None.
        max_length: words kept per text (the head).
    """

    def __init__(self, vocabulary: list[str], lexicon: dict[str, float] | None, max_length: int):
        super().__init__(name="word_inputs")
        self.encoder = WordEncoder(vocabulary, lexicon)
        self.max_length = max_length

    def __call__(self, texts: tf.Tensor) -> tf.Tensor | dict[str, tf.Tensor]:
        """`tf.string [batch]` -> int32 ids `[batch, T]` (and float32 features `[batch, T, 2]`)."""
        ids, features = self.encoder.encode(texts, self.max_length)
        if features is None:
            return ids
        return {"ids": ids, "lexicon": features}
