"""The fast whole-sequence path of the peephole LSTM: one loop, hand-written backward pass.

Why this exists: `keras.layers.RNN` runs the cell step by step and lets autodiff record every
small op of every step. Here the input projection `x·W + b` is done once for the whole sequence
before the loop (one large GEMM), the recurrence keeps only what it must (`h·U`, the gates and the
cell update) and stores only `c_t` and `h_t`. The backward pass is written by hand: it first
recomputes every gate for all steps at once (one large GEMM `h_{t-1}·U` plus elementwise ops),
folds everything that does not depend on the carried gradients into a few arrays, runs one
reverse loop of ~12 small ops per step to get the gate gradients `dZ`, and then computes the
weight gradients (`dU`, peepholes; `dW` and bias through autodiff of the hoisted projection) as a
few large operations over all steps. Memory is linear in the sequence length.

Everything carries a leading "direction" axis `D`: `D = 1` is a plain LSTM, `D = 2` runs the
forward and backward directions of a bidirectional layer in the same loop, so both recurrent
matmuls are one batched matmul per step.

Shapes (time-major, direction second, so that the loop indexes time without any transpose:
a transpose of the stacked projection alone was measured to cost more than the whole loop):
    x_proj:  (T, D, B, 4u)  input projection incl. bias, gate order [i, f, c, o]
    h0, c0:  (D, B, u)
    kernel:  (D, u, 4u)     recurrent kernel
    peep:    (D, 3, u)      peephole weights, rows [i, f, o] (or None)
    mask:    (T, D, B, 1)   1.0 where a step is valid, 0.0 where it is padding (or None)
    rec_mask:(D, B, u)      recurrent dropout mask applied to h_{t-1} (or None)
Returns:
    h_seq (T, D, B, u): the carried hidden state after every step (padding steps carry it over),
    h_T, c_T (D, B, u): final states.

Only the standard activations (sigmoid gates, tanh cell) are supported here: the backward pass
uses their closed-form derivatives. Other activations use the generic cell loop.
"""

from __future__ import annotations

import tensorflow as tf

_PARALLEL_ITERATIONS = 32  # lets the TensorArray writes of step t overlap step t+1


def _step_matmul(h, kernels):
    """([D,] B, u) x per-direction kernels -> ([D,] B, k).

    One plain 2-D MatMul per direction: on CPU a BatchMatMul of the same shapes is measured
    2.4x slower than two MatMuls (benchmarks/RESULTS.md), so the directions share the loop and
    every elementwise op, but not the matmul op.
    """
    if len(kernels) == 1 and h.shape.rank == 2:
        return tf.matmul(h, kernels[0])
    return tf.stack([tf.matmul(hd, kd) for hd, kd in zip(tf.unstack(h), kernels)])


def _seq_matmul(a, kernels):
    """(T, [D,] B, u) x per-direction kernels -> (T, [D,] B, k) as one large GEMM each."""

    def flat_matmul(x, w):
        flat = tf.matmul(tf.reshape(x, [-1, tf.shape(x)[-1]]), w)
        return tf.reshape(flat, tf.concat([tf.shape(x)[:-1], tf.shape(w)[-1:]], 0))

    if a.shape.rank == 3:
        return flat_matmul(a, kernels[0])
    return tf.stack([flat_matmul(ad, kd) for ad, kd in zip(tf.unstack(a, axis=1), kernels)], 1)


def _forward(zx, h0, c0, kernel, p, mt, rm):
    """The recurrence, time-major; returns (c_seq, h_seq, h_T, c_T). None = feature unused."""
    steps = tf.shape(zx)[0]
    kernels = [kernel] if kernel.shape.rank == 2 else tf.unstack(kernel)
    if p is not None:
        p_i, p_f, p_o = (p[..., k : k + 1, :] for k in range(3))  # ([D,] 1, u) each

    def step(t, h, c, c_ta, h_ta):
        hr = h if rm is None else h * rm
        z_i, z_f, z_c, z_o = tf.split(zx[t] + _step_matmul(hr, kernels), 4, axis=-1)
        if p is not None:
            z_i = z_i + c * p_i
            z_f = z_f + c * p_f
        c_new = tf.sigmoid(z_f) * c + tf.sigmoid(z_i) * tf.tanh(z_c)
        if p is not None:
            z_o = z_o + c_new * p_o
        h_new = tf.sigmoid(z_o) * tf.tanh(c_new)
        if mt is not None:
            valid = mt[t]
            h_new = h + valid * (h_new - h)
            c_new = c + valid * (c_new - c)
        return t + 1, h_new, c_new, c_ta.write(t, c_new), h_ta.write(t, h_new)

    _, h_last, c_last, c_ta, h_ta = tf.while_loop(
        lambda t, *_: t < steps,
        step,
        (tf.constant(0), h0, c0, tf.TensorArray(zx.dtype, steps), tf.TensorArray(zx.dtype, steps)),
        parallel_iterations=_PARALLEL_ITERATIONS,
    )
    return c_ta.stack(), h_ta.stack(), h_last, c_last


def _reverse_loop(step_fn, steps, dh_last, dc_last, dtype):
    """Runs `step_fn(t, dh_carry, dc_carry) -> (dz_t, dh_{t-1}, dc_{t-1})` for t = T-1 .. 0.

    Returns dz (T, [D,] B, 4u) and the gradients of the initial states.
    """

    def back(t, dh_carry, dc_carry, dz_ta):
        dz, dh_prev, dc_prev = step_fn(t, dh_carry, dc_carry)
        return t - 1, dh_prev, dc_prev, dz_ta.write(t, dz)

    _, dh0, dc0, dz_ta = tf.while_loop(
        lambda t, *_: t >= 0,
        back,
        (steps - 1, dh_last, dc_last, tf.TensorArray(dtype, steps)),
        parallel_iterations=_PARALLEL_ITERATIONS,
    )
    return dz_ta.stack(), dh0, dc0


def _incoming(t, dh_seq, dh_carry, dc_carry, mt):
    """Gradients arriving at step t: (dh, and dh, dc as seen by a valid step; 0 at padding)."""
    dh = dh_seq[t] + dh_carry
    if mt is None:
        return dh, dh, dc_carry
    return dh, dh * mt[t], dc_carry * mt[t]


def _to_previous_step(dz, dc_through, dh, dh_v, dc_carry, dc_v, kernels_t, rm, mt):
    """Gradients reaching h_{t-1} and c_{t-1}: through the gates, and past a padded step."""
    dh_prev = _step_matmul(dz, kernels_t)
    if rm is not None:
        dh_prev = dh_prev * rm
    if mt is None:
        return dh_prev, dc_through
    # At a padded step the state was carried over: its gradient passes through unchanged.
    return dh_prev + (dh - dh_v), dc_through + (dc_carry - dc_v)


def _backward_loop(dh_seq, dh_last, dc_last, a_dc, b_all, b_c, kernels_t, mt, rm):
    """The reverse loop: carried gradients -> gate gradients dz (T, [D,] B, 4u), dh0, dc0."""
    steps = tf.shape(dh_seq)[0]

    def back(t, dh_carry, dc_carry):
        dh, dh_v, dc_v = _incoming(t, dh_seq, dh_carry, dc_carry, mt)
        dc = dc_v + dh_v * a_dc[t]
        dz = tf.concat([dc, dc, dc, dh_v], axis=-1) * b_all[t]
        dh_prev, dc_prev = _to_previous_step(
            dz, dc * b_c[t], dh, dh_v, dc_carry, dc_v, kernels_t, rm, mt
        )
        return dz, dh_prev, dc_prev

    return _reverse_loop(back, steps, dh_last, dc_last, dh_seq.dtype)


def _backward_loop_recompute(
    zx, h0, c0, kernels, kernels_t, p, mt, rm, c_seq, h_seq, dh_seq, dh_last, dc_last
):
    """The reverse loop recomputing each step's gates inside the loop (for XLA).

    Stores nothing per step but the gate gradients: memory stays at the forward's own
    (zx, c, h) plus dz. Under XLA the ~50 small ops of a step fuse into a few kernels.
    Returns dz (T, [D,] B, 4u), dh0, dc0.
    """
    steps = tf.shape(zx)[0]
    if p is not None:
        p_i, p_f, p_o = (p[..., k : k + 1, :] for k in range(3))

    def back(t, dh_carry, dc_carry):
        first = t > 0
        prev = tf.maximum(t - 1, 0)
        h_prev = tf.where(first, h_seq[prev], h0)
        c_prev = tf.where(first, c_seq[prev], c0)
        c_t = c_seq[t]
        hr = h_prev if rm is None else h_prev * rm
        z_i, z_f, z_c, z_o = tf.split(zx[t] + _step_matmul(hr, kernels), 4, axis=-1)
        if p is not None:
            z_i = z_i + c_prev * p_i
            z_f = z_f + c_prev * p_f
            z_o = z_o + c_t * p_o
        i, f, o, g = tf.sigmoid(z_i), tf.sigmoid(z_f), tf.sigmoid(z_o), tf.tanh(z_c)
        tanh_c = tf.tanh(c_t)
        dh, dh_v, dc_v = _incoming(t, dh_seq, dh_carry, dc_carry, mt)
        dz_o = dh_v * tanh_c * o * (1.0 - o)
        dc = dc_v + dh_v * o * (1.0 - tanh_c * tanh_c)
        if p is not None:
            dc = dc + dz_o * p_o
        dz_i = dc * g * i * (1.0 - i)
        dz_f = dc * c_prev * f * (1.0 - f)
        dz = tf.concat([dz_i, dz_f, dc * i * (1.0 - g * g), dz_o], axis=-1)
        dc_through = dc * f if p is None else dc * f + dz_i * p_i + dz_f * p_f
        dh_prev, dc_prev = _to_previous_step(
            dz, dc_through, dh, dh_v, dc_carry, dc_v, kernels_t, rm, mt
        )
        return dz, dh_prev, dc_prev

    return _reverse_loop(back, steps, dh_last, dc_last, zx.dtype)


def _backward_precomputed(
    zx, hp, c_prev, c_seq, p, mt, rm, kernels, kernels_t, dh_seq, dh_last, dc_last
):
    """Graph-mode backward: gate factors for all steps at once, then a short reverse loop."""
    # Recompute the gates of every step at once.
    z_i, z_f, z_c, z_o = tf.split(zx + _seq_matmul(hp, kernels), 4, axis=-1)
    if p is not None:
        p_i, p_f, p_o = (p[..., k : k + 1, :] for k in range(3))
        z_i = z_i + c_prev * p_i
        z_f = z_f + c_prev * p_f
        z_o = z_o + c_seq * p_o
    i, f, o, g = tf.sigmoid(z_i), tf.sigmoid(z_f), tf.sigmoid(z_o), tf.tanh(z_c)
    tanh_c = tf.tanh(c_seq)
    # Everything that does not depend on the carried gradients, for all steps at once:
    #   dz_o = dh * a_o;  dc = dc_carry + dh * a_dc;  dz_[i,f,c] = dc * b_[i,f,g];
    #   dc_{t-1} = dc * b_c.
    a_o = tanh_c * o * (1.0 - o)
    a_dc = o * (1.0 - tanh_c * tanh_c)
    b_i = g * i * (1.0 - i)
    b_f = c_prev * f * (1.0 - f)
    b_c = f
    if p is not None:
        a_dc = a_dc + a_o * p_o
        b_c = b_c + b_i * p_i + b_f * p_f
    b_all = tf.concat([b_i, b_f, i * (1.0 - g * g), a_o], axis=-1)
    return _backward_loop(dh_seq, dh_last, dc_last, a_dc, b_all, b_c, kernels_t, mt, rm)


def _backward(
    zx, h0, c0, kernel, p, mt, rm, c_seq, h_seq, dh_seq, dh_last, dc_last, jit_compile=False
):
    """Gradients of the recurrence; returns (dz, dh0, dc0, d_kernel, d_peep or None).

    Graph mode precomputes every gate-dependent factor for all steps at once (few large ops,
    a short loop body); XLA mode recomputes the gates inside the loop, which XLA fuses, and so
    keeps no (T, B, ·) temporaries.
    """
    squeeze = zx.shape.rank == 3
    c_prev = tf.concat([c0[None], c_seq[:-1]], axis=0)
    h_prev = tf.concat([h0[None], h_seq[:-1]], axis=0)
    hp = h_prev if rm is None else h_prev * rm
    kernels = [kernel] if squeeze else tf.unstack(kernel)
    kernels_t = [tf.transpose(k) for k in kernels]  # (4u, u) each
    if jit_compile:
        dz, dh0, dc0 = _backward_loop_recompute_xla(
            zx, h0, c0, kernels, kernels_t, p, mt, rm, c_seq, h_seq, dh_seq, dh_last, dc_last
        )
    else:
        dz, dh0, dc0 = _backward_precomputed(
            zx, hp, c_prev, c_seq, p, mt, rm, kernels, kernels_t, dh_seq, dh_last, dc_last
        )

    # Weight gradients: a few large ops over all steps (one GEMM per direction).
    units = tf.shape(h0)[-1]

    def d_kernel_of(hp_d, dz_d):
        return tf.matmul(
            tf.reshape(hp_d, [-1, units]), tf.reshape(dz_d, [-1, 4 * units]), transpose_a=True
        )

    if squeeze:
        d_kernel = d_kernel_of(hp, dz)
    else:
        d_kernel = tf.stack(
            [d_kernel_of(a, b) for a, b in zip(tf.unstack(hp, axis=1), tf.unstack(dz, axis=1))]
        )
    d_peep = None
    if p is not None:
        batch_axes = [0, 1] if squeeze else [0, 2]
        dz_i, dz_f, _, dz_o = tf.split(dz, 4, axis=-1)
        dp_i = tf.reduce_sum(dz_i * c_prev, axis=batch_axes)
        dp_f = tf.reduce_sum(dz_f * c_prev, axis=batch_axes)
        dp_o = tf.reduce_sum(dz_o * c_seq, axis=batch_axes)
        d_peep = tf.stack([dp_i, dp_f, dp_o], axis=-2)
    return dz, dh0, dc0, d_kernel, d_peep


# XLA-compiled twins of the two loops: each loop becomes one compiled computation, removing the
# per-op dispatch cost of the graph executor. Safe from the quadratic cost of XLA over RNN
# autodiff because the backward pass here is a plain loop, not a differentiated one. The large
# GEMMs stay outside, on TensorFlow's multi-threaded kernels. Compiled once per input shape.
_forward_xla = tf.function(_forward, jit_compile=True, reduce_retracing=False)
_backward_loop_recompute_xla = tf.function(
    _backward_loop_recompute, jit_compile=True, reduce_retracing=False
)


def fused_peephole_lstm(
    x_proj, h0, c0, kernel, peep=None, mask=None, rec_mask=None, jit_compile=False
):
    """Runs the LSTM recurrence over `x_proj`; see the module docstring for shapes.

    Args:
        jit_compile: compile the forward and backward loops with XLA (one compile per input
            shape; pays off for repeated shapes, e.g. bucketed batches).
    """
    use_peep = peep is not None
    use_mask = mask is not None
    use_rdrop = rec_mask is not None
    extras = [t for t in (peep, mask, rec_mask) if t is not None]
    forward = _forward_xla if jit_compile else _forward

    # With one direction the direction axis is dropped inside (free reshapes), so that every
    # step runs a plain 2-D matmul instead of a batched one.
    squeeze = x_proj.shape[1] == 1
    if squeeze:
        x_proj = tf.squeeze(x_proj, 1)
        h0, c0, kernel = h0[0], c0[0], kernel[0]
        extras = [tf.squeeze(e, 1) if e is mask else e[0] for e in extras]

    @tf.custom_gradient
    def run(zx, h0, c0, kernel, *extra):
        # The gradient is `grad` below: keep the tape from recording the forward ops (in eager
        # mode it would otherwise keep every intermediate alive, and differentiate XLA calls).
        zx, h0, c0, kernel = (tf.stop_gradient(t) for t in (zx, h0, c0, kernel))
        extra = [tf.stop_gradient(t) for t in extra]
        it = iter(extra)
        p = next(it) if use_peep else None
        mt = next(it) if use_mask else None
        rm = next(it) if use_rdrop else None
        c_seq, h_seq, h_last, c_last = forward(zx, h0, c0, kernel, p, mt, rm)

        def grad(dh_seq, dh_last, dc_last, variables=None):
            # Outputs nobody used arrive as None.
            dh_seq = tf.zeros_like(h_seq) if dh_seq is None else dh_seq
            dh_last = tf.zeros_like(h0) if dh_last is None else dh_last
            dc_last = tf.zeros_like(c0) if dc_last is None else dc_last
            dz, dh0, dc0, d_kernel, d_peep = _backward(
                zx,
                h0,
                c0,
                kernel,
                p,
                mt,
                rm,
                c_seq,
                h_seq,
                dh_seq,
                dh_last,
                dc_last,
                jit_compile=jit_compile,
            )
            d_extra = [d_peep] if use_peep else []
            if use_mask:
                d_extra.append(tf.zeros_like(mt))
            if use_rdrop:
                d_extra.append(tf.zeros_like(rm))
            return (dz, dh0, dc0, d_kernel, *d_extra)

        return (h_seq, h_last, c_last), grad

    h_seq, h_last, c_last = run(x_proj, h0, c0, kernel, *extras)
    if squeeze:
        return tf.expand_dims(h_seq, 1), h_last[None], c_last[None]
    return h_seq, h_last, c_last
