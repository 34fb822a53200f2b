"""Raw text -> padded SentencePiece ids, identically in tf.data pipelines and in the export graph.

`encode` is the one function both paths call, so a served model sees exactly the ids it was
trained on. Steps: optional normalisation (case folding + PTB-style splitting of punctuation and
clitics, so raw input such as "Don't (really)!" matches the lowercased, PTB-tokenized SST training
text "do n't -lrb- really -rrb- !"), SentencePiece, truncation to `max_length` tokens (the head is
kept), padding with id 0 to the longest row and to at least one column (an all-empty batch still
gives a valid `[batch, 1]` tensor; the empty row is fully masked).
"""

from __future__ import annotations

from typing import Literal

import tensorflow as tf
import tensorflow_text as tf_text

from shared.data.pipeline import bucket_by_length, shuffle_and_bucket
from shared.data.tokenizer import SentencePieceTokenizer
from suites.sentiment.data import LabeledTexts

Normalization = Literal["none", "ptb"]

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


def make_dataset(
    data: LabeledTexts,
    tokenizer: SentencePieceTokenizer,
    batch_size: int,
    max_length: int,
    normalization: Normalization = "ptb",
    shuffle_seed: int | None = None,
    num_buckets: int = 0,
) -> tf.data.Dataset:
    """Batched `(ids, label)` pairs; shuffled each epoch with `shuffle_seed` unless it is None.

    With `num_buckets == 0` texts are batched first and tokenized per batch (the same `encode` as
    the export graph), so each batch is padded to its own longest text. With `num_buckets > 0`
    each text is encoded alone and texts of similar length are batched together
    (`shared.data.pipeline.bucket_by_length`, boundaries at length quantiles): less padding, so
    faster recurrent layers; the ids of each text are the same either way.
    """
    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.constant(data.texts, tf.string), tf.constant(data.labels, tf.int32))
    )
    if num_buckets > 0:

        def length(ids, label):
            return tf.shape(ids)[0]

        # Normalising + SentencePiece run once: the ids (and their length buckets) are cached,
        # only shuffling and batching are repeated each epoch.
        dataset = dataset.map(
            lambda text, label: (
                encode(tokenizer, text[tf.newaxis], max_length, normalization)[0],
                label,
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        if shuffle_seed is not None:
            dataset = shuffle_and_bucket(
                dataset, length, batch_size, shuffle_seed, len(data), num_buckets=num_buckets
            )
        else:
            dataset = bucket_by_length(dataset, length, batch_size, num_buckets=num_buckets)
    else:
        if shuffle_seed is not None:
            dataset = dataset.shuffle(len(data), seed=shuffle_seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size)
        dataset = dataset.map(
            lambda texts, labels: (encode(tokenizer, texts, max_length, normalization), labels),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return dataset.prefetch(tf.data.AUTOTUNE)
