"""The decoder side of the translation model: attention and the stacked attention decoder.

    alpha_t = softmax(score(h_t, m)), c_t = sum_s alpha_ts m_s        (`Attention`)
    x_t = [embed(y_{t-1}); a_{t-1}]                                   (input feeding)
    h_t = stacked PeepholeLSTMCell(x_t)                               (dropout between layers)
    a_t = tanh(W_c [c_t; h_t])                                        (attentional vector)

Scores: Luong et al. 2015 (dot, general) and Bahdanau et al. 2015 (additive). The decoder runs
one step at a time (`step`, used by greedy and beam search) or teacher-forced over a whole
target (`call`, a `keras.ops.scan` over the steps, since input feeding makes step t depend on
step t-1).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from shared.layers import PeepholeLSTMCell

ATTENTION_KINDS = ("dot", "general", "bahdanau")
NEG_INF = -1e9


def check_positive(name: str, value: Any) -> int:
    """`value` if it is an integer >= 1; else ValueError naming `name`."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_rate(name: str, value: float) -> float:
    """`value` as a float if it is in [0, 1); else ValueError naming `name`."""
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
        self.units = check_positive("units", units)
        self.query_dim = check_positive("query_dim", query_dim)
        self.memory_dim = check_positive("memory_dim", memory_dim)
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

    @property
    def key_dim(self) -> int:
        """Width of `keys(memory)`."""
        return {"dot": self.memory_dim, "general": self.query_dim}.get(self.kind, self.units)

    def keys(self, memory):
        """Precomputes the memory side of the score once per sentence: [B, S, key_dim]."""
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
        self.units = check_positive("units", units)
        self.num_layers = check_positive("num_layers", num_layers)
        self.embedding_dim = check_positive("embedding_dim", embedding_dim)
        self.memory_dim = check_positive("memory_dim", memory_dim)
        self.attention_kind = attention
        self.attention_units = attention_units
        self.input_feeding = bool(input_feeding)
        self.dropout = check_rate("dropout", dropout)
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

    @property
    def state_count(self) -> int:
        """Length of the state list: (h, c) per layer and the previous attentional vector."""
        return 2 * self.num_layers + 1

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
        masks = self._layer_masks(batch, inputs.dtype) if training else None
        zeros = ops.zeros((batch, ops.shape(memory)[1]), dtype=inputs.dtype)

        def body(carry, x):
            _, new_state, weights = self.step(x, carry[0], keys, memory, mask, masks, training)
            return (new_state, weights), (new_state, weights)

        # keras.ops.scan stacks outputs shaped like the carry; the last state is the attentional
        # vector, so the stacked states hold the attentional sequence.
        _, (all_states, weights) = ops.scan(body, (list(states), zeros), time_major)
        attentional = ops.transpose(all_states[-1], (1, 0, 2))
        return attentional, ops.transpose(weights, (1, 0, 2))

    def _layer_masks(self, batch, dtype) -> list | None:
        """Dropout masks between stacked layers, fixed over the time steps (None: no dropout)."""
        if self.dropout == 0 or self.num_layers == 1:
            return None
        ones = ops.ones((self.num_layers - 1, batch, self.units), dtype=dtype)
        dropped = keras.random.dropout(ones, self.dropout, seed=self.seed_generator)
        return ops.unstack(dropped, self.num_layers - 1)

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
