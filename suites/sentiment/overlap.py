"""Overlap filter: drop extra texts that share a sentence with the evaluation texts.

SST-2 was built from the rt-polarity (MR) snippets, so extra training text taken from rt-polarity
(labelled or not) must not contain an SST-2 validation/test sentence, and must not be a piece of
one, or the evaluation figure is inflated. The two corpora are tokenised differently (SST: PTB
style, `do n't`, `it 's`, `-lrb-`; rt-polarity: `don't`, `it's`, `(`), so both sides are first
mapped to the same key (`overlap_key`): lowercase, accents removed, PTB brackets removed,
clitics re-attached (`do n't` -> `don't`), apostrophes dropped, then only the alphanumeric words
are kept, space-separated and space-padded, so containment is tested on whole words.

A text is dropped when its key contains the key of a protected sentence or is contained in one.
Very short texts (fewer than `min_words` words, e.g. SST's one-word sentence "bad .") would match
hundreds of unrelated snippets as a word, so for them only an exact key match counts (the same
practice as the decontamination of the shared rt-polarity copy, see its PROVENANCE.md).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

_CLITIC = re.compile(r"\s+(n't|'s|'re|'ve|'ll|'d|'m)\b")
_WORD = re.compile(r"[^\W_]+")


def overlap_key(text: str) -> str:
    """The comparison key of `text`: ' word word ... ' (lowercase alphanumeric words, padded)."""
    text = text.lower().replace("-lrb-", " ").replace("-rrb-", " ")
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = _CLITIC.sub(r"\1", text).replace("'", "").replace("`", "")
    return " " + " ".join(_WORD.findall(text)) + " "


class OverlapFilter:
    """Tests texts against a fixed set of protected sentences (e.g. SST-2 dev + test).

    Args:
        protected: the sentences no kept text may contain or be part of.
        min_words: texts and protected sentences with fewer words are matched exactly only.
    """

    def __init__(self, protected: Iterable[str], min_words: int = 3):
        if min_words < 1:
            raise ValueError(f"min_words must be >= 1, got {min_words}")
        self.min_words = min_words
        keys = {overlap_key(t) for t in protected}
        keys.discard("  ")  # a sentence without words protects nothing
        self._exact = keys
        self._long = [k for k in keys if _words(k) >= min_words]
        self._joined = "\n".join(self._long)  # one string: `key in joined` = part of some sentence

    def overlaps(self, text: str) -> bool:
        """True if `text` equals, contains or is contained in a protected sentence."""
        key = overlap_key(text)
        if key == "  ":
            return False
        if key in self._exact:
            return True
        if _words(key) >= self.min_words and key in self._joined:
            return True
        return any(protected in key for protected in self._long)

    def keep(self, texts: Sequence[str]) -> list[int]:
        """Indices of the texts that do not overlap, in order."""
        return [i for i, text in enumerate(texts) if not self.overlaps(text)]


def _words(key: str) -> int:
    return key.count(" ") - 1
