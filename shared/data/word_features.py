"""Raw text -> PTB-style words -> vocabulary ids and lexicon features, inside the TensorFlow graph.

Word vectors such as GloVe were trained on lower-cased Penn-Treebank-style tokens, and SST ships
its sentences in that form ("i did n't like it -lrb- at all -rrb- ."). `ptb_words` turns raw
text ("I didn't like it (at all).") and such already tokenised lines into the same words, with
`tf.strings` operations only, so a SavedModel built on it takes raw strings:

- lower-casing (UTF-8 aware); typographic quotes and apostrophes become ASCII;
- bracket tokens back to the characters the vectors use (`-lrb-` -> `(`, `-rsb-` -> `]`, ...) and
  SST's escapes (`\\/` -> `/`, `\\*` -> `*`);
- clitics split off (`didn't` -> `did n't`, `can't` -> `ca n't`, `it's` -> `it 's`,
  `cannot` -> `can not`), punctuation `, ; : ! ? ( ) [ ] { } $ % --` and `...` split off, `"` ->
  `''`;
- a period splits off the word before it unless it belongs to an abbreviation: letters with
  inner periods (`u.s.`, `e.t.`), a single letter (initials `j.`), a title (`mr.`, `dr.`, ...),
  or `no.` before a number.

`WordEncoder` maps the words to ids with a `tf.lookup.StaticHashTable` (words it does not know
-> the UNK id; id 0 pads) and, given a lexicon, to two features per word: its polarity (in
[-1, 1]) and a has-entry flag (1.0 when the lexicon has the word). The tables are graph
constants, so an export needs no extra files and grows with the vocabulary kept.

>>> vocabulary = ["<pad>", "<unk>", "i", "did", "n't", "like", "it"]
>>> encoder = WordEncoder(vocabulary, lexicon={"like": 0.375})
>>> ids, features = encoder.encode(tf.constant(["I didn't like it!"]), max_length=8)
>>> ids            # [[2, 3, 4, 5, 6, 1]]  ("!" is unknown here)
>>> features       # [1, 6, 2]: [polarity, has_entry] per word; ("like" -> [0.375, 1.0])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import tensorflow as tf

PAD_ID = 0
UNK_ID = 1
PAD = "<pad>"
UNK = "<unk>"

_HOLD = "\x01"  # marks a period that belongs to an abbreviation or a number while others split
_COMMA = "\x02"  # marks a comma inside a number (1,000)
_TITLES = (
    "mr|mrs|ms|dr|prof|st|jr|sr|vs|etc|al|inc|ltd|co|corp|bros|mt|gen|sen|rep|gov|lt|col"
    "|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)

# (pattern, replacement) in RE2 syntax, applied in order to lower-cased text.
_RULES = (
    (r"[\s\pZ]+", " "),
    ("[\u2018\u2019\u201b\u2032]", "'"),
    ("[\u201c\u201d\u201e\u2033]", '"'),
    ("[\u2013\u2014\u2015]", " -- "),
    ("\u2026", " ... "),
    (r"-lrb-", " ( "),
    (r"-rrb-", " ) "),
    (r"-lsb-", " [ "),
    (r"-rsb-", " ] "),
    (r"-lcb-", " { "),
    (r"-rcb-", " } "),
    (r"\\([/*])", r"\1"),
    (r"\bcannot\b", "can not"),
    (r"(\S)n't\b", r"\1 n't"),
    (r"(\S)'(s|re|ve|ll|d|m)\b", r"\1 '\2"),
    ('"', " '' "),
    (r"(\d),(\d)", "\\1" + _COMMA + "\\2"),
    (r"([,;:()\[\]{}$%]|[!?]+)", r" \1 "),
    (r"\.\.\.+", " " + _HOLD * 3 + " "),
    (r"--+", " -- "),
    # Periods of numbers and abbreviations are held back: 7.5, u.s., c.h.o., j., mr., "no. 5".
    (r"(\d)\.(\d)", "\\1" + _HOLD + "\\2"),
    (r"(\pL)\.(com|org|net)\b", "\\1" + _HOLD + "\\2"),
    (r"\b(\pL)\.(\pL)\.", "\\1" + _HOLD + "\\2" + _HOLD),
    (_HOLD + r"(\pL)\.", _HOLD + "\\1" + _HOLD),
    (_HOLD + r"(\pL)\.", _HOLD + "\\1" + _HOLD),
    (r"(^|\s)(\pL)\.", "\\1\\2" + _HOLD),
    (rf"(^|\s)({_TITLES})\.", "\\1\\2" + _HOLD),
    (r"(^|\s)no\.(\s*\d)", "\\1no" + _HOLD + "\\2"),
    (r"\.", " . "),
    (_HOLD, "."),
    (_COMMA, ","),
    (r" +", " "),
)


def ptb_words(texts: tf.Tensor) -> tf.RaggedTensor:
    """Splits a `tf.string` vector of raw or PTB-tokenised texts into lower-cased PTB words.

    Args:
        texts: `tf.string` `[batch]`.

    Returns:
        `tf.RaggedTensor` of `tf.string` `[batch, (words)]`; an empty text gives no words.
    """
    texts = tf.strings.lower(tf.convert_to_tensor(texts, tf.string), encoding="utf-8")
    for pattern, replacement in _RULES:
        texts = tf.strings.regex_replace(texts, pattern, replacement)
    return tf.strings.split(texts)


def ptb_words_py(texts: Sequence[str]) -> list[list[str]]:
    """`ptb_words` for Python strings (e.g. to count training words), in batches of 4096."""
    out: list[list[str]] = []
    for start in range(0, len(texts), 4096):
        batch = ptb_words(tf.constant(list(texts[start : start + 4096]), tf.string))
        out.extend([w.decode("utf-8") for w in row] for row in batch.to_list())
    return out


class WordEncoder(tf.Module):
    """Raw texts -> padded word ids (and lexicon features), as graph constants.

    Args:
        vocabulary: the words by id; `vocabulary[0]` is padding and `vocabulary[1]` the unknown
            word (as `shared.data.word_vocab.build_vocabulary` returns it).
        lexicon: word -> polarity in [-1, 1] (e.g. `shared.data.lexicon.read_lexicon`), or None.
        name: the module's name.
    """

    def __init__(
        self,
        vocabulary: Sequence[str],
        lexicon: Mapping[str, float] | None = None,
        name: str = "word_encoder",
    ):
        super().__init__(name=name)
        if len(vocabulary) < 2 or vocabulary[PAD_ID] != PAD or vocabulary[UNK_ID] != UNK:
            raise ValueError(f"vocabulary must start with {PAD!r}, {UNK!r}")
        if len(set(vocabulary)) != len(vocabulary):
            raise ValueError("vocabulary has duplicated words")
        self.vocabulary_size = len(vocabulary)
        self._ids = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(list(vocabulary[2:]), tf.string),
                tf.range(2, len(vocabulary), dtype=tf.int32),
            ),
            default_value=UNK_ID,
        )
        self.has_lexicon = bool(lexicon)
        if lexicon:
            words = sorted(lexicon)
            self._polarity = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(words, tf.string),
                    tf.constant([float(lexicon[w]) for w in words], tf.float32),
                ),
                default_value=float("nan"),
            )

    def words(self, texts: tf.Tensor, max_length: int) -> tf.RaggedTensor:
        """The PTB words of `texts`, at most `max_length` per text (the head is kept)."""
        return ptb_words(texts)[:, :max_length]

    def ids(self, words: tf.RaggedTensor) -> tf.Tensor:
        """int32 `[batch, max(1, longest)]` ids of ragged words, padded with 0."""
        ids = tf.ragged.map_flat_values(self._ids.lookup, words)
        return _dense(ids, 0)

    def lexicon_features(self, words: tf.RaggedTensor) -> tf.Tensor:
        """float32 `[batch, max(1, longest), 2]`: (polarity, has-entry) per word, 0 at padding."""
        if not self.has_lexicon:
            raise ValueError("this encoder was built without a lexicon")
        polarity = tf.ragged.map_flat_values(self._polarity.lookup, words)
        found = tf.ragged.map_flat_values(
            lambda p: tf.cast(~tf.math.is_nan(p), tf.float32), polarity
        )
        polarity = tf.ragged.map_flat_values(
            lambda p: tf.where(tf.math.is_nan(p), 0.0, p), polarity
        )
        return tf.stack([_dense(polarity, 0.0), _dense(found, 0.0)], axis=-1)

    def encode(self, texts: tf.Tensor, max_length: int) -> tuple[tf.Tensor, tf.Tensor | None]:
        """Raw texts -> (ids `[batch, T]`, lexicon features `[batch, T, 2]` or None)."""
        words = self.words(texts, max_length)
        features = self.lexicon_features(words) if self.has_lexicon else None
        return self.ids(words), features


def _dense(values: tf.RaggedTensor, pad) -> tf.Tensor:
    """A ragged `[batch, (n)]` tensor padded with `pad` to at least one column."""
    dense = values.to_tensor(default_value=pad)
    width = tf.maximum(tf.shape(dense)[1], 1)
    return tf.pad(dense, [[0, 0], [0, width - tf.shape(dense)[1]]], constant_values=pad)
