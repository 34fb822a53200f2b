"""Word-level vocabulary correction of CTC transcripts (a lexicon without a language model).

Each hypothesised word not in the vocabulary (the training transcripts' words) is replaced by the
nearest vocabulary word by Levenshtein distance (rapidfuzz), if that distance is at most
`max_ratio` of the word's length; ties go to the more frequent training word.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


class WordCorrector:
    """Snaps out-of-vocabulary words of a transcript to the closest vocabulary word.

    Args:
        transcripts: training transcripts whose words form the vocabulary.
        max_ratio: largest accepted edit distance as a fraction of the hypothesised word's length
            (at least one edit is always allowed).
    """

    def __init__(self, transcripts: Iterable[str], max_ratio: float = 0.34):
        if not 0.0 <= max_ratio <= 1.0:
            raise ValueError(f"max_ratio must be in [0, 1], got {max_ratio}")
        counts = Counter(w for t in transcripts for w in t.split())
        if not counts:
            raise ValueError("WordCorrector needs at least one vocabulary word")
        # Most frequent first: rapidfuzz keeps the first of equally distant choices.
        self.words = [w for w, _ in counts.most_common()]
        self.vocabulary = set(self.words)
        self.max_ratio = max_ratio
        self._cache: dict[str, str] = {}

    def word(self, word: str) -> str:
        """The correction of one word (itself if known or nothing is close enough)."""
        if word in self.vocabulary:
            return word
        if word not in self._cache:
            from rapidfuzz import process
            from rapidfuzz.distance import Levenshtein

            limit = max(1, int(self.max_ratio * len(word)))
            best = process.extractOne(word, self.words, scorer=Levenshtein.distance,
                                      score_cutoff=limit)  # fmt: skip
            self._cache[word] = best[0] if best is not None else word
        return self._cache[word]

    def __call__(self, text: str) -> str:
        return " ".join(self.word(w) for w in text.split())
