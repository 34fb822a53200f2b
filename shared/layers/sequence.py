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
    """Time-major input projection (T, B, 4u) and mask (T, B, 1) of one layer, in its order."""
    cell = layer.cell
    dtype = x_tm.dtype
    if training and cell.dropout > 0.0:
        x_tm = x_tm * tf.cast(cell.get_dropout_mask(x_tm[0]), dtype)[None]
    kernel = tf.cast(cell.kernel, dtype)
    proj = tf.einsum("tbi,ik->tbk", x_tm, kernel)
    if cell.use_bias:
        proj = proj + tf.cast(cell.bias, dtype)
    mask = mask_tm
    if layer.go_backwards:
        proj = tf.reverse(proj, [0])
        mask = None if mask is None else tf.reverse(mask, [0])
    return proj, mask


def _outputs(h_seq, mask, zero_output_for_mask):
    """Keras' output convention from the carried hidden states (T, B, u) of one direction."""
    if mask is None:
        return h_seq
    if zero_output_for_mask:
        return h_seq * mask
    seen = tf.cast(tf.cumsum(mask, axis=0) > 0, h_seq.dtype)
    return h_seq * seen


def run_fused(layers, sequences, initial_states, mask, training):
    """Runs 1 or 2 PeepholeLSTM layers over `sequences` (B, T, F) in one fused loop.

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

    projs, masks = zip(*(_direction_inputs(lay, x_tm, mask_tm, training) for lay in layers))
    cells = [layer.cell for layer in layers]
    h0 = tf.stack([tf.cast(state[0], dtype) for state in initial_states])
    c0 = tf.stack([tf.cast(state[1], dtype) for state in initial_states])
    kernel = tf.stack([tf.cast(cell.recurrent_kernel, dtype) for cell in cells])
    peep = None
    if any(cell.use_peepholes for cell in cells):
        # A direction without peepholes gets zero peephole weights: no effect on it.
        peep = tf.stack(
            [
                tf.cast(cell.peephole_kernel, dtype)
                if cell.use_peepholes
                else tf.zeros((3, cell.units), dtype)
                for cell in cells
            ]
        )
    rec_mask = None
    if training and any(cell.recurrent_dropout > 0.0 for cell in cells):
        rec_mask = tf.stack(
            [
                tf.cast(cell.get_recurrent_dropout_mask(state[0]), dtype)
                if cell.recurrent_dropout > 0.0
                else tf.ones_like(state[0], dtype)
                for cell, state in zip(cells, initial_states)
            ]
        )
    mask_stack = None if mask_tm is None else tf.stack(masks, axis=1)  # (T, D, B, 1)

    h_seq, h_last, c_last = fused_peephole_lstm(
        tf.stack(projs, axis=1),  # (T, D, B, 4u)
        h0,
        c0,
        kernel,
        peep,
        mask_stack,
        rec_mask,
        jit_compile=any(layer.jit_compile for layer in layers),
    )
    results = []
    for d, layer in enumerate(layers):
        m = None if mask_stack is None else masks[d]
        out_tm = _outputs(h_seq[:, d], m, layer.zero_output_for_mask)
        last_output = out_tm[-1]
        outputs = tf.transpose(out_tm, [1, 0, 2]) if layer.return_sequences else out_tm
        results.append((last_output, outputs, [h_last[d], c_last[d]]))
    return results
