"""Glue between Keras RNN layers and the fused loop: projections, masks, directions, outputs.

`run_fused` takes one layer (a plain PeepholeLSTM) or two (the directions of a Bidirectional)
and returns, per layer, what `keras.layers.RNN.inner_loop` returns: `(last_output, outputs,
[h, c])`, with keras' semantics — a layer with `go_backwards` returns its outputs in processed
(reversed) order; at a masked step the output is the previous output (zeros before the first
valid step) or zeros with `zero_output_for_mask`; `last_output` is the output of the last
processed step.
"""

from __future__ import annotations

import tensorflow as tf

from shared.layers.fused import fused_peephole_lstm


def _direction_inputs(layer, x_tm, mask_tm, training):
    """One layer's time-major inputs (T, B, F) after input dropout, and mask, in its order."""
    cell = layer.cell
    if training and cell.dropout > 0.0:
        x_tm = x_tm * tf.cast(cell.get_dropout_mask(x_tm[0]), x_tm.dtype)[None]
    mask = mask_tm
    if layer.go_backwards:
        x_tm = tf.reverse(x_tm, [0])
        mask = None if mask is None else tf.reverse(mask, [0])
    return x_tm, mask


def _outputs(h_seq, mask, zero_output_for_mask):
    """Keras' output convention from the carried hidden states (T, B, u) of one direction."""
    if mask is None:
        return h_seq
    if zero_output_for_mask:
        return h_seq * mask
    seen = tf.cast(tf.cumsum(mask, axis=0) > 0, h_seq.dtype)
    return h_seq * seen


def _last_output(h_last, mask, zero_output_for_mask):
    """The output of the last processed step, from the final state (B, u) of one direction."""
    if mask is None:
        return h_last
    if zero_output_for_mask:
        return h_last * mask[-1]
    return h_last * tf.cast(tf.reduce_max(mask, axis=0) > 0, h_last.dtype)


def run_fused(layers, sequences, initial_states, mask, training):
    """Runs 1 or 2 PeepholeLSTM layers over `sequences` (B, T, F) each in its own fused loop.

    Args:
        layers: the PeepholeLSTM layers (built), one per direction.
        sequences: (batch, time, features) tensor in the compute dtype.
        initial_states: per layer, [h0, c0] each (batch, units).
        mask: (batch, time) bool or None.
        training: whether dropout applies.

    Returns:
        Per layer `(last_output, outputs (B, T, u), [h_T, c_T])`.
    """
    dtype = sequences.dtype
    x_tm = tf.transpose(sequences, [1, 0, 2])
    mask_tm = None
    if mask is not None:
        mask_tm = tf.cast(tf.transpose(tf.cast(mask, dtype)[..., None], [1, 0, 2]), dtype)

    results = []
    for layer, state in zip(layers, initial_states):
        # One independent loop per direction: TensorFlow runs the two concurrently.
        x_d, m = _direction_inputs(layer, x_tm, mask_tm, training)
        cell = layer.cell
        rec_mask = None
        if training and cell.recurrent_dropout > 0.0:
            rec_mask = tf.cast(cell.get_recurrent_dropout_mask(state[0]), dtype)
        h_seq, h_last, c_last = fused_peephole_lstm(
            x_d,
            tf.cast(cell.kernel, dtype),
            tf.cast(cell.bias, dtype) if cell.use_bias else None,
            tf.cast(state[0], dtype),
            tf.cast(state[1], dtype),
            tf.cast(cell.recurrent_kernel, dtype),
            tf.cast(cell.peephole_kernel, dtype) if cell.use_peepholes else None,
            m,
            rec_mask,
            jit_compile=layer.jit_compile,
            keep_activations=training,
            return_sequences=layer.return_sequences,
        )
        last = _last_output(h_last, m, layer.zero_output_for_mask)
        if layer.return_sequences:
            outputs = tf.transpose(_outputs(h_seq, m, layer.zero_output_for_mask), [1, 0, 2])
        else:
            outputs = last[None]  # keras reads only `last` then
        results.append((last, outputs, [h_last, c_last]))
    return results
