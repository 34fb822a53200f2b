"""CTC decoding (blank = last class): greedy and beam search, to ids or to strings in-graph."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def ctc_decode(logits: tf.Tensor, lengths: tf.Tensor, beam_width: int = 0) -> tf.SparseTensor:
    """Decodes batch-major logits `[B, T, C]` (blank = C - 1) to a SparseTensor of label ids.

    Args:
        logits: unnormalised scores.
        lengths: valid time steps per example `[B]`.
        beam_width: 0 = greedy (best path, repeats merged, blanks dropped);
            >= 1 = `tf.nn.ctc_beam_search_decoder` with this width, best path only.
    """
    time_major = tf.transpose(tf.convert_to_tensor(logits, tf.float32), [1, 0, 2])
    lengths = tf.cast(lengths, tf.int32)
    if beam_width <= 0:
        decoded, _ = tf.nn.ctc_greedy_decoder(time_major, lengths, merge_repeated=True)
    else:
        decoded, _ = tf.nn.ctc_beam_search_decoder(
            time_major, lengths, beam_width=beam_width, top_paths=1
        )
    return decoded[0]


def sparse_to_lists(sparse: tf.SparseTensor, batch_size: int) -> list[list[int]]:
    """A decoded SparseTensor -> one Python list of ids per example."""
    out: list[list[int]] = [[] for _ in range(batch_size)]
    for (row, _), value in zip(sparse.indices.numpy(), sparse.values.numpy(), strict=True):
        out[row].append(int(value))
    return out


def ids_to_strings(sparse: tf.SparseTensor, alphabet: str, batch_size: tf.Tensor) -> tf.Tensor:
    """In-graph: decoded ids -> `tf.string [B]` using the characters of `alphabet`."""
    table = tf.constant(np.array(list(alphabet), dtype=object), tf.string)
    chars = tf.gather(table, tf.cast(sparse.values, tf.int32))
    ragged = tf.RaggedTensor.from_value_rowids(
        chars, tf.cast(sparse.indices[:, 0], tf.int64), nrows=tf.cast(batch_size, tf.int64)
    )
    return tf.strings.reduce_join(ragged, axis=1)


def lexicon_decode(logits, lengths, lexicon: list[list[int]]) -> tf.Tensor:
    """Closed-vocabulary decoding: the entry of `lexicon` with the highest CTC likelihood.

    Scores every (utterance, entry) pair with `tf.nn.ctc_loss` (blank = last class), i.e. exact
    word-level decoding for a small vocabulary such as the ten digits. Returns entry indices
    `int64 [B]` (graph-safe: used in the export too).
    """
    logits = tf.convert_to_tensor(logits, tf.float32)
    batch, k = tf.shape(logits)[0], len(lexicon)
    width = max(len(e) for e in lexicon)
    labels = np.zeros((k, width), np.int32)
    for i, entry in enumerate(lexicon):
        labels[i, : len(entry)] = entry
    tiled = tf.repeat(logits, k, axis=0)  # [B*K, T, C], utterance-major
    loss = tf.nn.ctc_loss(
        labels=tf.tile(tf.constant(labels), [batch, 1]),
        logits=tiled,
        label_length=tf.tile(tf.constant([len(e) for e in lexicon], tf.int32), [batch]),
        logit_length=tf.repeat(tf.cast(lengths, tf.int32), k),
        logits_time_major=False,
        blank_index=-1,
    )
    return tf.argmin(tf.reshape(loss, [batch, k]), axis=1)
