"""Raw text -> padded SentencePiece ids, identically in the tf.data pipelines and in the export.

`encode` is the one function both paths call, so a served model sees exactly the ids it was
trained on. Steps: invalid UTF-8 bytes replaced by U+FFFD (a no-op on valid text), optional
normalisation (case folding + PTB-style splitting of punctuation and clitics, so raw input such
as "Don't (really)!" matches the lowercased, PTB-tokenized SST training text
"do n't -lrb- really -rrb- !"), SentencePiece, truncation to `max_length` tokens (the head is
kept), padding with id 0 to the longest row and to at least one column (an all-empty batch
still gives a valid `[batch, 1]` tensor; an empty row is fully masked).
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf
import tensorflow_text as tf_text

from shared.data.tokenizer import SentencePieceTokenizer, train_sentencepiece
from shared.log import get_logger
from suites.sentiment.config import DataConfig, Normalization

log = get_logger(__name__)

# (pattern, replacement) pairs in RE2 syntax, applied in order after case folding.
_PTB_RULES = (
    (r"(\S)n't\b", r"\1 n't"),  # don't -> do n't, can't -> ca n't
    (r"(\S)'(s|re|ve|ll|d|m)\b", r"\1 '\2"),  # it's -> it 's
    (r"\(", " -lrb- "),
    (r"\)", " -rrb- "),
    (r"\"", " '' "),  # PTB quotes are `` and ''; a raw " becomes ''
    (r"(\.\.\.|[.,!?;:])", r" \1 "),
    (r"\s+", " "),
)


def normalize(texts: tf.Tensor, rule: Normalization = "ptb") -> tf.Tensor:
    """Applies the normalisation `rule` to a `tf.string` tensor of any shape (idempotent)."""
    texts = tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace")
    if rule == "none":
        return texts
    if rule != "ptb":
        raise ValueError(f"normalization must be 'none' or 'ptb', got {rule!r}")
    texts = tf_text.case_fold_utf8(texts)
    for pattern, replacement in _PTB_RULES:
        texts = tf.strings.regex_replace(texts, pattern, replacement)
    return tf.strings.strip(texts)


def normalize_texts(texts: list[str], rule: Normalization = "ptb") -> list[str]:
    """`normalize` for Python strings (e.g. to train SentencePiece on what the graph will see)."""
    out: list[str] = []
    for start in range(0, len(texts), 4096):
        batch = normalize(tf.constant(texts[start : start + 4096], tf.string), rule)
        out.extend(t.decode("utf-8") for t in batch.numpy())
    return out


def encode(
    tokenizer: SentencePieceTokenizer,
    texts: tf.Tensor,
    max_length: int,
    normalization: Normalization = "ptb",
) -> tf.Tensor:
    """Raw strings `[batch]` -> int32 ids `[batch, time]`, 0-padded, `1 <= time <= max_length`."""
    ids = tokenizer.tokenize(normalize(texts, normalization))[:, :max_length]
    dense = ids.to_tensor(default_value=tokenizer.pad_id)
    missing = tf.maximum(1 - tf.shape(dense)[1], 0)
    return tf.pad(dense, [[0, 0], [0, missing]], constant_values=tokenizer.pad_id)


def train_tokenizer(texts: list[str], path: Path, config: DataConfig, seed: int) -> Path:
    """Trains the SentencePiece model of `config` on the normalised `texts`; writes `path`.

    The model case-folds (`nmt_nfkc_cf`), so any input case works.
    """
    log.info("training SentencePiece (%d texts, vocab %d)", len(texts), config.vocab_size)
    return train_sentencepiece(
        normalize_texts(texts, config.normalization),
        path,
        vocab_size=config.vocab_size,
        model_type=config.tokenizer_type,
        normalization_rule_name="nmt_nfkc_cf",
        hard_vocab_limit=False,
        seed=seed,
    )


class SubwordInputs(tf.Module):
    """Raw texts -> model inputs with SentencePiece (`encode`); the tokenizer is tracked, so a
    SavedModel holding this module carries its model.

    Args:
        tokenizer: the trained SentencePiece tokenizer.
        max_length: pieces kept per text.
        normalization: the normalisation rule.
    """

    def __init__(
        self, tokenizer: SentencePieceTokenizer, max_length: int, normalization: Normalization
    ):
        super().__init__(name="subword_inputs")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.normalization = normalization

    def __call__(self, texts: tf.Tensor) -> tf.Tensor:
        """`tf.string [batch]` -> int32 ids `[batch, time]`."""
        return encode(self.tokenizer, texts, self.max_length, self.normalization)
