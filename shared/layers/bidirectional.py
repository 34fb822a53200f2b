"""`Bidirectional`: keras' wrapper, with the fused fast path for `PeepholeLSTM` directions.

keras.layers.Bidirectional runs the forward layer, then the backward layer, each through
keras' step-by-step RNN loop. When both directions are `PeepholeLSTM`s that can use the fused
path, this wrapper runs each direction's fused loop (inputs projected by large GEMMs, hand-written
backward pass; see `shared.layers.fused`) as an independent op, so TensorFlow runs the two
directions concurrently on two cores. (One shared loop with a batched matmul for both
directions was measured slower on CPU: benchmarks/RESULTS.md.) Any other wrapped layer (a keras
LSTM/GRU, a PeepholeLSTM with custom activations, a stateful layer) falls back to keras'
behaviour unchanged.

Masks: the backward direction processes the reversed sequence with the reversed mask, so with
post-padding it starts on the last real step (the padded steps before it carry the initial state
over), never on padding.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from shared.layers.peephole_lstm import PeepholeLSTM
from shared.layers.sequence import run_fused

_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


@keras.saving.register_keras_serializable(package="lstm_suite")
class Bidirectional(keras.layers.Bidirectional):
    """Bidirectional wrapper for RNN layers; fused loops for `PeepholeLSTM`.

    Args:
        layer: A recurrent layer instance (`PeepholeLSTM`, `keras.layers.LSTM`, `GRU`, ...).
        merge_mode: How the two directions' outputs are combined: "concat" (default), "sum",
            "mul", "ave" or None (a list of both).
        backward_layer: Optional layer for the backward direction (must have
            `go_backwards=True`); by default a copy of `layer` with `go_backwards=True`.
        **kwargs: Base layer arguments (name, dtype, ...).

    Call arguments:
        sequences: (batch, timesteps, features). mask: (batch, timesteps) bool.
        initial_state: [fwd_h, fwd_c, bwd_h, bwd_c] for LSTMs. training: bool.

    Returns:
        The merged outputs; with `return_state`, followed by the forward then backward states.

    Example:
    >>> bi = Bidirectional(PeepholeLSTM(4, return_sequences=True))
    >>> bi(np.zeros((2, 5, 3), "float32")).shape
    (2, 5, 8)
    """

    def __init__(
        self,
        layer: keras.layers.Layer,
        merge_mode: str | None = "concat",
        weights: Any = None,
        backward_layer: keras.layers.Layer | None = None,
        **kwargs: Any,
    ):
        if merge_mode not in _MERGE_MODES:
            raise ValueError(
                f"Argument `merge_mode` must be one of {_MERGE_MODES}, "
                f"got merge_mode={merge_mode!r}."
            )
        if not isinstance(layer, keras.layers.Layer) or not hasattr(layer, "go_backwards"):
            raise ValueError(
                f"Argument `layer` must be a recurrent keras layer instance, got {layer!r}."
            )
        super().__init__(
            layer, merge_mode=merge_mode, weights=weights, backward_layer=backward_layer, **kwargs
        )

    def can_fuse(self) -> bool:
        """Whether both directions run on the fused path."""
        fwd, bwd = self.forward_layer, self.backward_layer
        return (
            isinstance(fwd, PeepholeLSTM)
            and isinstance(bwd, PeepholeLSTM)
            and fwd.can_fuse()
            and bwd.can_fuse()
            and not fwd.stateful
            and not bwd.stateful
            and fwd.units == bwd.units
        )

    def call(self, sequences, initial_state=None, mask=None, training=None):
        if not self.can_fuse():
            return super().call(
                sequences, initial_state=initial_state, mask=mask, training=training
            )
        fwd, bwd = self.forward_layer, self.backward_layer
        sequences = ops.cast(sequences, self.compute_dtype)
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if initial_state is None:
            batch = ops.shape(sequences)[0]
            states = [fwd.get_initial_state(batch), bwd.get_initial_state(batch)]
        else:
            if len(initial_state) != 4:
                raise ValueError(
                    "`initial_state` of a Bidirectional LSTM must be [fwd_h, fwd_c, bwd_h, "
                    f"bwd_c], got {len(initial_state)} tensors."
                )
            states = [list(initial_state[:2]), list(initial_state[2:])]
        training = bool(training)
        try:
            (last_f, seq_f, st_f), (last_b, seq_b, st_b) = run_fused(
                [fwd, bwd], sequences, states, mask, training
            )
        finally:
            for cell in (fwd.cell, bwd.cell):
                cell.reset_dropout_mask()
                cell.reset_recurrent_dropout_mask()

        if self.return_sequences:
            y, y_rev = seq_f, ops.flip(seq_b, axis=1)
        else:
            y, y_rev = last_f, last_b
        y = ops.cast(y, self.compute_dtype)
        y_rev = ops.cast(y_rev, self.compute_dtype)
        if self.merge_mode == "concat":
            output = ops.concatenate([y, y_rev], axis=-1)
        elif self.merge_mode == "sum":
            output = y + y_rev
        elif self.merge_mode == "ave":
            output = (y + y_rev) / 2
        elif self.merge_mode == "mul":
            output = y * y_rev
        else:
            output = (y, y_rev)
        if not self.return_state:
            return output
        states_out = tuple(ops.cast(s, self.compute_dtype) for s in (*st_f, *st_b))
        if self.merge_mode is None:
            return output + states_out
        return (output,) + states_out
