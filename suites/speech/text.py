"""The character vocabulary: transcript normalisation, encoding and decoding (CTC blank last)."""

from __future__ import annotations

import re

DEFAULT_ALPHABET = " 'abcdefghijklmnopqrstuvwxyz"  # space, apostrophe, a-z


class CharVocab:
    """Characters of `alphabet` get ids 0..len-1; the CTC blank is id `len(alphabet)`.

    Args:
        alphabet: the characters, each once (no blank; the blank is added after them).
        lowercase: lower-case transcripts before checking them against the alphabet.

    >>> v = CharVocab("ab ")
    >>> v.encode("ba a"), v.decode([1, 0, 2, 0]), v.blank_id
    ([1, 0, 2, 0], 'ab a', 3)
    """

    def __init__(self, alphabet: str = DEFAULT_ALPHABET, lowercase: bool = True):
        if not alphabet:
            raise ValueError("alphabet must not be empty")
        if len(set(alphabet)) != len(alphabet):
            raise ValueError(f"alphabet has repeated characters: {alphabet!r}")
        self.alphabet = alphabet
        self.lowercase = lowercase
        self._ids = {c: i for i, c in enumerate(alphabet)}

    @property
    def blank_id(self) -> int:
        return len(self.alphabet)

    @property
    def num_classes(self) -> int:
        """Output classes of the acoustic model: characters + blank."""
        return len(self.alphabet) + 1

    def normalize(self, text: str) -> str:
        """Lower-cases (if configured), collapses runs of whitespace and strips the ends."""
        text = re.sub(r"\s+", " ", text).strip()
        return text.lower() if self.lowercase else text

    def unknown_chars(self, text: str) -> str:
        """Characters of the (normalised) `text` outside the alphabet, sorted, each once."""
        return "".join(sorted(set(text) - set(self._ids)))

    def encode(self, text: str) -> list[int]:
        """Ids of a normalised transcript; raises ValueError on characters outside the alphabet."""
        bad = self.unknown_chars(text)
        if bad:
            raise ValueError(f"characters {bad!r} of {text!r} are not in the alphabet")
        return [self._ids[c] for c in text]

    def decode(self, ids) -> str:
        """Text of label ids (blank and out-of-range ids are dropped)."""
        n = len(self.alphabet)
        return "".join(self.alphabet[i] for i in ids if 0 <= i < n)
