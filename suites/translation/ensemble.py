"""Several translation models as one decoder: the mean of their next-token probabilities.

An ensemble (`lstm-suite evaluate|export translation --with-run ...`) decodes with every member
in lockstep: each step feeds the same previous token to all members and ranks the next token
by `log(mean_i p_i(token))`, as OpenNMT's and Marian's ensemble decoding do. It offers the
`encode`/`decode_step` pair of `Seq2SeqAttention`, so the greedy and beam decoders and the
export's `Translator` take it in place of one model, and the export stays one SavedModel.

The members must share their SentencePiece models (all read and emit the same token ids): runs
of one recipe over the same data train identical ones, and a run started from a copy of
another run's `artifacts/` reuses them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import tensorflow as tf


class Ensemble(tf.Module):
    """Members decoded in lockstep; their memories and states travel as one flat tuple.

    `encode` concatenates the members' encoder memories and attention keys along the feature
    axis and lists every member's decoder states in turn, so a decoder that repeats or gathers
    rows of them (beam search) needs to know nothing about the members; `decode_step` splits
    them again.

    Args:
        members: built `Seq2SeqAttention` models with the same source and target vocabularies.
    """

    def __init__(self, members: Sequence[keras.Model]):
        super().__init__(name="translation_ensemble")
        if not members:
            raise ValueError("an ensemble needs at least one model")
        vocabularies = {(m.source_vocab_size, m.target_vocab_size) for m in members}
        if len(vocabularies) > 1:
            raise ValueError(f"ensemble members have different vocabulary sizes: {vocabularies}")
        self.members = list(members)

    def encode(self, source, training: bool = False) -> tuple:
        """Padded source ids [B, S] -> (memory, keys, mask, states) of all members together."""
        encoded = [m.encode(source, training=training) for m in self.members]
        memory = tf.concat([e[0] for e in encoded], axis=-1)
        keys = tf.concat([e[1] for e in encoded], axis=-1)
        states = [s for e in encoded for s in e[3]]
        return memory, keys, encoded[0][2], states

    def _layout(self) -> list[tuple[int, int, int]]:
        """(memory width, key width, number of decoder states) of each member."""
        return [
            (m.decoder.attention.memory_dim, m.decoder.attention.key_dim, m.decoder.state_count)
            for m in self.members
        ]

    def decode_step(self, tokens, states, memory, keys, mask):
        """Previous tokens [B] -> (log of the mean probabilities [B, V], states, weights [B, S]).

        The returned scores are normalised log-probabilities, so the decoders' `log_softmax`
        leaves them unchanged.
        """
        layout = self._layout()
        memories = tf.split(memory, [w for w, _, _ in layout], axis=-1)
        all_keys = tf.split(keys, [w for _, w, _ in layout], axis=-1)
        log_probs, new_states, weights, at = [], [], [], 0
        for model, (_, _, count), mem, key in zip(
            self.members, layout, memories, all_keys, strict=True
        ):
            logits, member_states, w = model.decode_step(
                tokens, states[at : at + count], mem, key, mask
            )
            at += count
            log_probs.append(tf.nn.log_softmax(tf.cast(logits, tf.float32)))
            new_states.extend(member_states)
            weights.append(w)
        mean = tf.reduce_logsumexp(tf.stack(log_probs), axis=0) - math.log(len(self.members))
        return mean, new_states, tf.add_n(weights) / len(weights)
