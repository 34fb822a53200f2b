"""The fast whole-sequence path of the peephole LSTM: one loop, hand-written backward pass.

Why this exists: `keras.layers.RNN` runs the cell step by step and lets autodiff record every
small op of every step, including the input matmul `x_t·W`. Here the sequence is cut into chunks
of `CHUNK` steps. Per chunk, the input projection `x·W + b` is one large GEMM; the recurrence does
one small matmul `h·U` and the gate math per step and stores the gate activations
`[i, f, g, o]_t`, `c_t` and `h_t`. The backward pass is written by hand: per chunk (last to
first) one reverse loop of a few small ops and one matmul per step gives the gate gradients
`dZ` (no gate and no `h·U` is recomputed: that is what the activations are kept for), then the
chunk's weight gradients `dW`, `dU`, bias, peepholes and the input gradient `dx` are large GEMMs
and reductions. The chunks are iterations of an outer loop, so TensorFlow runs one chunk's GEMMs
while the latency-bound loop of the next chunk runs (measured: the GEMMs then cost little wall
time), and the per-chunk gradients `dZ` never exist for the whole sequence at once. Memory is
linear in the sequence length.

With `jit_compile` the per-chunk loops are XLA-compiled (one computation per loop, no per-op
dispatch) for fixed `(CHUNK, B, ·)` shapes: one compilation per batch size and width, whatever
the sequence length (shorter chunks are zero-padded; the loop stops at the real length).

One call runs one direction. A bidirectional layer calls this once per direction: the two loops
are independent ops that TensorFlow runs concurrently on the two cores, which measured faster
than one loop carrying both directions (benchmarks/RESULTS.md).

Shapes (time-major, so that the loop indexes time without any transpose):
    x:       (T, B, I)   inputs (after input dropout)
    kernel:  (I, 4u), bias (4u,) or None; gate order [i, f, c, o] as keras.layers.LSTMCell
    h0, c0:  (B, u)
    recurrent_kernel: (u, 4u)
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
CHUNK = 16  # steps per chunk of the outer loop (see `fused_peephole_lstm`)


def _peep_rows(p):
    """(3, u) peephole weights -> three (1, u) rows [i, f, o]."""
    return p[0:1], p[1:2], p[2:3]


def _forward(zx, h0, c0, kernel, p, mt, rm, steps):
    """The recurrence over the first `steps` of a chunk (C, B, 4u), time-major.

    Returns (a_seq, c_seq, h_seq, h_last, c_last); None = feature unused. a_seq (C, B, 4u)
    holds every step's gate activations [i, f, g, o] for the backward pass; rows from `steps`
    on are zero.
    """
    size = tf.shape(zx)[0]
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

    arrays = tuple(
        tf.TensorArray(zx.dtype, size, element_shape=shape)
        for shape in (zx.shape[1:], h0.shape, h0.shape)
    )
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


def _reverse_loop(step_fn, size, steps, dh_last, dc_last):
    """Runs `step_fn(t, dh_carry, dc_carry) -> (dz_t, dh_{t-1}, dc_{t-1})` for t = steps-1 .. 0.

    Returns dz (size, B, 4u) (zero from `steps` on) and the gradients of the initial states.
    """
    units = dh_last.shape[-1]
    dz_shape = dh_last.shape[:-1].concatenate([None if units is None else 4 * units])

    def back(t, dh_carry, dc_carry, dz_ta):
        dz, dh_prev, dc_prev = step_fn(t, dh_carry, dc_carry)
        return t - 1, dh_prev, dc_prev, dz_ta.write(t, dz)

    _, dh0, dc0, dz_ta = tf.while_loop(
        lambda t, *_: t >= 0,
        back,
        (steps - 1, dh_last, dc_last, tf.TensorArray(dh_last.dtype, size, element_shape=dz_shape)),
        parallel_iterations=_PARALLEL_ITERATIONS,
    )
    return dz_ta.stack(), dh0, dc0


def _backward_loop_precomputed(
    a_seq, c_in, c_seq, p, mt, rm, kernel_t, dh_seq, dh_last, dc_last, steps
):
    """Graph-mode backward: gate factors for all steps at once, then a short reverse loop.

    `c_in` is the cell state entering the chunk; returns (dz, dh_in, dc_in).
    """
    c_prev = tf.concat([c_in[None], c_seq[:-1]], axis=0)
    a_dc, b_all, b_c = _gate_factors(a_seq, c_prev, c_seq, p)

    def back(t, dh_carry, dc_carry):
        valid = None if mt is None else mt[t]
        return _backward_step(
            dh_seq[t], dh_carry, dc_carry, a_dc[t], b_all[t], b_c[t], kernel_t, rm, valid
        )

    return _reverse_loop(back, tf.shape(a_seq)[0], steps, dh_last, dc_last)


def _backward_loop_per_step(
    a_seq, c_in, c_seq, p, mt, rm, kernel_t, dh_seq, dh_last, dc_last, steps
):
    """The reverse loop computing each step's gate factors inside the loop (for XLA).

    Keeps no (T, B, ·) temporaries besides dz; XLA fuses a step's elementwise ops.
    """

    def back(t, dh_carry, dc_carry):
        c_prev = tf.where(t > 0, c_seq[tf.maximum(t - 1, 0)], c_in)
        a_dc, b_all, b_c = _gate_factors(a_seq[t], c_prev, c_seq[t], p)
        valid = None if mt is None else mt[t]
        return _backward_step(dh_seq[t], dh_carry, dc_carry, a_dc, b_all, b_c, kernel_t, rm, valid)

    return _reverse_loop(back, tf.shape(a_seq)[0], steps, dh_last, dc_last)


# XLA-compiled twins of the chunk loops: each loop becomes one compiled computation, removing the
# per-op dispatch cost of the graph executor. Safe from the quadratic cost of XLA over RNN
# autodiff because the backward pass here is a plain loop, not a differentiated one. The large
# GEMMs stay outside, on TensorFlow's multi-threaded kernels. Compiled once per chunk shape.
_forward_xla = tf.function(_forward, jit_compile=True, reduce_retracing=False)
_backward_loop_per_step_xla = tf.function(
    _backward_loop_per_step, jit_compile=True, reduce_retracing=False
)


def _pad_rows(a, size):
    """Zero-pads the leading axis of `a` to `size` rows (a no-op when it has them)."""
    return tf.pad(a, [[0, size - tf.shape(a)[0]]] + [[0, 0]] * (a.shape.rank - 1))


def _flat_matmul(a, b, **kwargs):
    """(C, B, k) x (k, m) -> (C, B, m) as one GEMM."""
    out = tf.matmul(tf.reshape(a, [-1, tf.shape(a)[-1]]), b, **kwargs)
    return tf.reshape(out, tf.concat([tf.shape(a)[:-1], tf.shape(out)[-1:]], 0))


def _rows_t_matmul(a, b):
    """sum over (C, B) of a^T b: (C, B, k), (C, B, m) -> (k, m) as one GEMM."""
    return tf.matmul(
        tf.reshape(a, [-1, tf.shape(a)[-1]]), tf.reshape(b, [-1, tf.shape(b)[-1]]), transpose_a=True
    )


def fused_peephole_lstm(
    x,
    kernel,
    bias,
    h0,
    c0,
    recurrent_kernel,
    peep=None,
    mask=None,
    rec_mask=None,
    jit_compile=False,
    chunk=None,
    exportable=True,
):
    """Runs the LSTM over time-major inputs `x` (T, B, I); see the module docstring.

    The sequence is processed in chunks of `chunk` steps. Per chunk the forward pass projects the
    inputs (one GEMM) and runs the loop; the backward pass runs the reverse loop and then the
    chunk's weight-gradient GEMMs. Chunks are steps of an outer loop that lets TensorFlow run
    the GEMMs of one chunk while the (latency-bound) loop of the next one runs, and the XLA
    loops see fixed chunk shapes: one compilation per (batch, units), whatever the length.

    Args:
        x: (T, B, I) inputs (after input dropout). kernel (I, 4u), bias (4u,) or None.
        h0, c0: (B, u). recurrent_kernel: (u, 4u). peep, mask, rec_mask: see module docstring.
        jit_compile: compile the per-chunk forward and backward loops with XLA.
        chunk: steps per chunk (default: the module's `CHUNK`).
        exportable: keep what the backward pass needs as plain tensors (one extra copy of the
            stored activations at the end of the forward pass) so that a SavedModel can
            serialise the gradient function; False keeps the per-chunk lists themselves
            (less peak memory; for training steps, which are not exported).

    Returns:
        h_seq (T, B, u), h_T, c_T.
    """
    chunk = CHUNK if chunk is None else int(chunk)
    extras = {"bias": bias, "peep": peep, "mask": mask, "rec_mask": rec_mask}
    names = [k for k, v in extras.items() if v is not None]
    forward = _forward_xla if jit_compile else _forward
    backward_loop = _backward_loop_per_step_xla if jit_compile else _backward_loop_precomputed

    @tf.custom_gradient
    def run(x, kernel, h0, c0, u_kernel, *extra):
        # The gradient is `grad` below: keep the tape from recording the forward ops (in eager
        # mode it would otherwise keep every intermediate alive, and differentiate XLA calls).
        x, kernel, h0, c0, u_kernel = (tf.stop_gradient(t) for t in (x, kernel, h0, c0, u_kernel))
        opt = dict(zip(names, (tf.stop_gradient(t) for t in extra)))
        b, p, mt, rm = (opt.get(k) for k in ("bias", "peep", "mask", "rec_mask"))
        total = tf.shape(x)[0]
        n = (total + chunk - 1) // chunk

        def rows(a, k):
            """Chunk k of a (T, ...) tensor: (steps_k, ...)."""
            return a[k * chunk : tf.minimum(total, (k + 1) * chunk)]

        def lists(*shape):
            # infer_shape=False: in eager mode the last chunk may be shorter.
            return tf.TensorArray(
                x.dtype, n, infer_shape=False, element_shape=tf.TensorShape(shape)
            )

        def loop_in(a):
            """XLA loops take fixed (chunk, ...) shapes: one compilation for every length."""
            return _pad_rows(a, chunk) if jit_compile else a

        def loop_out(a, steps):
            return a[:steps] if jit_compile else a

        state = h0.shape  # (B, u)
        acts = state[:-1].concatenate([None if state[-1] is None else 4 * state[-1]])

        def fwd_chunk(k, h, c, h_in, c_in, a_l, c_l, h_l):
            x_k = rows(x, k)
            steps = tf.shape(x_k)[0]
            zx = _flat_matmul(x_k, kernel)
            if b is not None:
                zx = zx + b
            mk = None if mt is None else loop_in(rows(mt, k))
            a_k, c_k, h_k, h_new, c_new = forward(loop_in(zx), h, c, u_kernel, p, mk, rm, steps)
            # A compiled function traced earlier for a less specific shape may serve this call.
            h_new.set_shape(h.shape)
            c_new.set_shape(c.shape)
            return (
                k + 1,
                h_new,
                c_new,
                h_in.write(k, h),
                c_in.write(k, c),
                a_l.write(k, loop_out(a_k, steps)),
                c_l.write(k, loop_out(c_k, steps)),
                h_l.write(k, loop_out(h_k, steps)),
            )

        _, h_last, c_last, h_in, c_in, a_l, c_l, h_l = tf.while_loop(
            lambda k, *_: k < n,
            fwd_chunk,
            (
                tf.constant(0),
                h0,
                c0,
                lists(*state),
                lists(*state),
                lists(None, *acts),
                lists(None, *state),
                lists(None, *state),
            ),
            parallel_iterations=2,
        )
        h_seq = h_l.concat()
        if exportable:
            # Plain tensors, not the lists: a SavedModel cannot keep the gradient function's
            # captures of loop-carried list handles.
            a_seq, c_seq, h_in, c_in = a_l.concat(), c_l.concat(), h_in.stack(), c_in.stack()

        def saved(k):
            """Chunk k's stored (acts, c, h, h entering, c entering)."""
            if exportable:
                return rows(a_seq, k), rows(c_seq, k), rows(h_seq, k), h_in[k], c_in[k]
            return a_l.read(k), c_l.read(k), h_l.read(k), h_in.read(k), c_in.read(k)

        def grad(dh_seq, dh_last, dc_last, variables=None):
            # Outputs nobody used arrive as None.
            dh_seq = tf.zeros_like(h_seq) if dh_seq is None else dh_seq
            dh_last = tf.zeros_like(h0) if dh_last is None else dh_last
            dc_last = tf.zeros_like(c0) if dc_last is None else dc_last
            u_t = tf.transpose(u_kernel)
            zeros = {
                "dW": tf.zeros_like(kernel),
                "dU": tf.zeros_like(u_kernel),
                "db": None if b is None else tf.zeros_like(b),
                "dp": None if p is None else tf.zeros_like(p),
            }
            acc_keys = [k for k, v in zeros.items() if v is not None]

            def bwd_chunk(k, dh_carry, dc_carry, dx_l, *acc):
                acc = dict(zip(acc_keys, acc))
                a_k, c_k, h_k, h_k_in, c_k_in = saved(k)
                steps = tf.shape(a_k)[0]
                mk = None if mt is None else loop_in(rows(mt, k))
                dz, dh_carry, dc_carry = backward_loop(
                    loop_in(a_k),
                    c_k_in,
                    loop_in(c_k),
                    p,
                    mk,
                    rm,
                    u_t,
                    loop_in(rows(dh_seq, k)),
                    dh_carry,
                    dc_carry,
                    steps,
                )
                dz = loop_out(dz, steps)
                dh_carry.set_shape(dh_last.shape)
                dc_carry.set_shape(dc_last.shape)
                # The chunk's weight gradients: large GEMMs, off the loop's critical path.
                hp = tf.concat([h_k_in[None], h_k[:-1]], axis=0)
                if rm is not None:
                    hp = hp * rm
                acc["dU"] = acc["dU"] + _rows_t_matmul(hp, dz)
                acc["dW"] = acc["dW"] + _rows_t_matmul(rows(x, k), dz)
                if b is not None:
                    acc["db"] = acc["db"] + tf.reduce_sum(dz, axis=[0, 1])
                if p is not None:
                    c_prev = tf.concat([c_k_in[None], c_k[:-1]], axis=0)
                    dz_i, dz_f, _, dz_o = tf.split(dz, 4, axis=-1)
                    acc["dp"] = acc["dp"] + tf.stack(
                        [
                            tf.reduce_sum(dz_i * c_prev, axis=[0, 1]),
                            tf.reduce_sum(dz_f * c_prev, axis=[0, 1]),
                            tf.reduce_sum(dz_o * c_k, axis=[0, 1]),
                        ]
                    )
                dx_l = dx_l.write(k, _flat_matmul(dz, kernel, transpose_b=True))
                return (k - 1, dh_carry, dc_carry, dx_l, *(acc[key] for key in acc_keys))

            out = tf.while_loop(
                lambda k, *_: k >= 0,
                bwd_chunk,
                (
                    n - 1,
                    dh_last,
                    dc_last,
                    lists(None, *x.shape[1:]),
                    *(zeros[key] for key in acc_keys),
                ),
                parallel_iterations=2,
            )
            _, dh0, dc0, dx_l = out[:4]
            acc = dict(zip(acc_keys, out[4:]))
            dx = dx_l.concat()
            d_extra = {
                "bias": acc.get("db"),
                "peep": acc.get("dp"),
                "mask": None if mt is None else tf.zeros_like(mt),
                "rec_mask": None if rm is None else tf.zeros_like(rm),
            }
            return (dx, acc["dW"], dh0, dc0, acc["dU"], *(d_extra[k] for k in names))

        return (h_seq, h_last, c_last), grad

    return run(x, kernel, h0, c0, recurrent_kernel, *(extras[k] for k in names))
