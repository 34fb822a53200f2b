"""The fast whole-sequence path of the peephole LSTM: one loop, hand-written backward pass.

Why this exists: `keras.layers.RNN` runs the cell step by step and lets autodiff record every
small op of every step. Here the input projection `x·W + b` is done once for the whole sequence
before the loop (one large GEMM), the recurrence keeps only what it must (`h·U`, the gates and the
cell update), and the backward pass is written by hand: one reverse loop produces the gate
gradients `dZ`, and the weight gradients (`dU`, peepholes; `dW`, bias through autodiff of the
hoisted projection) are then computed as a few large operations over all time steps at once.
Memory is linear in the sequence length: the forward pass stores the gates and cell states only.

Everything carries a leading "direction" axis `D`: `D = 1` is a plain LSTM, `D = 2` runs the
forward and backward directions of a bidirectional layer in the same loop, so both recurrent
matmuls are one batched matmul per step.

Shapes (time-major inside):
    x_proj:  (D, T, B, 4u)  input projection incl. bias, gate order [i, f, c, o]
    h0, c0:  (D, B, u)
    kernel:  (D, u, 4u)     recurrent kernel
    peep:    (D, 3, u)      peephole weights, rows [i, f, o] (or None)
    mask:    (D, T, B, 1)   1.0 where a step is valid, 0.0 where it is padding (or None)
    rec_mask:(D, B, u)      recurrent dropout mask applied to h_{t-1} (or None)
Returns:
    h_seq (D, T, B, u): the carried hidden state after every step (padding steps carry it over),
    h_T, c_T (D, B, u): final states.

Only the standard activations (sigmoid gates, tanh cell) are supported here: the backward pass
uses their closed-form derivatives. Other activations use the generic cell loop.
"""

from __future__ import annotations

import tensorflow as tf


def _time_major_reverse_loop(n, body, loop_vars):
    return tf.while_loop(
        lambda t, *_: t >= 0,
        body,
        (n - 1, *loop_vars),
        maximum_iterations=n,
        parallel_iterations=1,
    )


def fused_peephole_lstm(x_proj, h0, c0, kernel, peep=None, mask=None, rec_mask=None):
    """Runs the LSTM recurrence over `x_proj`; see the module docstring for shapes."""
    use_peep = peep is not None
    use_mask = mask is not None
    use_rdrop = rec_mask is not None

    extras = [t for t in (peep, mask, rec_mask) if t is not None]

    # With one direction the direction axis is dropped inside, so that every step runs a plain
    # 2-D matmul instead of a batched one.
    squeeze = x_proj.shape[0] == 1
    if squeeze:
        x_proj, h0, c0, kernel = x_proj[0], h0[0], c0[0], kernel[0]
        extras = [e[0] for e in extras]
    batch_axes = [0, 1] if squeeze else [0, 2]
    perm = [0, 1, 2] if squeeze else [1, 0, 2, 3]  # to and from time-major

    @tf.custom_gradient
    def run(x_proj, h0, c0, kernel, *extra):
        it = iter(extra)
        p = next(it) if use_peep else None
        m = next(it) if use_mask else None
        rm = next(it) if use_rdrop else None
        units = tf.shape(h0)[-1]
        steps = tf.shape(x_proj)[-3]
        dtype = x_proj.dtype
        zx = tf.transpose(x_proj, perm)  # (T, [D,] B, 4u)
        mt = tf.transpose(m, perm) if use_mask else None
        if use_peep:
            p_i, p_f, p_o = p[..., 0:1, :], p[..., 1:2, :], p[..., 2:3, :]  # ([D,] 1, u)
            p_if = tf.concat([p_i, p_f], axis=-1)

        # One record per step: [i, f, g, o, c_t, h_t] (6u wide), written once.
        rec_ta = tf.TensorArray(dtype, size=steps)

        def step(t, h, c, rec_ta):
            hr = h * rm if use_rdrop else h
            z = zx[t] + tf.matmul(hr, kernel)
            z_if, z_c, z_o = tf.split(z, [2 * units, units, units], axis=-1)
            if use_peep:
                z_if = z_if + tf.concat([c, c], axis=-1) * p_if
            i_f = tf.sigmoid(z_if)
            i, f = tf.split(i_f, 2, axis=-1)
            g = tf.tanh(z_c)
            c_new = f * c + i * g
            if use_peep:
                z_o = z_o + c_new * p_o
            o = tf.sigmoid(z_o)
            h_new = o * tf.tanh(c_new)
            if use_mask:
                valid = mt[t]
                h_new = h + valid * (h_new - h)
                c_new = c + valid * (c_new - c)
            rec_ta = rec_ta.write(t, tf.concat([i_f, g, o, c_new, h_new], axis=-1))
            return t + 1, h_new, c_new, rec_ta

        _, h_last, c_last, rec_ta = tf.while_loop(
            lambda t, *_: t < steps,
            step,
            (tf.constant(0), h0, c0, rec_ta),
            parallel_iterations=1,
        )
        rec = rec_ta.stack()  # (T, [D,] B, 6u)
        i, f, g, o, c_seq, h_seq = tf.split(rec, 6, axis=-1)

        def grad(dh_seq, dh_last, dc_last, variables=None):
            # Outputs nobody used arrive as None.
            dh_seq = tf.zeros_like(h_seq) if dh_seq is None else tf.transpose(dh_seq, perm)
            dh_last = tf.zeros_like(h0) if dh_last is None else dh_last
            dc_last = tf.zeros_like(c0) if dc_last is None else dc_last
            c_prev = tf.concat([c0[None], c_seq[:-1]], axis=0)
            h_prev = tf.concat([h0[None], h_seq[:-1]], axis=0)
            tanh_c = tf.tanh(c_seq)
            # Everything that does not depend on the carried gradients, for all steps at once.
            a_h2c = o * (1.0 - tanh_c * tanh_c)  # d c_t / d h_t through tanh
            a_h2o = tanh_c * o * (1.0 - o)  # d z_o / d h_t
            b_i = g * i * (1.0 - i)
            b_f = c_prev * f * (1.0 - f)
            b_g = i * (1.0 - g * g)
            b_c = f
            if use_peep:
                b_c = b_c + b_i * p_i + b_f * p_f
            b_ifg = tf.concat([b_i, b_f, b_g], axis=-1)
            kernel_t = tf.linalg.matrix_transpose(kernel)  # ([D,] 4u, u)

            dz_ta = tf.TensorArray(dtype, size=steps)

            def back(t, dh_carry, dc_carry, dz_ta):
                dh = dh_seq[t] + dh_carry
                dc_in = dc_carry
                if use_mask:
                    valid = mt[t]
                    dh_new = dh * valid
                    dc_in = dc_carry * valid
                else:
                    dh_new = dh
                dz_o = dh_new * a_h2o[t]
                dc = dc_in + dh_new * a_h2c[t]
                if use_peep:
                    dc = dc + dz_o * p_o
                dz = tf.concat([tf.concat([dc, dc, dc], axis=-1) * b_ifg[t], dz_o], axis=-1)
                dz_ta = dz_ta.write(t, dz)
                dh_prev = tf.matmul(dz, kernel_t)
                if use_rdrop:
                    dh_prev = dh_prev * rm
                dc_prev = dc * b_c[t]
                if use_mask:
                    dh_prev = dh_prev + dh * (1.0 - valid)
                    dc_prev = dc_prev + dc_carry * (1.0 - valid)
                return t - 1, dh_prev, dc_prev, dz_ta

            _, dh0, dc0, dz_ta = _time_major_reverse_loop(steps, back, (dh_last, dc_last, dz_ta))
            dz = dz_ta.stack()  # (T, [D,] B, 4u)

            # Weight gradients: a few large ops over all steps.
            hp = h_prev * rm[None] if use_rdrop else h_prev
            lead = tf.shape(h0)[:-2]  # () or (D,)
            hp_flat = tf.reshape(tf.transpose(hp, perm), tf.concat([lead, [-1, units]], 0))
            dz_flat = tf.reshape(tf.transpose(dz, perm), tf.concat([lead, [-1, 4 * units]], 0))
            d_kernel = tf.matmul(hp_flat, dz_flat, transpose_a=True)
            d_extra = []
            if use_peep:
                dz_i, dz_f, _, dz_o = tf.split(dz, 4, axis=-1)
                dp_i = tf.reduce_sum(dz_i * c_prev, axis=batch_axes)
                dp_f = tf.reduce_sum(dz_f * c_prev, axis=batch_axes)
                dp_o = tf.reduce_sum(dz_o * c_seq, axis=batch_axes)
                d_extra.append(tf.stack([dp_i, dp_f, dp_o], axis=-2))
            if use_mask:
                d_extra.append(tf.zeros_like(m))
            if use_rdrop:
                d_extra.append(tf.zeros_like(rm))
            return (tf.transpose(dz, perm), dh0, dc0, d_kernel, *d_extra)

        return (tf.transpose(h_seq, perm), h_last, c_last), grad

    h_seq, h_last, c_last = run(x_proj, h0, c0, kernel, *extras)
    if squeeze:
        return h_seq[None], h_last[None], c_last[None]
    return h_seq, h_last, c_last
