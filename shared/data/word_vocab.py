"""The word vocabulary of a model with pretrained vectors, its embedding matrix, and coverage.

Vocabulary policy (`build_vocabulary`): id 0 pads, id 1 is the unknown word (UNK), then every
training word seen at least `min_count` times (most frequent first), then the `vector_words` most
frequent words of the vector file not already in (vector files list the most frequent words first),
so a test word never seen in training still gets its pretrained vector. Words outside the
vocabulary map to UNK, whose vector is learned.

`embedding_matrix` gives row i = the file's vector of word i when the file has one; PAD's row is
zero; UNK and the vocabulary words without a vector get seeded random vectors with the per-
dimension mean and spread of the known vectors (Kim 2014), so they start on the same scale.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from shared.data.vectors import WordVectors
from shared.data.word_features import PAD, UNK


def count_words(texts: Iterable[Sequence[str]]) -> Counter[str]:
    """Word counts over tokenised texts."""
    counts: Counter[str] = Counter()
    for words in texts:
        counts.update(words)
    return counts


def build_vocabulary(
    train_counts: Counter[str],
    vector_words: Sequence[str] = (),
    min_count: int = 1,
) -> list[str]:
    """`[PAD, UNK]` + training words (count >= `min_count`, most frequent first) + `vector_words`.

    Args:
        train_counts: word counts of the training texts (`count_words`).
        vector_words: extra words in priority order, e.g. `WordVectors.words[:K]`.
        min_count: training words seen fewer times are left out (unless in `vector_words`).

    Returns:
        The words by id, without duplicates.
    """
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    ranked = sorted(train_counts.items(), key=lambda item: (-item[1], item[0]))
    vocabulary = [PAD, UNK]
    seen = set(vocabulary)
    for word in [w for w, n in ranked if n >= min_count] + list(vector_words):
        if word not in seen:
            seen.add(word)
            vocabulary.append(word)
    return vocabulary


def embedding_matrix(
    vocabulary: Sequence[str], vectors: WordVectors, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The `[len(vocabulary), dim]` float32 initial embedding and a has-vector mask per row.

    Known words get the file's vector exactly; PAD gets zeros; UNK and words without a vector get
    normal draws (seeded by `seed`) with the mean and standard deviation of the known vectors,
    dimension by dimension.
    """
    rows = np.array([vectors.index.get(w, -1) for w in vocabulary])
    known = rows >= 0
    known[0] = False
    if len(vectors) == 0:
        raise ValueError("no vectors to initialise the embedding from")
    mean = vectors.matrix.mean(axis=0)
    std = vectors.matrix.std(axis=0)
    rng = np.random.default_rng(seed)
    matrix = (mean + std * rng.standard_normal((len(vocabulary), vectors.dim))).astype(np.float32)
    matrix[known] = vectors.matrix[rows[known]]
    matrix[0] = 0.0
    return matrix, known


@dataclass(frozen=True)
class Coverage:
    """How much of some texts a vocabulary (or a vector file) covers."""

    types: int
    types_covered: int
    tokens: int
    tokens_covered: int

    @property
    def type_rate(self) -> float:
        return self.types_covered / max(self.types, 1)

    @property
    def token_rate(self) -> float:
        return self.tokens_covered / max(self.tokens, 1)

    def __str__(self) -> str:
        return (
            f"{self.type_rate:.1%} of {self.types} word types, "
            f"{self.token_rate:.1%} of {self.tokens} tokens"
        )


def coverage(counts: Counter[str], known: Iterable[str] | set[str]) -> Coverage:
    """The types and tokens of `counts` (`count_words`) that are in `known`."""
    known = known if isinstance(known, set | dict) else set(known)
    covered = [n for w, n in counts.items() if w in known]
    return Coverage(len(counts), len(covered), sum(counts.values()), sum(covered))
