"""Attention seq2seq model: BiLSTM encoder, LSTM decoder with attention and input feeding.

Architecture (Luong et al. 2015, "Effective Approaches to Attention-based NMT", with the scoring
functions of Luong (dot, general) and Bahdanau et al. 2015 (additive)):

    encoder:  embedding -> dropout -> N x Bidirectional(PeepholeLSTM) (dropout between layers)
              memory m_1..m_S (2 * encoder_units wide); the decoder's initial (h, c) per layer are
              a learnt projection ("bridge") of the masked mean of the memory.
    decoder:  x_t = [embed(y_{t-1}); a_{t-1}]                      (input feeding)
              h_t = stacked PeepholeLSTMCell(x_t)                  (dropout between layers)
              alpha_t = softmax(score(h_t, m)), c_t = sum_s alpha_ts m_s
              a_t = tanh(W_c [c_t; h_t])                           (attentional vector)
              logits_t = W_o dropout(a_t)   (or tied: E_y^T P dropout(a_t) + b)

Training uses teacher forcing: the decoder runs over the whole shifted target with a step loop
(`keras.ops.scan`), since input feeding makes step t depend on step t-1. `encode` and
`decode_step` expose the same computation one step at a time for greedy and beam search
(`decoding.py`), which run in the graph so that they become part of the export.

Inputs are dicts `{"source": int32 [B, S], "target_in": int32 [B, T]}` padded with 0; the output is
logits `[B, T, target_vocab]`. `attention_weights` returns `[B, T, S]` for plotting.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from shared.layers import Bidirectional, PeepholeLSTM, PeepholeLSTMCell

ATTENTION_KINDS = ("dot", "general", "bahdanau")
NEG_INF = -1e9


def _check_positive(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _check_rate(name: str, value: float) -> float:
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


@keras.saving.register_keras_serializable(package="lstm_suite")
class Attention(keras.layers.Layer):
    """Attention over an encoder memory with Luong (dot, general) or Bahdanau (additive) scores.

    Args:
        kind: "dot" (score = q.m; needs query and memory of equal width), "general"
            (score = q.W m) or "bahdanau" (score = v.tanh(W1 m + W2 q)).
        units: width of the additive hidden layer (bahdanau only).
        query_dim: width of the query vectors.
        memory_dim: width of the memory vectors.
    """

    def __init__(
        self, kind: str, units: int, query_dim: int, memory_dim: int, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if kind not in ATTENTION_KINDS:
            raise ValueError(f"kind must be one of {ATTENTION_KINDS}, got {kind!r}")
        self.kind = kind
        self.units = _check_positive("units", units)
        self.query_dim = _check_positive("query_dim", query_dim)
        self.memory_dim = _check_positive("memory_dim", memory_dim)
        if kind == "dot" and query_dim != memory_dim:
            raise ValueError(
                f"dot attention needs query_dim == memory_dim, got {query_dim} and {memory_dim} "
                "(use 'general' or make decoder_units == 2 * encoder_units)"
            )

    def build(self, input_shape: Any = None) -> None:
        if self.kind == "general":
            self.memory_kernel = self.add_weight(
                name="memory_kernel", shape=(self.memory_dim, self.query_dim)
            )
        elif self.kind == "bahdanau":
            self.memory_kernel = self.add_weight(
                name="memory_kernel", shape=(self.memory_dim, self.units)
            )
            self.query_kernel = self.add_weight(
                name="query_kernel", shape=(self.query_dim, self.units)
            )
            self.score_vector = self.add_weight(name="score_vector", shape=(self.units,))
        self.built = True

    def keys(self, memory):
        """Precomputes the memory side of the score once per sentence: [B, S, *]."""
        if self.kind == "dot":
            return memory
        return ops.matmul(memory, self.memory_kernel)

    def call(self, query, keys, memory, mask):
        """Returns (context [B, memory_dim], weights [B, S]) for queries [B, query_dim]."""
        if self.kind == "bahdanau":
            hidden = ops.tanh(keys + ops.expand_dims(ops.matmul(query, self.query_kernel), 1))
            scores = ops.tensordot(hidden, self.score_vector, axes=1)
        else:
            scores = ops.squeeze(ops.matmul(keys, ops.expand_dims(query, -1)), -1)
        scores = ops.where(mask, scores, ops.cast(NEG_INF, scores.dtype))
        weights = ops.softmax(scores, axis=-1)
        context = ops.squeeze(ops.matmul(ops.expand_dims(weights, 1), memory), 1)
        return context, weights

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "kind": self.kind,
            "units": self.units,
            "query_dim": self.query_dim,
            "memory_dim": self.memory_dim,
        }


@keras.saving.register_keras_serializable(package="lstm_suite")
class AttentionDecoder(keras.layers.Layer):
    """Stacked PeepholeLSTM decoder with attention and input feeding (one step or teacher-forced).

    Decoder state is a flat list `[h_1, c_1, ..., h_L, c_L, a]` (a: the last attentional vector).

    Args:
        units: width of every decoder layer and of the attentional vector.
        num_layers: number of stacked cells.
        embedding_dim: width of the target embeddings fed in.
        memory_dim: width of the encoder memory.
        attention: "dot", "general" or "bahdanau".
        attention_units: hidden width of bahdanau attention.
        input_feeding: feed the previous attentional vector into the first layer.
        dropout: dropout between stacked layers (masks fixed over time steps).
    """

    def __init__(
        self,
        units: int,
        num_layers: int,
        embedding_dim: int,
        memory_dim: int,
        attention: str = "general",
        attention_units: int = 256,
        input_feeding: bool = True,
        dropout: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.units = _check_positive("units", units)
        self.num_layers = _check_positive("num_layers", num_layers)
        self.embedding_dim = _check_positive("embedding_dim", embedding_dim)
        self.memory_dim = _check_positive("memory_dim", memory_dim)
        self.attention_kind = attention
        self.attention_units = attention_units
        self.input_feeding = bool(input_feeding)
        self.dropout = _check_rate("dropout", dropout)
        self.cells = [PeepholeLSTMCell(units, name=f"cell_{i}") for i in range(num_layers)]
        self.attention = Attention(attention, attention_units, units, memory_dim, name="attention")
        self.bridge = keras.layers.Dense(2 * units * num_layers, name="bridge")
        self.seed_generator = keras.random.SeedGenerator(0, name="dropout_seed")
        self.combine = keras.layers.Dense(
            units, activation="tanh", use_bias=False, name="attentional"
        )

    def build(self, input_shape: Any = None) -> None:
        first = self.embedding_dim + (self.units if self.input_feeding else 0)
        for i, cell in enumerate(self.cells):
            cell.build((None, first if i == 0 else self.units))
        self.attention.build()
        self.bridge.build((None, self.memory_dim))
        self.combine.build((None, self.memory_dim + self.units))
        self.built = True

    def initial_state(self, memory, mask) -> list:
        """Decoder state from the masked mean of the memory: [h_1, c_1, ..., a_0 = 0]."""
        weights = ops.expand_dims(ops.cast(mask, memory.dtype), -1)
        mean = ops.sum(memory * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)
        parts = ops.split(self.bridge(mean), 2 * self.num_layers, axis=-1)
        states = []
        for i in range(self.num_layers):
            states += [ops.tanh(parts[2 * i]), parts[2 * i + 1]]
        return [*states, ops.zeros_like(states[0])]

    def step(self, inputs, states, keys, memory, mask, layer_masks=None, training=False):
        """One decoder step. Returns (attentional vector [B, units], new states, weights [B, S])."""
        x = ops.concatenate([inputs, states[-1]], axis=-1) if self.input_feeding else inputs
        new_states = []
        for i, cell in enumerate(self.cells):
            if i > 0 and layer_masks is not None:
                x = x * layer_masks[i - 1]
            x, (h, c) = cell(x, [states[2 * i], states[2 * i + 1]], training=training)
            new_states += [h, c]
        context, weights = self.attention(x, keys, memory, mask)
        attentional = self.combine(ops.concatenate([context, x], axis=-1))
        return attentional, [*new_states, attentional], weights

    def call(self, inputs, memory, mask, states=None, training=False):
        """Teacher-forced decoding of embedded targets [B, T, E].

        Returns:
            (attentional vectors [B, T, units], attention weights [B, T, S]).
        """
        keys = self.attention.keys(memory)
        if states is None:
            states = self.initial_state(memory, mask)
        time_major = ops.transpose(inputs, (1, 0, 2))
        batch = ops.shape(time_major)[1]
        masks = None
        if training and self.dropout > 0 and self.num_layers > 1:
            ones = ops.ones((self.num_layers - 1, batch, self.units), dtype=inputs.dtype)
            dropped = keras.random.dropout(ones, self.dropout, seed=self.seed_generator)
            masks = ops.unstack(dropped, self.num_layers - 1)
        zeros = ops.zeros((batch, ops.shape(memory)[1]), dtype=inputs.dtype)

        def body(carry, x):
            _, new_state, weights = self.step(x, carry[0], keys, memory, mask, masks, training)
            return (new_state, weights), (new_state, weights)

        # keras.ops.scan stacks outputs shaped like the carry; the last state is the attentional
        # vector, so the stacked states hold the attentional sequence.
        _, (all_states, weights) = ops.scan(body, (list(states), zeros), time_major)
        attentional = ops.transpose(all_states[-1], (1, 0, 2))
        return attentional, ops.transpose(weights, (1, 0, 2))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "num_layers": self.num_layers,
            "embedding_dim": self.embedding_dim,
            "memory_dim": self.memory_dim,
            "attention": self.attention_kind,
            "attention_units": self.attention_units,
            "input_feeding": self.input_feeding,
            "dropout": self.dropout,
        }


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
        self.source_vocab_size = _check_positive("source_vocab_size", source_vocab_size)
        self.target_vocab_size = _check_positive("target_vocab_size", target_vocab_size)
        self.embedding_dim = _check_positive("embedding_dim", embedding_dim)
        self.encoder_units = _check_positive("encoder_units", encoder_units)
        self.encoder_layers = _check_positive("encoder_layers", encoder_layers)
        self.decoder_units = _check_positive("decoder_units", decoder_units)
        self.decoder_layers = _check_positive("decoder_layers", decoder_layers)
        self.attention_kind = attention
        self.attention_units = _check_positive("attention_units", attention_units)
        self.input_feeding = bool(input_feeding)
        self.dropout_rate = _check_rate("dropout", dropout)
        self.tie_target_embedding = bool(tie_target_embedding)

        self.source_embedding = keras.layers.Embedding(
            source_vocab_size, embedding_dim, name="source_embedding"
        )
        self.target_embedding = keras.layers.Embedding(
            target_vocab_size, embedding_dim, name="target_embedding"
        )
        self.encoder = [
            Bidirectional(PeepholeLSTM(encoder_units, return_sequences=True), name=f"encoder_{i}")
            for i in range(encoder_layers)
        ]
        self.decoder = AttentionDecoder(
            decoder_units,
            decoder_layers,
            embedding_dim,
            2 * encoder_units,
            attention=attention,
            attention_units=attention_units,
            input_feeding=input_feeding,
            dropout=dropout,
            name="decoder",
        )
        self.drop = keras.layers.Dropout(dropout)
        if self.tie_target_embedding:
            self.output_projection = keras.layers.Dense(
                embedding_dim, use_bias=False, name="output_projection"
            )
        else:
            self.output_projection = keras.layers.Dense(target_vocab_size, name="output")

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
        self.label_smoothing = _check_rate("label_smoothing", label_smoothing)

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
