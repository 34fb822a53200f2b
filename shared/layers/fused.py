"""The fast whole-sequence path of the peephole LSTM: one loop, hand-written backward pass.

Why this exists: `keras.layers.RNN` runs the cell step by step and lets autodiff record every
small op of every step. Here the input projection `x·W + b` is done once for the whole sequence
before the loop (one large GEMM); the recurrence does one small matmul `h·U` and the gate math per
step and stores the gate activations `[i, f, g, o]_t`, `c_t` and `h_t`. The backward pass is
written by hand: it never recomputes `h·U` or a gate (that is what the activations are kept
for), runs one reverse loop of a few small ops and one matmul per step to get the gate gradients
`dZ`, and then computes the weight gradients (`dU`, peepholes; `dW` and bias through autodiff of
the hoisted projection) as a few large operations over all steps. Memory is linear in the
sequence length: the activations take the place of the input projection, which the backward
pass does not keep.

One call runs one direction. A bidirectional layer calls this once per direction: the two loops
are independent ops that TensorFlow runs concurrently on the two cores, which measured faster
than one loop carrying both directions (benchmarks/RESULTS.md).

Shapes (time-major, so that the loop indexes time without any transpose):
    x_proj:  (T, B, 4u)  input projection incl. bias, gate order [i, f, c, o]
    h0, c0:  (B, u)
    kernel:  (u, 4u)     recurrent kernel
    peep:    (3, u)      peephole weights, rows [i, f, o] (or None)
    mask:    (T, B, 1)   1.0 where a step is valid, 0.0 where it is padding (or None)
    rec_mask:(B, u)      recurrent dropout mask applied to h_{t-1} (or None)
Returns:
    h_seq (T, B, u): the carried hidden state after every step (padding steps carry it over),
    h_T, c_T (B, u): final states.

Only the standard activations (sigmoid gates, tanh cell) are supported here: the backward pass
uses their closed-form derivatives. Other activations use the generic cell loop.
"""

from __future__ import annotations

import tensorflow as tf

_PARALLEL_ITERATIONS = 32  # lets the TensorArray writes of step t overlap step t+1


def _peep_rows(p):
    """(3, u) peephole weights -> three (1, u) rows [i, f, o]."""
    return p[0:1], p[1:2], p[2:3]


def _forward(zx, h0, c0, kernel, p, mt, rm):
    """The recurrence, time-major; returns (a_seq, c_seq, h_seq, h_T, c_T). None = unused.

    a_seq (T, B, 4u) holds every step's gate activations [i, f, g, o] for the backward pass.
    """
    steps = tf.shape(zx)[0]
    if p is not None:
        p_i, p_f, p_o = _peep_rows(p)

    def step(t, h, c, a_ta, c_ta, h_ta):
        hr = h if rm is None else h * rm
        z = zx[t] + tf.matmul(hr, kernel)
        z_i, z_f, z_c, z_o = tf.split(z, 4, axis=-1)
        if p is not None:
            z_i = z_i + c * p_i
            z_f = z_f + c * p_f
        i, f, g = tf.sigmoid(z_i), tf.sigmoid(z_f), tf.tanh(z_c)
        c_new = f * c + i * g
        if p is not None:
            z_o = z_o + c_new * p_o
        o = tf.sigmoid(z_o)
        h_new = o * tf.tanh(c_new)
        acts = tf.concat([i, f, g, o], axis=-1)
        if mt is not None:
            valid = mt[t]
            h_new = h + valid * (h_new - h)
            c_new = c + valid * (c_new - c)
        return t + 1, h_new, c_new, a_ta.write(t, acts), c_ta.write(t, c_new), h_ta.write(t, h_new)

    arrays = tuple(tf.TensorArray(zx.dtype, steps) for _ in range(3))
    _, h_last, c_last, a_ta, c_ta, h_ta = tf.while_loop(
        lambda t, *_: t < steps,
        step,
        (tf.constant(0), h0, c0, *arrays),
        parallel_iterations=_PARALLEL_ITERATIONS,
    )
    return a_ta.stack(), c_ta.stack(), h_ta.stack(), h_last, c_last


def _gate_factors(acts, c_prev, c_t, p):
    """Everything of the backward step that does not depend on the carried gradients.

    With i, f, g, o the gate activations of a step (`acts`, concatenated):
        dz_o = dh · a_o;   dc = dc_carry + dh · a_dc;   dz_[i,f,c] = dc · b_[i,f,g];
        dc_{t-1} = dc · b_c.
    Returns (a_dc, b_all = [b_i, b_f, b_g, a_o] concatenated like z, b_c). Works on one step
    (B, ·) or on all steps at once (T, B, ·).
    """
    i, f, g, o = tf.split(acts, 4, axis=-1)
    tanh_c = tf.tanh(c_t)
    a_o = tanh_c * o * (1.0 - o)
    a_dc = o * (1.0 - tanh_c * tanh_c)
    b_i = g * i * (1.0 - i)
    b_f = c_prev * f * (1.0 - f)
    b_c = f
    if p is not None:
        p_i, p_f, p_o = _peep_rows(p)
        a_dc = a_dc + a_o * p_o
        b_c = b_c + b_i * p_i + b_f * p_f
    return a_dc, tf.concat([b_i, b_f, i * (1.0 - g * g), a_o], axis=-1), b_c


def _backward_step(dh_in, dh_carry, dc_carry, a_dc, b_all, b_c, kernel_t, rm, valid):
    """One reverse step: (dz_t, dh_{t-1}, dc_{t-1}) from the gradients arriving at step t.

    `valid` (B, 1) or None: at a padded step the state was carried over, so the incoming
    gradients pass through unchanged and dz is zero.
    """
    dh = dh_in + dh_carry
    dh_v, dc_v = (dh, dc_carry) if valid is None else (dh * valid, dc_carry * valid)
    dc = dc_v + dh_v * a_dc
    dz = tf.concat([dc, dc, dc, dh_v], axis=-1) * b_all
    dh_prev = tf.matmul(dz, kernel_t)
    if rm is not None:
        dh_prev = dh_prev * rm
    dc_prev = dc * b_c
    if valid is not None:
        dh_prev = dh_prev + (dh - dh_v)
        dc_prev = dc_prev + (dc_carry - dc_v)
    return dz, dh_prev, dc_prev


def _reverse_loop(step_fn, steps, dh_last, dc_last, dtype):
    """Runs `step_fn(t, dh_carry, dc_carry) -> (dz_t, dh_{t-1}, dc_{t-1})` for t = T-1 .. 0.

    Returns dz (T, B, 4u) and the gradients of the initial states.
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


def _backward_loop_precomputed(a_seq, c_prev, c_seq, p, mt, rm, kernel_t, dh_seq, dh_last, dc_last):
    """Graph-mode backward: gate factors for all steps at once, then a short reverse loop."""
    a_dc, b_all, b_c = _gate_factors(a_seq, c_prev, c_seq, p)

    def back(t, dh_carry, dc_carry):
        valid = None if mt is None else mt[t]
        return _backward_step(
            dh_seq[t], dh_carry, dc_carry, a_dc[t], b_all[t], b_c[t], kernel_t, rm, valid
        )

    return _reverse_loop(back, tf.shape(a_seq)[0], dh_last, dc_last, a_seq.dtype)


def _backward_loop_per_step(a_seq, c0, c_seq, p, mt, rm, kernel_t, dh_seq, dh_last, dc_last):
    """The reverse loop computing each step's gate factors inside the loop (for XLA).

    Keeps no (T, B, ·) temporaries besides dz; XLA fuses a step's elementwise ops.
    """

    def back(t, dh_carry, dc_carry):
        c_prev = tf.where(t > 0, c_seq[tf.maximum(t - 1, 0)], c0)
        a_dc, b_all, b_c = _gate_factors(a_seq[t], c_prev, c_seq[t], p)
        valid = None if mt is None else mt[t]
        return _backward_step(dh_seq[t], dh_carry, dc_carry, a_dc, b_all, b_c, kernel_t, rm, valid)

    return _reverse_loop(back, tf.shape(a_seq)[0], dh_last, dc_last, a_seq.dtype)


# XLA-compiled twins of the two loops: each loop becomes one compiled computation, removing the
# per-op dispatch cost of the graph executor. Safe from the quadratic cost of XLA over RNN
# autodiff because the backward pass here is a plain loop, not a differentiated one. The large
# GEMMs stay outside, on TensorFlow's multi-threaded kernels. Compiled once per input shape.
_forward_xla = tf.function(_forward, jit_compile=True, reduce_retracing=False)
_backward_loop_per_step_xla = tf.function(
    _backward_loop_per_step, jit_compile=True, reduce_retracing=False
)


def _backward(a_seq, h0, c0, kernel, p, mt, rm, c_seq, h_seq, dh_seq, dh_last, dc_last, xla):
    """Gradients of the recurrence; returns (dz, dh0, dc0, d_kernel, d_peep or None)."""
    c_prev = tf.concat([c0[None], c_seq[:-1]], axis=0)
    kernel_t = tf.transpose(kernel)  # (4u, u)
    if xla:
        dz, dh0, dc0 = _backward_loop_per_step_xla(
            a_seq, c0, c_seq, p, mt, rm, kernel_t, dh_seq, dh_last, dc_last
        )
    else:
        dz, dh0, dc0 = _backward_loop_precomputed(
            a_seq, c_prev, c_seq, p, mt, rm, kernel_t, dh_seq, dh_last, dc_last
        )

    # Weight gradients: a few large ops over all steps.
    units = tf.shape(h0)[-1]
    h_prev = tf.concat([h0[None], h_seq[:-1]], axis=0)
    hp = h_prev if rm is None else h_prev * rm
    d_kernel = tf.matmul(
        tf.reshape(hp, [-1, units]), tf.reshape(dz, [-1, 4 * units]), transpose_a=True
    )
    d_peep = None
    if p is not None:
        dz_i, dz_f, _, dz_o = tf.split(dz, 4, axis=-1)
        dp_i = tf.reduce_sum(dz_i * c_prev, axis=[0, 1])
        dp_f = tf.reduce_sum(dz_f * c_prev, axis=[0, 1])
        dp_o = tf.reduce_sum(dz_o * c_seq, axis=[0, 1])
        d_peep = tf.stack([dp_i, dp_f, dp_o])
    return dz, dh0, dc0, d_kernel, d_peep


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
        a_seq, c_seq, h_seq, h_last, c_last = forward(zx, h0, c0, kernel, p, mt, rm)

        def grad(dh_seq, dh_last, dc_last, variables=None):
            # Outputs nobody used arrive as None.
            dh_seq = tf.zeros_like(h_seq) if dh_seq is None else dh_seq
            dh_last = tf.zeros_like(h0) if dh_last is None else dh_last
            dc_last = tf.zeros_like(c0) if dc_last is None else dc_last
            dz, dh0, dc0, d_kernel, d_peep = _backward(
                a_seq,
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
                jit_compile,
            )
            d_extra = [d_peep] if use_peep else []
            if use_mask:
                d_extra.append(tf.zeros_like(mt))
            if use_rdrop:
                d_extra.append(tf.zeros_like(rm))
            return (dz, dh0, dc0, d_kernel, *d_extra)

        return (h_seq, h_last, c_last), grad

    return run(x_proj, h0, c0, kernel, *extras)
