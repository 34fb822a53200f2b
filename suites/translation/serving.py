"""The translation export: `serving_default(text) -> {translation, score}` on raw strings.

Tokenization (SentencePiece, as graph ops), decoding and detokenization all run inside the
graph, so the export needs nothing but `import tensorflow_text` before `tf.saved_model.load`.
`serving_default` decodes with beam search, `greedy` greedily. Surrounding whitespace is
stripped; an input that is empty (or only whitespace) gets an empty translation with score 0,
and an empty batch an empty result. The SentencePiece model protos are graph constants.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from shared.data.tokenizer import SentencePieceTokenizer
from shared.serving import ServingModule
from suites.translation.decoding import beam_search, greedy_decode

TEXT = tf.TensorSpec([None], tf.string, name="text")


def encode_source(tokenizer: SentencePieceTokenizer, text: tf.Tensor) -> tf.Tensor:
    """Raw source strings [B] -> padded ids [B, S] ending in eos (as in training)."""
    ids = tokenizer.tokenize(tf.strings.strip(text), add_eos=True)
    return ids.to_tensor(default_value=tokenizer.pad_id)


class Translator(ServingModule):
    """Tokenizers + model + decoders behind `tf.string [None]` signatures.

    Args:
        model: the trained `Seq2SeqAttention`.
        source_tokenizer: SentencePiece tokenizer of the source side.
        target_tokenizer: SentencePiece tokenizer of the target side (may be the same object).
        beam_size: beams of `serving_default` (1 = greedy).
        length_penalty: GNMT length-penalty exponent of beam search.
        max_length_ratio, max_length_offset: output limit `ceil(ratio * source tokens) + offset`.
    """

    def __init__(
        self,
        model: keras.Model,
        source_tokenizer: SentencePieceTokenizer,
        target_tokenizer: SentencePieceTokenizer,
        beam_size: int = 5,
        length_penalty: float = 0.6,
        max_length_ratio: float = 1.5,
        max_length_offset: int = 10,
    ):
        super().__init__(name="translator")
        self.model = model
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.beam_size = beam_size
        self.length_penalty = length_penalty
        self.max_length_ratio = max_length_ratio
        self.max_length_offset = max_length_offset

    def signatures(self) -> dict:
        return {"serving_default": self.serve, "greedy": self.greedy}

    def _translate(self, text: tf.Tensor, decode) -> dict[str, tf.Tensor]:
        """Decodes the non-empty inputs with `decode(source ids) -> (ids, scores)`."""
        text = tf.strings.strip(text)
        present = tf.strings.length(text) > 0
        kept = tf.boolean_mask(text, present)

        def run():
            ids, scores = decode(encode_source(self.source_tokenizer, kept))
            return self.target_tokenizer.detokenize(ids), scores

        def nothing():
            return tf.zeros([0], tf.string), tf.zeros([0], tf.float32)

        translations, scores = tf.cond(tf.size(kept) > 0, run, nothing)
        where = tf.where(present)
        shape = tf.shape(text, out_type=tf.int64)
        return {
            "translation": tf.tensor_scatter_nd_update(tf.fill(shape, ""), where, translations),
            "score": tf.scatter_nd(where, scores, shape),
        }

    @tf.function(input_signature=[TEXT])
    def serve(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        """Beam search: `translation` tf.string [B], `score` (log-probability) float32 [B]."""
        return self._translate(
            text,
            lambda source: beam_search(
                self.model,
                source,
                beam_size=self.beam_size,
                length_penalty=self.length_penalty,
                max_length_ratio=self.max_length_ratio,
                max_length_offset=self.max_length_offset,
            ),
        )

    @tf.function(input_signature=[TEXT])
    def greedy(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        """Greedy decoding: `translation` tf.string [B], `score` float32 [B]."""
        return self._translate(
            text,
            lambda source: greedy_decode(
                self.model, source, self.max_length_ratio, self.max_length_offset
            ),
        )
