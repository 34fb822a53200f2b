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
linear in the sequence length. In inference (`keep_activations=False`) the stored activations
are dropped after the forward pass; a gradient of such a call recomputes them.

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
    h_seq (T, B, u): the carried hidden state after every step (padding steps carry it over;
    None with `return_sequences=False`), h_T, c_T (B, u): final states.

Only the standard activations (sigmoid gates, tanh cell) are supported here: the backward pass
uses their closed-form derivatives. Other activations use the generic cell loop.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import tensorflow as tf

_PARALLEL_ITERATIONS = 32  # lets the TensorArray writes of step t overlap step t+1
CHUNK = 16  # steps per chunk of the outer loop (see `fused_peephole_lstm`)


def _peep_rows(p):
    """(3, u) peephole weights -> three (1, u) rows [i, f, o]."""
    return p[0:1], p[1:2], p[2:3]


def _cell_step(zx_t, h, c, kernel, p, rm, valid):
    """One step of the recurrence: (acts [i, f, g, o], h_t, c_t) from z_x,t and h_{t-1}, c_{t-1}.

    `valid` (B, 1) or None: at a padded step the states are carried over.
    """
    hr = h if rm is None else h * rm
    z = zx_t + tf.matmul(hr, kernel)
    z_i, z_f, z_c, z_o = tf.split(z, 4, axis=-1)
    if p is not None:
        p_i, p_f, p_o = _peep_rows(p)
        z_i = z_i + c * p_i
        z_f = z_f + c * p_f
    i, f, g = tf.sigmoid(z_i), tf.sigmoid(z_f), tf.tanh(z_c)
    c_new = f * c + i * g
    if p is not None:
        z_o = z_o + c_new * p_o
    o = tf.sigmoid(z_o)
    h_new = o * tf.tanh(c_new)
    if valid is not None:
        h_new = h + valid * (h_new - h)
        c_new = c + valid * (c_new - c)
    return (i, f, g, o), h_new, c_new


def _forward(zx, h0, c0, kernel, p, mt, rm, steps):
    """The recurrence over the first `steps` of a chunk (C, B, 4u), time-major.

    Returns (a_seq, c_seq, h_seq, h_last, c_last). a_seq (C, B, 4u) holds every step's gate
    activations [i, f, g, o] for the backward pass; rows from `steps` on are zero.
    """

    def step(t, h, c, a_ta, c_ta, h_ta):
        acts, h_new, c_new = _cell_step(zx[t], h, c, kernel, p, rm, None if mt is None else mt[t])
        acts = tf.concat(acts, axis=-1)
        return t + 1, h_new, c_new, a_ta.write(t, acts), c_ta.write(t, c_new), h_ta.write(t, h_new)

    size = tf.shape(zx)[0]
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


class _Inputs(NamedTuple):
    """The tensors of one call (gradients are stopped: `grad` below is the gradient)."""

    x: tf.Tensor  # (T, B, I)
    kernel: tf.Tensor  # (I, 4u)
    recurrent_kernel: tf.Tensor  # (u, 4u)
    bias: tf.Tensor | None  # (4u,)
    peep: tf.Tensor | None  # (3, u)
    mask: tf.Tensor | None  # (T, B, 1)
    rec_mask: tf.Tensor | None  # (B, u)


class _Chunks:
    """How a (T, ...) sequence is cut into chunks and how chunks enter and leave the loops.

    With `fixed_shape` (XLA loops) every chunk enters its loop zero-padded to `size` rows, so
    that one compilation serves every length, and the loop's outputs are cut back to the real
    number of steps.
    """

    def __init__(self, total, size: int, fixed_shape: bool):
        self.total, self.size, self.fixed_shape = total, size, fixed_shape
        self.count = (total + size - 1) // size

    def rows(self, a, k):
        """Chunk k of a (T, ...) tensor: (steps_k, ...)."""
        return a[k * self.size : tf.minimum(self.total, (k + 1) * self.size)]

    def loop_in(self, a):
        return _pad_rows(a, self.size) if self.fixed_shape else a

    def loop_out(self, a, steps):
        return a[:steps] if self.fixed_shape else a

    def lists(self, dtype, *shape):
        """One TensorArray entry per chunk (infer_shape=False: the last chunk may be shorter)."""
        return tf.TensorArray(dtype, self.count, infer_shape=False, element_shape=shape)


class _Stored(NamedTuple):
    """What the forward pass keeps per chunk for the backward pass (lists or plain tensors)."""

    acts: Any  # gate activations [i, f, g, o] (steps, B, 4u)
    c: Any  # cell states after each step (steps, B, u)
    h: Any  # hidden states after each step (steps, B, u)
    h_in: Any  # hidden state entering the chunk (B, u)
    c_in: Any  # cell state entering the chunk (B, u)


def _gates_shape(state: tf.TensorShape) -> tf.TensorShape:
    """(B, u) -> (B, 4u), with unknown dimensions kept unknown."""
    units = state[-1]
    return state[:-1].concatenate([None if units is None else 4 * units])


def _forward_chunks(inp: _Inputs, h0, c0, chunks: _Chunks, loop) -> tuple:
    """The outer forward loop: per chunk the input-projection GEMM, then the recurrent `loop`.

    Returns (h_T, c_T, _Stored of TensorArrays with one entry per chunk).
    """

    def fwd_chunk(k, h, c, *stored):
        x_k = chunks.rows(inp.x, k)
        steps = tf.shape(x_k)[0]
        zx = _flat_matmul(x_k, inp.kernel)
        if inp.bias is not None:
            zx = zx + inp.bias
        mk = None if inp.mask is None else chunks.loop_in(chunks.rows(inp.mask, k))
        a_k, c_k, h_k, h_new, c_new = loop(
            chunks.loop_in(zx), h, c, inp.recurrent_kernel, inp.peep, mk, inp.rec_mask, steps
        )
        # A compiled function traced earlier for a less specific shape may serve this call.
        h_new.set_shape(h.shape)
        c_new.set_shape(c.shape)
        new = _Stored(*(chunks.loop_out(a, steps) for a in (a_k, c_k, h_k)), h, c)
        return (k + 1, h_new, c_new, *(ta.write(k, v) for ta, v in zip(stored, new)))

    state, dtype = h0.shape, inp.x.dtype
    empty = _Stored(
        acts=chunks.lists(dtype, None, *_gates_shape(state)),
        c=chunks.lists(dtype, None, *state),
        h=chunks.lists(dtype, None, *state),
        h_in=chunks.lists(dtype, *state),
        c_in=chunks.lists(dtype, *state),
    )
    _, h_last, c_last, *stored = tf.while_loop(
        lambda k, *_: k < chunks.count,
        fwd_chunk,
        (tf.constant(0), h0, c0, *empty),
        parallel_iterations=2,
    )
    return h_last, c_last, _Stored(*stored)


def _chunk_weight_grads(acc: dict, inp: _Inputs, x_k, dz, saved: _Stored) -> dict:
    """Adds one chunk's weight gradients to `acc`: large GEMMs and reductions over (steps, B)."""
    acc = dict(acc)
    h_prev = tf.concat([saved.h_in[None], saved.h[:-1]], axis=0)
    if inp.rec_mask is not None:
        h_prev = h_prev * inp.rec_mask
    acc["dU"] = acc["dU"] + _rows_t_matmul(h_prev, dz)
    acc["dW"] = acc["dW"] + _rows_t_matmul(x_k, dz)
    if inp.bias is not None:
        acc["db"] = acc["db"] + tf.reduce_sum(dz, axis=[0, 1])
    if inp.peep is not None:
        c_prev = tf.concat([saved.c_in[None], saved.c[:-1]], axis=0)
        dz_i, dz_f, _, dz_o = tf.split(dz, 4, axis=-1)
        acc["dp"] = acc["dp"] + tf.stack(
            [
                tf.reduce_sum(dz_i * c_prev, axis=[0, 1]),
                tf.reduce_sum(dz_f * c_prev, axis=[0, 1]),
                tf.reduce_sum(dz_o * saved.c, axis=[0, 1]),
            ]
        )
    return acc


def _backward_chunks(
    inp: _Inputs, chunks: _Chunks, stored: _Stored, dh_seq, dh_last, dc_last, loop
):
    """The outer backward loop, last chunk first: the reverse `loop`, then the chunk's GEMMs.

    `stored`: the forward pass's per-chunk lists.

    Returns (dx (T, B, I), dh0, dc0, dict of the weight gradients dW, dU[, db][, dp]).
    """
    acc = {"dW": tf.zeros_like(inp.kernel), "dU": tf.zeros_like(inp.recurrent_kernel)}
    if inp.bias is not None:
        acc["db"] = tf.zeros_like(inp.bias)
    if inp.peep is not None:
        acc["dp"] = tf.zeros_like(inp.peep)
    keys = list(acc)
    u_t = tf.transpose(inp.recurrent_kernel)

    def bwd_chunk(k, dh_carry, dc_carry, dx_l, *acc_values):
        saved = _Stored(*(ta.read(k) for ta in stored))
        steps = tf.shape(saved.acts)[0]
        mk = None if inp.mask is None else chunks.loop_in(chunks.rows(inp.mask, k))
        dz, dh_carry, dc_carry = loop(
            chunks.loop_in(saved.acts),
            saved.c_in,
            chunks.loop_in(saved.c),
            inp.peep,
            mk,
            inp.rec_mask,
            u_t,
            chunks.loop_in(chunks.rows(dh_seq, k)),
            dh_carry,
            dc_carry,
            steps,
        )
        dz = chunks.loop_out(dz, steps)
        dh_carry.set_shape(dh_last.shape)
        dc_carry.set_shape(dc_last.shape)
        x_k = chunks.rows(inp.x, k)
        new_acc = _chunk_weight_grads(dict(zip(keys, acc_values)), inp, x_k, dz, saved)
        dx_l = dx_l.write(k, _flat_matmul(dz, inp.kernel, transpose_b=True))
        return (k - 1, dh_carry, dc_carry, dx_l, *(new_acc[key] for key in keys))

    out = tf.while_loop(
        lambda k, *_: k >= 0,
        bwd_chunk,
        (
            chunks.count - 1,
            dh_last,
            dc_last,
            chunks.lists(inp.x.dtype, None, *inp.x.shape[1:]),
            *acc.values(),
        ),
        parallel_iterations=2,
    )
    _, dh0, dc0, dx_l = out[:4]
    return dx_l.concat(), dh0, dc0, dict(zip(keys, out[4:]))


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
    keep_activations=True,
    return_sequences=True,
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
        keep_activations: let the gradient use what the forward pass stored (per-chunk lists of
            the gate activations and states; for training). False (inference): the stored
            lists are dropped and a gradient, if one is asked for, recomputes the forward pass
            first; only this can be exported in a SavedModel (its gradient function captures
            plain tensors, not list handles). The forward loop is the same either way: an XLA
            loop that writes the activations measured faster than one that does not (the
            written activations are computed once; without them XLA recomputes gate
            nonlinearities in several fusions).
        return_sequences: whether `h_seq` is needed (False: `h_seq` is returned as None).

    Returns:
        h_seq (T, B, u) or None, h_T, c_T.
    """
    chunk = CHUNK if chunk is None else int(chunk)
    extras = {"bias": bias, "peep": peep, "mask": mask, "rec_mask": rec_mask}
    names = [k for k, v in extras.items() if v is not None]
    forward_loop = _forward_xla if jit_compile else _forward
    backward_loop = _backward_loop_per_step_xla if jit_compile else _backward_loop_precomputed
    keep_h = bool(return_sequences)

    @tf.custom_gradient
    def run(x, kernel, h0, c0, u_kernel, *extra):
        # The gradient is `grad` below: keep the tape from recording the forward ops (in eager
        # mode it would otherwise keep every intermediate alive, and differentiate XLA calls).
        x, kernel, h0, c0, u_kernel = (tf.stop_gradient(t) for t in (x, kernel, h0, c0, u_kernel))
        opt = dict(zip(names, (tf.stop_gradient(t) for t in extra)))
        inp = _Inputs(x, kernel, u_kernel, *(opt.get(k) for k in extras))
        chunks = _Chunks(tf.shape(x)[0], chunk, fixed_shape=jit_compile)
        h_last, c_last, stored = _forward_chunks(inp, h0, c0, chunks, forward_loop)
        h_seq = stored.h.concat() if keep_h else None
        if not keep_activations:
            stored = None  # the gradient recomputes it

        def grad(*grads, variables=None):
            dh_seq, dh_last, dc_last = grads if keep_h else (None, *grads)
            # Outputs nobody used arrive as None.
            if dh_seq is None:
                dh_seq = tf.zeros(tf.concat([tf.shape(x)[:1], tf.shape(h0)], 0), h0.dtype)
            dh_last = tf.zeros_like(h0) if dh_last is None else dh_last
            dc_last = tf.zeros_like(c0) if dc_last is None else dc_last
            saved = stored or _forward_chunks(inp, h0, c0, chunks, forward_loop)[2]
            dx, dh0, dc0, acc = _backward_chunks(
                inp, chunks, saved, dh_seq, dh_last, dc_last, backward_loop
            )
            d_extra = {
                "bias": acc.get("db"),
                "peep": acc.get("dp"),
                "mask": None if mask is None else tf.zeros_like(inp.mask),
                "rec_mask": None if rec_mask is None else tf.zeros_like(inp.rec_mask),
            }
            return (dx, acc["dW"], dh0, dc0, acc["dU"], *(d_extra[k] for k in names))

        outputs = (h_seq, h_last, c_last) if keep_h else (h_last, c_last)
        return outputs, grad

    outputs = run(x, kernel, h0, c0, recurrent_kernel, *(extras[k] for k in names))
    return tuple(outputs) if keep_h else (None, *outputs)
