"""Peephole LSTM: `PeepholeLSTMCell` (one step) and `PeepholeLSTM` (a whole sequence, fast).

Equations (Gers, Schraudolph & Schmidhuber 2002), gate order and weight layout as
`keras.layers.LSTMCell`, so that with `use_peepholes=False` the cell loaded with an LSTMCell's
weights gives the same outputs:

    z   = x·kernel + h_{t-1}·recurrent_kernel + bias          split into [i, f, c, o]
    i_t = σ(z_i + p_i ⊙ c_{t-1})
    f_t = σ(z_f + p_f ⊙ c_{t-1})
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ tanh(z_c)
    o_t = σ(z_o + p_o ⊙ c_t)          # the output gate sees the new cell state
    h_t = o_t ⊙ tanh(c_t)

Dispatch rule of `PeepholeLSTM` (whole-sequence path), first match wins:

1. `use_peepholes=False`, `use_cudnn` is "auto"/True, a GPU is present and the configuration is
   one cuDNN supports (tanh/sigmoid, bias, no recurrent dropout, right-padded mask): keras' cuDNN
   kernel. With "auto" any other case falls through to 2; with True it is a ValueError saying
   why (no GPU visible, recurrent dropout, ...), and True with peepholes is refused at once.
2. TensorFlow backend, tanh/sigmoid activations, `fused` is "auto"/True, not `unroll`: the fused
   path of `shared.layers.fused` (input projection hoisted, hand-written backward pass; loops
   XLA-compiled unless `jit_compile=False`).
3. Otherwise: the generic `keras.layers.RNN` loop over `PeepholeLSTMCell`.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import activations, constraints, initializers, ops, regularizers

# Keras keeps its dropout-mask mixin private; `keras.layers.RNN` recognises cells by it and
# prepares their masks before the loop. keras is pinned to 3.15.* in pyproject.toml.
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

_PACKAGE = "lstm_suite"


def _check_rate(name: str, value: float) -> float:
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"Argument `{name}` must be in [0, 1), got {name}={value!r}.")
    return float(value)


def _check_units(units: Any) -> int:
    if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
        raise ValueError(f"Argument `units` must be a positive integer, got units={units!r}.")
    return units


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PeepholeLSTMCell(keras.layers.Layer, DropoutRNNCell):
    """One step of a peephole LSTM, usable inside `keras.layers.RNN`.

    Args:
        units: Positive integer, dimensionality of the output and cell state.
        use_peepholes: Whether the gates see the cell state (default True). With False the cell
            computes exactly what `keras.layers.LSTMCell` computes.
        activation: Cell and output activation (default "tanh").
        recurrent_activation: Gate activation (default "sigmoid").
        use_bias: Whether to add a bias (default True).
        kernel_initializer: Initializer of `kernel` (default "glorot_uniform").
        recurrent_initializer: Initializer of `recurrent_kernel` (default "orthogonal").
        bias_initializer: Initializer of `bias` (default "zeros").
        peephole_initializer: Initializer of `peephole_kernel` (default "zeros": training starts
            from a plain LSTM).
        unit_forget_bias: Whether the forget-gate bias starts at 1 (default True).
        kernel_regularizer, recurrent_regularizer, bias_regularizer, peephole_regularizer:
            Regularizers (default None).
        kernel_constraint, recurrent_constraint, bias_constraint, peephole_constraint:
            Constraints (default None).
        dropout: Fraction of the inputs dropped, one mask per sequence (default 0).
        recurrent_dropout: Fraction of `h_{t-1}` dropped before the recurrent matmul, one mask per
            sequence (default 0).
        seed: Seed of the dropout masks (default None).

    Weights: `kernel` (input_dim, 4·units), `recurrent_kernel` (units, 4·units), `bias`
    (4·units), gate order [i, f, c, o]; `peephole_kernel` (3, units), rows [i, f, o], only when
    `use_peepholes`.

    Call arguments:
        inputs: (batch, input_dim). states: [h, c], each (batch, units). training: bool.

    Example:
    >>> rnn = keras.layers.RNN(PeepholeLSTMCell(4), return_sequences=True)
    >>> rnn(np.zeros((2, 5, 3), "float32")).shape
    (2, 5, 4)
    """

    def __init__(
        self,
        units: int,
        use_peepholes: bool = True,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        peephole_initializer: Any = "zeros",
        unit_forget_bias: bool = True,
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        peephole_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        peephole_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.units = _check_units(units)
        self.use_peepholes = bool(use_peepholes)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.peephole_initializer = initializers.get(peephole_initializer)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.peephole_regularizer = regularizers.get(peephole_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.peephole_constraint = constraints.get(peephole_constraint)
        self.dropout = _check_rate("dropout", dropout)
        self.recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)
        self.state_size = [self.units, self.units]
        self.output_size = self.units

    def build(self, input_shape: tuple) -> None:
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"{type(self).__name__} needs a known last input dimension, got {input_shape}."
            )
        u = self.units
        self.kernel = self.add_weight(
            shape=(input_dim, 4 * u),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(u, 4 * u),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        if self.use_bias:
            bias_initializer = self.bias_initializer
            if self.unit_forget_bias:
                base = self.bias_initializer

                def bias_initializer(shape, dtype=None):
                    return ops.concatenate(
                        [
                            base((u,), dtype=dtype),
                            ops.ones((u,), dtype=dtype),
                            base((2 * u,), dtype=dtype),
                        ]
                    )

            self.bias = self.add_weight(
                shape=(4 * u,),
                name="bias",
                initializer=bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        if self.use_peepholes:
            self.peephole_kernel = self.add_weight(
                shape=(3, u),
                name="peephole_kernel",
                initializer=self.peephole_initializer,
                regularizer=self.peephole_regularizer,
                constraint=self.peephole_constraint,
            )
        else:
            self.peephole_kernel = None

    def call(self, inputs, states, training: bool = False):
        h_tm1, c_tm1 = states[0], states[1]
        if training and self.dropout > 0.0:
            inputs = inputs * self.get_dropout_mask(inputs)
        h_rec = h_tm1
        if training and self.recurrent_dropout > 0.0:
            h_rec = h_tm1 * self.get_recurrent_dropout_mask(h_tm1)
        z = ops.matmul(inputs, self.kernel) + ops.matmul(h_rec, self.recurrent_kernel)
        if self.use_bias:
            z = z + self.bias
        gates = self._gates(z, c_tm1)
        return gates["h"], [gates["h"], gates["c"]]

    def gate_activations(self, inputs, states) -> dict[str, Any]:
        """One inference step that also returns the gates, for inspection and plots.

        Args:
            inputs: (batch, input_dim). states: [h, c].

        Returns:
            A dict of (batch, units) tensors: "i", "f", "o" (gates), "g" (candidate),
            "c" (new cell state), "h" (new output).
        """
        z = ops.matmul(inputs, self.kernel) + ops.matmul(states[0], self.recurrent_kernel)
        if self.use_bias:
            z = z + self.bias
        return self._gates(z, states[1])

    def _gates(self, z, c_tm1) -> dict[str, Any]:
        """The gate math of one step: z (B, 4u) and c_{t-1} -> i, f, g, o, c, h."""
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        if self.use_peepholes:
            p_i, p_f, p_o = ops.unstack(self.peephole_kernel, 3, axis=0)
            z_i = z_i + p_i * c_tm1
            z_f = z_f + p_f * c_tm1
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        g = self.activation(z_c)
        c = f * c_tm1 + i * g
        if self.use_peepholes:
            z_o = z_o + p_o * c
        o = self.recurrent_activation(z_o)
        return {"i": i, "f": f, "g": g, "o": o, "c": c, "h": o * self.activation(c)}

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, d), dtype=self.compute_dtype) for d in self.state_size]

    def get_config(self) -> dict[str, Any]:
        config = {
            "units": self.units,
            "use_peepholes": self.use_peepholes,
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "peephole_initializer": initializers.serialize(self.peephole_initializer),
            "unit_forget_bias": self.unit_forget_bias,
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "peephole_regularizer": regularizers.serialize(self.peephole_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "peephole_constraint": constraints.serialize(self.peephole_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}


_CELL_ARGS = (
    "use_peepholes",
    "activation",
    "recurrent_activation",
    "use_bias",
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "peephole_initializer",
    "unit_forget_bias",
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "peephole_regularizer",
    "kernel_constraint",
    "recurrent_constraint",
    "bias_constraint",
    "peephole_constraint",
    "dropout",
    "recurrent_dropout",
    "seed",
)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PeepholeLSTM(keras.layers.RNN):
    """Peephole LSTM over a whole sequence; the API of `keras.layers.LSTM`.

    Takes every argument of `PeepholeLSTMCell` (see there, with the same defaults) plus:

    Args:
        return_sequences: Return the output of every step (default False: the last one).
        return_state: Also return the final [h, c] (default False).
        go_backwards: Process the sequence in reverse and return the reversed outputs
            (default False).
        stateful: Carry the final states of a batch over to the next batch (default False).
        unroll: Unroll the loop (short sequences only; uses the generic path; default False).
        zero_output_for_mask: Output zeros (instead of the previous output) at masked steps
            (default False; `Bidirectional` sets it when returning sequences, as keras does).
        fused: "auto" (default) or True: use the fast path when the configuration allows it;
            False: always the generic cell loop. True raises if the fast path cannot be used.
        jit_compile: Compile the fused forward and backward loops with XLA (default True;
            measured ~1.2x (1.06-1.4x) faster than graph loops on CPU, benchmarks/RESULTS.md). The
            loops run over fixed-size chunks of the sequence, so XLA compiles once per batch
            size, width and dtype (about a second), not per sequence length. Unlike XLA over
            keras' RNN autodiff it stays linear in the sequence length, because the backward
            pass is a plain loop. False: TensorFlow graph loops, no compilation.
        use_cudnn: "auto" (default): keras' cuDNN kernel when `use_peepholes=False` on a GPU
            and the configuration allows it, else the fused path; True: cuDNN or a ValueError
            saying why not (needs `use_peepholes=False`); False: never cuDNN. See the module
            docstring for the dispatch rule.

    Call arguments:
        sequences: (batch, timesteps, features). mask: (batch, timesteps) bool, True where valid;
        pre- and post-padding are both handled. initial_state: [h, c]. training: bool.

    Example:
    >>> layer = PeepholeLSTM(8, return_sequences=True, return_state=True)
    >>> y, h, c = layer(np.zeros((2, 5, 3), "float32"))
    >>> y.shape, h.shape, c.shape
    ((2, 5, 8), (2, 8), (2, 8))
    """

    def __init__(
        self,
        units: int,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        zero_output_for_mask: bool = False,
        fused: bool | str = "auto",
        jit_compile: bool = True,
        use_cudnn: bool | str = "auto",
        **kwargs: Any,
    ):
        cell_kwargs = {k: kwargs.pop(k) for k in _CELL_ARGS if k in kwargs}
        cell = PeepholeLSTMCell(
            units,
            dtype=kwargs.get("dtype"),
            trainable=kwargs.get("trainable", True),
            name="peephole_lstm_cell",
            **cell_kwargs,
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            zero_output_for_mask=zero_output_for_mask,
            **kwargs,
        )
        if fused not in ("auto", True, False):
            raise ValueError(f"Argument `fused` must be 'auto', True or False, got {fused!r}.")
        if use_cudnn not in ("auto", True, False):
            raise ValueError(
                f"Argument `use_cudnn` must be 'auto', True or False, got {use_cudnn!r}."
            )
        self.fused = fused
        self.jit_compile = bool(jit_compile)
        self.use_cudnn = use_cudnn
        self.input_spec = keras.layers.InputSpec(ndim=3)
        if use_cudnn is True and self.cell.use_peepholes:
            raise ValueError(
                "use_cudnn=True needs use_peepholes=False: cuDNN's LSTM kernel has no peepholes."
            )
        if fused is True and not self.can_fuse():
            raise ValueError(
                "fused=True needs the TensorFlow backend, tanh/sigmoid activations and "
                "unroll=False."
            )

    def can_fuse(self) -> bool:
        """Whether the fast whole-sequence path applies to this configuration."""
        return (
            keras.backend.backend() == "tensorflow"
            and self.fused in ("auto", True)
            and not self.unroll
            and self.cell.activation is activations.tanh
            and self.cell.recurrent_activation is activations.sigmoid
        )

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if not self.cell.use_peepholes and self.use_cudnn in ("auto", True):
            out = _try_cudnn(self, sequences, initial_state, mask, training)
            if out is not None:
                return out
        if self.can_fuse():
            from shared.layers import sequence

            return sequence.run_fused([self], sequences, [initial_state], mask, training)[0]
        return super().inner_loop(sequences, initial_state, mask=mask, training=training)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        cell_config = config.pop("cell")["config"]
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        config.update(cell_config)
        config.update(
            {"fused": self.fused, "jit_compile": self.jit_compile, "use_cudnn": self.use_cudnn}
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects=None):
        return cls(**config)


# Cell hyper-parameters read as layer attributes, like keras.layers.LSTM's properties.
for _name in ("units", *_CELL_ARGS):
    setattr(PeepholeLSTM, _name, property(lambda self, _n=_name: getattr(self.cell, _n)))
del _name


def _gpu_visible() -> bool:
    """Whether the TensorFlow runtime sees a GPU (other backends: let their kernel decide)."""
    if keras.backend.backend() != "tensorflow":
        return True
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


def _try_cudnn(layer: PeepholeLSTM, sequences, initial_state, mask, training):
    """Keras' cuDNN LSTM kernel for a peephole-free layer, or None where it does not apply.

    With `use_cudnn=True` a configuration cuDNN cannot run raises a ValueError saying why.
    """
    cell = layer.cell
    reason = None
    if not _gpu_visible():
        reason = "no GPU is visible"
    elif cell.recurrent_dropout:
        reason = "cuDNN has no recurrent dropout"
    if reason is None:
        out = _cudnn_lstm(layer, sequences, initial_state, mask, training)
        if out is not None:
            return out
        reason = "cuDNN does not take this configuration (activations, bias or mask padding)"
    if layer.use_cudnn is True:
        raise ValueError(f"use_cudnn=True, but {reason}; use use_cudnn='auto' to fall back.")
    return None


def _cudnn_lstm(layer: PeepholeLSTM, sequences, initial_state, mask, training):
    """keras' cuDNN kernel, or None when it raises NotImplementedError."""
    cell = layer.cell
    x = sequences
    if training and cell.dropout:
        x = x * ops.expand_dims(cell.get_dropout_mask(sequences[:, 0, :]), 1)
    try:
        return keras.src.backend.lstm(
            x,
            initial_state[0],
            initial_state[1],
            mask,
            kernel=cell.kernel,
            recurrent_kernel=cell.recurrent_kernel,
            bias=cell.bias,
            activation=cell.activation,
            recurrent_activation=cell.recurrent_activation,
            return_sequences=layer.return_sequences,
            go_backwards=layer.go_backwards,
            unroll=layer.unroll,
        )
    except NotImplementedError:
        return None
