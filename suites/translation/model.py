"""The translation model: BiLSTM encoder, attention LSTM decoder, and its training objective.

Architecture (Luong et al. 2015, "Effective Approaches to Attention-based NMT"):

    encoder:  embedding -> dropout -> N x Bidirectional(PeepholeLSTM) (dropout between layers)
              memory m_1..m_S (2 * encoder_units wide); the decoder's initial (h, c) per layer are
              a learnt projection ("bridge") of the masked mean of the memory.
    decoder:  `AttentionDecoder` (`decoder.py`): stacked PeepholeLSTM cells with attention and
              input feeding, producing attentional vectors a_t.
    output:   logits_t = W_o dropout(a_t)   (or tied: E_y^T P dropout(a_t) + b)

Training uses teacher forcing; `encode` and `decode_step` expose the same computation one step
at a time for greedy and beam search (`decoding.py`), which run in the graph so that they become
part of the export.

Inputs are dicts `{"source": int32 [B, S], "target_in": int32 [B, T]}` padded with 0; the output is
logits `[B, T, target_vocab]`. `attention_weights` returns `[B, T, S]` for plotting.
`SmoothedSequenceLoss` and `MaskedTokenAccuracy` are the loss and metric given to `compile`.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from shared.layers import Bidirectional, PeepholeLSTM
from suites.translation.decoder import AttentionDecoder, check_positive, check_rate


@keras.saving.register_keras_serializable(package="lstm_suite")
class Seq2SeqAttention(keras.Model):
    """The translation model (see the module docstring).

    Args:
        source_vocab_size: source vocabulary size (id 0 is padding).
        target_vocab_size: target vocabulary size (id 0 is padding).
        embedding_dim: width of source and target embeddings.
        encoder_units: units per direction of every encoder layer.
        encoder_layers: number of Bidirectional(PeepholeLSTM) layers.
        decoder_units: width of the decoder cells and the attentional vector.
        decoder_layers: number of stacked decoder cells.
        attention: "dot", "general" or "bahdanau".
        attention_units: hidden width of bahdanau attention.
        input_feeding: feed the previous attentional vector to the decoder.
        dropout: dropout on embeddings, between layers and before the output projection.
        tie_target_embedding: share the target embedding matrix with the output projection.
    """

    def __init__(
        self,
        source_vocab_size: int,
        target_vocab_size: int,
        embedding_dim: int = 256,
        encoder_units: int = 256,
        encoder_layers: int = 1,
        decoder_units: int = 512,
        decoder_layers: int = 1,
        attention: str = "general",
        attention_units: int = 256,
        input_feeding: bool = True,
        dropout: float = 0.2,
        tie_target_embedding: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source_vocab_size = check_positive("source_vocab_size", source_vocab_size)
        self.target_vocab_size = check_positive("target_vocab_size", target_vocab_size)
        self.embedding_dim = check_positive("embedding_dim", embedding_dim)
        self.encoder_units = check_positive("encoder_units", encoder_units)
        self.encoder_layers = check_positive("encoder_layers", encoder_layers)
        self.decoder_units = check_positive("decoder_units", decoder_units)
        self.decoder_layers = check_positive("decoder_layers", decoder_layers)
        self.attention_kind = attention
        self.attention_units = check_positive("attention_units", attention_units)
        self.input_feeding = bool(input_feeding)
        self.dropout_rate = check_rate("dropout", dropout)
        self.tie_target_embedding = bool(tie_target_embedding)
        self._make_layers()

    def _make_layers(self) -> None:
        """The sublayers: embeddings, encoder, decoder, dropout and the output projection."""
        width = self.embedding_dim
        self.source_embedding = keras.layers.Embedding(
            self.source_vocab_size, width, name="source_embedding"
        )
        self.target_embedding = keras.layers.Embedding(
            self.target_vocab_size, width, name="target_embedding"
        )
        self.encoder = [
            Bidirectional(
                PeepholeLSTM(self.encoder_units, return_sequences=True), name=f"encoder_{i}"
            )
            for i in range(self.encoder_layers)
        ]
        self.decoder = AttentionDecoder(
            self.decoder_units,
            self.decoder_layers,
            width,
            2 * self.encoder_units,
            attention=self.attention_kind,
            attention_units=self.attention_units,
            input_feeding=self.input_feeding,
            dropout=self.dropout_rate,
            name="decoder",
        )
        self.drop = keras.layers.Dropout(self.dropout_rate)
        if self.tie_target_embedding:
            self.output_projection = keras.layers.Dense(
                width, use_bias=False, name="output_projection"
            )
        else:
            self.output_projection = keras.layers.Dense(self.target_vocab_size, name="output")

    def build(self, input_shape: Any = None) -> None:
        self.source_embedding.build((None, None))
        self.target_embedding.build((None, None))
        width = self.embedding_dim
        for layer in self.encoder:
            layer.build((None, None, width))
            width = 2 * self.encoder_units
        self.decoder.build()
        self.output_projection.build((None, self.decoder_units))
        if self.tie_target_embedding:
            self.output_bias = self.add_weight(
                name="output_bias", shape=(self.target_vocab_size,), initializer="zeros"
            )
        self.built = True

    # -- pieces used by teacher forcing and by the decoders --------------------------------
    def encode(self, source, training: bool = False) -> tuple:
        """Encodes padded source ids [B, S] -> (memory, keys, mask, initial decoder states)."""
        mask = ops.not_equal(source, 0)
        x = self.drop(self.source_embedding(source), training=training)
        for i, layer in enumerate(self.encoder):
            if i > 0:
                x = self.drop(x, training=training)
            x = layer(x, mask=mask, training=training)
        keys = self.decoder.attention.keys(x)
        return x, keys, mask, self.decoder.initial_state(x, mask)

    def logits(self, attentional, training: bool = False):
        """Output projection of attentional vectors [..., decoder_units] -> [..., vocab]."""
        out = self.output_projection(self.drop(attentional, training=training))
        if self.tie_target_embedding:
            out = ops.matmul(out, ops.transpose(self.target_embedding.embeddings))
            out = out + self.output_bias
        return out

    def decode_step(self, tokens, states, memory, keys, mask):
        """One inference step: previous tokens [B] -> (logits [B, V], states, weights [B, S])."""
        inputs = self.target_embedding(tokens)
        attentional, states, weights = self.decoder.step(inputs, states, keys, memory, mask)
        return self.logits(attentional), states, weights

    # -- Keras entry points ----------------------------------------------------------------
    def _teacher_forced(self, inputs, training: bool = False):
        source, target_in = inputs["source"], inputs["target_in"]
        memory, _, mask, states = self.encode(source, training=training)
        embedded = self.drop(self.target_embedding(target_in), training=training)
        attentional, weights = self.decoder(
            embedded, memory, mask, states=states, training=training
        )
        return self.logits(attentional, training=training), weights

    def call(self, inputs, training: bool = False):
        return self._teacher_forced(inputs, training=training)[0]

    def attention_weights(self, source, target_in):
        """Teacher-forced attention weights [B, T, S] (rows: target steps, columns: source)."""
        return self._teacher_forced({"source": source, "target_in": target_in})[1]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "source_vocab_size": self.source_vocab_size,
            "target_vocab_size": self.target_vocab_size,
            "embedding_dim": self.embedding_dim,
            "encoder_units": self.encoder_units,
            "encoder_layers": self.encoder_layers,
            "decoder_units": self.decoder_units,
            "decoder_layers": self.decoder_layers,
            "attention": self.attention_kind,
            "attention_units": self.attention_units,
            "input_feeding": self.input_feeding,
            "dropout": self.dropout_rate,
            "tie_target_embedding": self.tie_target_embedding,
        }


@keras.saving.register_keras_serializable(package="lstm_suite")
class SmoothedSequenceLoss(keras.losses.Loss):
    """Token-level cross-entropy with label smoothing, ignoring padding (id 0) targets.

    The mean runs over real target tokens of the batch (not over padded positions).

    Args:
        label_smoothing: probability mass spread uniformly over the vocabulary.
    """

    def __init__(self, label_smoothing: float = 0.0, name: str = "smoothed_sequence_loss", **kw):
        super().__init__(name=name, **kw)
        self.label_smoothing = check_rate("label_smoothing", label_smoothing)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        nll = -ops.squeeze(ops.take_along_axis(log_probs, y_true[..., None], axis=-1), -1)
        loss = (1.0 - self.label_smoothing) * nll
        loss = loss - self.label_smoothing * ops.mean(log_probs, axis=-1)
        mask = ops.cast(ops.not_equal(y_true, 0), loss.dtype)
        # Keras divides the sum by the number of positions; rescale so it divides by real tokens.
        scale = ops.cast(ops.size(mask), loss.dtype) / ops.maximum(ops.sum(mask), 1.0)
        return loss * mask * scale

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="lstm_suite")
class MaskedTokenAccuracy(keras.metrics.Metric):
    """Share of non-padding target tokens whose argmax prediction is right."""

    def __init__(self, name: str = "token_accuracy", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        mask = ops.cast(ops.not_equal(y_true, 0), "float32")
        hits = ops.cast(
            ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true), "float32"
        )
        self.correct.assign_add(ops.sum(hits * mask))
        self.count.assign_add(ops.sum(mask))

    def result(self):
        return self.correct / ops.maximum(self.count, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.count.assign(0.0)
