"""A character n-gram language model (interpolated Witten-Bell) for CTC shallow fusion.

Symbols are the characters of the alphabet plus an end-of-sentence symbol; every sentence is
preceded by `order - 1` begin symbols. With `c(h, x)` the count of `x` after history `h`,
`c(h)` their sum and `t(h)` the number of distinct `x` seen after `h`, the model is

    P(x | h) = (c(h, x) + t(h) P(x | h')) / (c(h) + t(h))     (h' = h without its oldest symbol)

down to a uniform distribution; an unseen history keeps the lower-order estimate (Witten & Bell
1991, interpolated as in Chen & Goodman 1998). N-gram counts are gathered with NumPy on integer
codes (base `len(alphabet) + 2`), so a few million characters of text take seconds.

    >>> lm = CharNgramLM(["ab", "abb"], "ab", order=2)
    >>> round(float(lm.sentence_logprob("ab")), 3) < round(float(lm.sentence_logprob("ba")), 3)
    True
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from shared.data.textfiles import read_pair_file_lines
from shared.log import get_logger

log = get_logger(__name__)


class CharNgramLM:
    """Character n-gram model over `alphabet` + end of sentence.

    Args:
        sentences: training text, one sentence per item, only characters of `alphabet`.
        alphabet: the output characters (as in `CharVocab`).
        order: n-gram order (history of `order - 1` characters), 1-12.

    Raises:
        ValueError: a bad order, no sentences, or a sentence with characters outside `alphabet`.
    """

    def __init__(self, sentences: Iterable[str], alphabet: str, order: int = 6):
        if not 1 <= order <= 12:  # base**order must fit int64 for alphabets up to ~30 symbols
            raise ValueError(f"order must be in [1, 12], got {order}")
        self.alphabet, self.order = alphabet, order
        self.size = len(alphabet) + 1  # predicted symbols: characters, then end of sentence
        self.base = len(alphabet) + 2  # codes: 0 = begin pad, 1..A = characters, A+1 = end
        if self.base**order >= 2**62:
            raise ValueError(f"order {order} is too high for an alphabet of {len(alphabet)}")
        self._ids = {c: i + 1 for i, c in enumerate(alphabet)}
        pad, parts = [0] * (order - 1), []
        for s in sentences:
            bad = set(s) - set(self._ids)
            if bad:
                raise ValueError(f"sentence {s!r} has characters outside the alphabet: {bad}")
            parts.append(pad + [self._ids[c] for c in s] + [self.size])
        if not parts:
            raise ValueError("CharNgramLM needs at least one sentence")
        seq = np.fromiter((x for p in parts for x in p), np.int64)
        targets = np.flatnonzero(seq > 0)  # every predicted position (characters and ends)
        self.counts: list[dict[int, int]] = [{}]  # counts[n]: code of (history, x) -> count
        self.contexts: list[dict[int, tuple[int, int]]] = [{}]  # n: history -> (c(h), t(h))
        key = np.zeros(targets.size, np.int64)
        for n in range(1, order + 1):
            # key of the n-gram ending at each target: symbols targets-n+1 .. targets
            key = key + seq[targets - n + 1] * self.base ** (n - 1)
            grams, freq = np.unique(key, return_counts=True)
            self.counts.append(dict(zip(grams.tolist(), freq.tolist(), strict=True)))
            hist, inverse = np.unique(grams // self.base, return_inverse=True)
            total = np.bincount(inverse, weights=freq).astype(np.int64)
            distinct = np.bincount(inverse)
            self.contexts.append(
                dict(zip(hist.tolist(), zip(total.tolist(), distinct.tolist()), strict=True))
            )
        self._cache: dict[tuple[int, ...], np.ndarray] = {}

    def _encode_history(self, text: str) -> tuple[int, ...]:
        ids = [self._ids[c] for c in text[len(text) - (self.order - 1) :]] if self.order > 1 else []
        return tuple([0] * (self.order - 1 - len(ids)) + ids)

    def _dist(self, hist: tuple[int, ...]) -> np.ndarray:
        """P(x | hist) for x = characters then end, as float64 `[size]`."""
        if hist in self._cache:
            return self._cache[hist]
        p = np.full(self.size, 1.0 / self.size)
        symbols = np.arange(1, self.size + 1, dtype=np.int64)
        for n in range(1, self.order + 1):
            h = 0
            for s in hist[len(hist) - (n - 1) :] if n > 1 else ():
                h = h * self.base + s
            total, distinct = self.contexts[n].get(h, (0, 0))
            if total == 0:  # an unseen history: no longer history is seen either
                break
            grams = self.counts[n]
            c = np.array([grams.get(g, 0) for g in (h * self.base + symbols).tolist()], float)
            p = (c + distinct * p) / (total + distinct)
        if len(self._cache) > 500_000:
            self._cache.clear()
        self._cache[hist] = p
        return p

    def log_probs(self, prefix: str) -> np.ndarray:
        """Natural-log probabilities of each next symbol after `prefix` (characters, then end)."""
        return np.log(self._dist(self._encode_history(prefix)))

    def sentence_logprob(self, text: str) -> float:
        """Natural-log probability of the whole sentence `text` (including its end)."""
        lp = sum(self.log_probs(text[:i])[self._ids[c] - 1] for i, c in enumerate(text))
        return float(lp + self.log_probs(text)[-1])


_SPACE = re.compile(r"[-\u2010-\u2015/_]+")  # hyphens, dashes, slashes: word boundaries
_DROP = re.compile(r"[.,!?;:\"()\[\]{}\u201c\u201d\u00ab\u00bb]+")  # punctuation not spoken


def normalize_sentence(text: str, alphabet: str) -> str | None:
    """Lower-cased text with punctuation removed, or None if other symbols remain (digits...)."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    text = " ".join(_DROP.sub("", _SPACE.sub(" ", text)).split())
    return text if text and set(text) <= set(alphabet) else None


def read_lm_texts(paths: Iterable[str | Path], alphabet: str) -> list[str]:
    """Distinct normalised sentences of text files: the first tab-separated column of each line.

    A `.zip` contributes its one pair file (`shared.data.textfiles.read_pair_file_lines`: e.g.
    a manythings.org/Tatoeba archive, English first; `_about.txt` ignored); `.gz` files are
    read decompressed. Lines that keep characters outside `alphabet` after `normalize_sentence`
    (digits, foreign letters) are dropped.

    Raises:
        FileNotFoundError: a path that does not exist (named).
        ValueError: a line that is not valid UTF-8 (file and line named).
    """
    out: dict[str, None] = {}
    for path in map(Path, paths):
        _, lines = read_pair_file_lines(path, "language-model text")
        kept = total = 0
        for line in lines:
            total += 1
            s = normalize_sentence(line.split("\t")[0], alphabet)
            if s:
                kept += 1
                out[s] = None
        log.info("LM text %s: kept %d of %d lines", path, kept, total)
    return list(out)
