"""Tests of the shared layers against independent references.

References: a NumPy float64 implementation of the equations in ANCHORS.md (written here, not
imported), central finite differences of that NumPy function, and keras' own LSTM/Bidirectional
with the same weights (peepholes off).
"""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from shared.layers import Bidirectional, PeepholeLSTM, PeepholeLSTMCell, peephole_lstm

RNG = np.random.default_rng(1234)
# (fused, jit_compile): fused path with XLA loops (the default), with graph loops, cell loop.
PATHS = [(True, True), (True, False), (False, False)]


def _pairs(params: dict, row: tuple) -> set:
    """The (parameter, value index) pairs that one row of value indices covers."""
    return set(itertools.combinations(zip(params, row), 2))


def pairwise(**params) -> list[tuple]:
    """Rows of parameter values in which every pair of values of any two parameters occurs.

    Greedy all-pairs: a variant bug that depends on two settings shows up in one of far fewer
    compilations than the full product (each test variant compiles its own XLA loops).
    """
    indices = [range(len(values)) for values in params.values()]
    uncovered = set().union(*(_pairs(params, row) for row in itertools.product(*indices)))
    rows = []
    while uncovered:
        best = max(itertools.product(*indices), key=lambda r: len(_pairs(params, r) & uncovered))
        uncovered -= _pairs(params, best)
        rows.append(tuple(values[i] for values, i in zip(params.values(), best)))
    return rows


FORWARD_VARIANTS = pairwise(
    path=PATHS, shape=[(1, 1, 1, 1), (3, 7, 4, 5), (5, 12, 6, 8)], side=[None, "post", "pre"]
)
CHUNKED_VARIANTS = pairwise(
    mode=[(False, False), (True, False), (True, True)],  # (in_function, training)
    jit_compile=[False, True],
    side=[None, "pre"],
)
BIDIRECTIONAL_VARIANTS = pairwise(
    merge_mode=["concat", "sum", "mul", "ave", None],
    side=[None, "post", "pre"],
    return_sequences=[True, False],
)


@pytest.mark.parametrize(
    "variants, values",
    [
        (
            FORWARD_VARIANTS,
            [PATHS, [(1, 1, 1, 1), (3, 7, 4, 5), (5, 12, 6, 8)], [None, "post", "pre"]],
        ),
        (
            CHUNKED_VARIANTS,
            [[(False, False), (True, False), (True, True)], [False, True], [None, "pre"]],
        ),
        (
            BIDIRECTIONAL_VARIANTS,
            [["concat", "sum", "mul", "ave", None], [None, "post", "pre"], [True, False]],
        ),
    ],
)
def test_pairwise_variants_cover_every_pair(variants, values):
    """Each pair of values of two parameters occurs in some variant; fewer rows than the product."""
    for a, b in itertools.combinations(range(len(values)), 2):
        for pair in itertools.product(values[a], values[b]):
            assert any((row[a], row[b]) == pair for row in variants), (a, b, pair)
    assert len(variants) < np.prod([len(v) for v in values])


# --- the reference ------------------------------------------------------------------------------
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_peephole_lstm(x, kernel, recurrent, bias, peep, h0=None, c0=None, mask=None):
    """float64 peephole LSTM; returns (outputs (B,T,u) keras convention, h_T, c_T).

    At a masked step the states are carried over and the output repeats the previous output
    (zeros before the first valid step), as keras.layers.RNN does.
    """
    b, t, _ = x.shape
    u = recurrent.shape[0]
    h = np.zeros((b, u)) if h0 is None else h0.astype(np.float64)
    c = np.zeros((b, u)) if c0 is None else c0.astype(np.float64)
    y_prev = np.zeros((b, u))
    outputs = []
    for step in range(t):
        z = x[:, step] @ kernel + h @ recurrent + bias
        z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
        i = _sigmoid(z_i + peep[0] * c)
        f = _sigmoid(z_f + peep[1] * c)
        c_new = f * c + i * np.tanh(z_c)
        o = _sigmoid(z_o + peep[2] * c_new)
        h_new = o * np.tanh(c_new)
        if mask is not None:
            valid = mask[:, step : step + 1]
            h_new = np.where(valid, h_new, h)
            c_new = np.where(valid, c_new, c)
            y = np.where(valid, h_new, y_prev)
        else:
            y = h_new
        h, c, y_prev = h_new, c_new, y
        outputs.append(y)
    return np.stack(outputs, 1), h, c


def _random_weights(input_dim, units, scale=0.5):
    return (
        RNG.normal(size=(input_dim, 4 * units)) * scale,
        RNG.normal(size=(units, 4 * units)) * scale,
        RNG.normal(size=(4 * units,)) * scale,
        RNG.normal(size=(3, units)) * scale,
    )


def _set(layer_or_cell, kernel, recurrent, bias, peep=None):
    cell = getattr(layer_or_cell, "cell", layer_or_cell)
    cell.kernel.assign(kernel)
    cell.recurrent_kernel.assign(recurrent)
    cell.bias.assign(bias)
    if peep is not None:
        cell.peephole_kernel.assign(peep)


def _mask(batch, steps, side):
    """Random lengths >= 1, padding on `side` ("post" or "pre")."""
    lengths = RNG.integers(1, steps + 1, size=batch)
    lengths[0] = steps
    mask = np.arange(steps)[None, :] < lengths[:, None]
    return mask if side == "post" else mask[:, ::-1].copy()


# --- forward against NumPy ----------------------------------------------------------------------
@pytest.mark.parametrize("path, shape, side", FORWARD_VARIANTS)
def test_forward_matches_numpy(path, shape, side):
    (fused, jit), (b, t, d, u) = path, shape
    x = RNG.normal(size=(b, t, d))
    w = _random_weights(d, u)
    h0, c0 = RNG.normal(size=(b, u)), RNG.normal(size=(b, u))
    mask = None if side is None else _mask(b, t, side)
    layer = PeepholeLSTM(
        u, return_sequences=True, return_state=True, fused=fused, jit_compile=jit, dtype="float64"
    )
    layer.build((b, t, d))
    _set(layer, *w)
    y, h, c = layer(x, initial_state=[h0, c0], mask=mask)
    y_ref, h_ref, c_ref = numpy_peephole_lstm(x, *w, h0=h0, c0=c0, mask=mask)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(h, h_ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(c, c_ref, rtol=1e-5, atol=1e-7)


def test_float32_forward_matches_numpy():
    x = RNG.normal(size=(4, 9, 3)).astype("float32")
    w = _random_weights(3, 6, scale=0.3)
    layer = PeepholeLSTM(6, return_sequences=True)
    layer.build(x.shape)
    _set(layer, *w)
    y_ref, _, _ = numpy_peephole_lstm(x.astype(np.float64), *w)
    np.testing.assert_allclose(layer(x), y_ref, rtol=1e-5, atol=2e-6)


def test_cell_in_keras_rnn_matches_numpy():
    x = RNG.normal(size=(2, 6, 3))
    w = _random_weights(3, 4)
    rnn = keras.layers.RNN(
        PeepholeLSTMCell(4, dtype="float64"), return_sequences=True, dtype="float64"
    )
    rnn.build(x.shape)
    _set(rnn, *w)
    np.testing.assert_allclose(rnn(x), numpy_peephole_lstm(x, *w)[0], rtol=1e-5, atol=1e-7)


def test_go_backwards_matches_reversed_numpy():
    x = RNG.normal(size=(3, 5, 2))
    w = _random_weights(2, 3)
    layer = PeepholeLSTM(3, return_sequences=True, go_backwards=True, dtype="float64")
    layer.build(x.shape)
    _set(layer, *w)
    # keras convention: outputs in processed (reversed) order.
    y_ref, _, _ = numpy_peephole_lstm(x[:, ::-1], *w)
    np.testing.assert_allclose(layer(x), y_ref, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "side, training, go_backwards",
    [(None, False, True), ("post", False, False), ("pre", True, True), ("post", True, False)],
)
def test_last_output_matches_numpy(side, training, go_backwards):
    """return_sequences=False: the output of the last processed step (zeros for a sequence
    with no valid step), and its input gradient, in inference (nothing stored, gradient by
    recomputation) and training."""
    b, t, d, u = 4, 6, 3, 5
    x = RNG.normal(size=(b, t, d))
    w = _random_weights(d, u)
    mask = None if side is None else _mask(b, t, side)
    if mask is not None:
        mask[-1] = False  # no valid step at all
    proj = RNG.normal(size=(b, u))
    layer = PeepholeLSTM(u, go_backwards=go_backwards, dtype="float64")
    layer.build(x.shape)
    _set(layer, *w)

    def reference(x_np):
        seq_mask = None if mask is None else mask
        if go_backwards:
            x_np = x_np[:, ::-1]
            seq_mask = None if mask is None else mask[:, ::-1]
        return numpy_peephole_lstm(x_np, *w, mask=seq_mask)[0][:, -1]

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = layer(xt, mask=mask, training=training)
        loss = tf.reduce_sum(y * proj)
    np.testing.assert_allclose(y, reference(x), rtol=1e-5, atol=1e-7)
    if mask is not None:
        assert not np.any(np.asarray(y)[-1])
    grad = np.asarray(tape.gradient(loss, xt))
    eps = 1e-6
    for _ in range(6):
        pos = tuple(RNG.integers(0, n) for n in x.shape)
        plus, minus = x.copy(), x.copy()
        plus[pos] += eps
        minus[pos] -= eps
        numeric = np.sum((reference(plus) - reference(minus)) * proj) / (2 * eps)
        np.testing.assert_allclose(grad[pos], numeric, rtol=1e-5, atol=1e-7)


# --- gradients against finite differences of the NumPy reference --------------------------------
@pytest.mark.parametrize("fused, jit", PATHS)
@pytest.mark.parametrize("masked", [False, True])
def test_gradients_match_finite_differences(fused, jit, masked):
    b, t, d, u = 2, 5, 3, 4
    x = RNG.normal(size=(b, t, d))
    w = list(_random_weights(d, u))
    mask = _mask(b, t, "post") if masked else None
    proj = RNG.normal(size=(b, t, u))  # loss = sum(outputs * proj) + sum(c_T^2)

    def np_loss(weights, x_in):
        y, _, c = numpy_peephole_lstm(x_in, *weights, mask=mask)
        return float(np.sum(y * proj) + np.sum(c**2))

    layer = PeepholeLSTM(
        u, return_sequences=True, return_state=True, fused=fused, jit_compile=jit, dtype="float64"
    )
    layer.build(x.shape)
    _set(layer, *w)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y, _, c = layer(xt, mask=mask)
        loss = tf.reduce_sum(y * proj) + tf.reduce_sum(c**2)
    cell = layer.cell
    variables = [cell.kernel, cell.recurrent_kernel, cell.bias, cell.peephole_kernel]
    grads = tape.gradient(loss, [v.value for v in variables] + [xt])
    assert abs(float(loss) - np_loss(w, x)) < 1e-9

    eps = 1e-6
    for k, (param, grad) in enumerate(zip([*w, x], grads)):
        flat_idx = RNG.choice(param.size, size=min(12, param.size), replace=False)
        for idx in flat_idx:
            pos = np.unravel_index(idx, param.shape)
            plus = [p.copy() for p in [*w, x]]
            minus = [p.copy() for p in [*w, x]]
            plus[k][pos] += eps
            minus[k][pos] -= eps
            numeric = (np_loss(plus[:4], plus[4]) - np_loss(minus[:4], minus[4])) / (2 * eps)
            np.testing.assert_allclose(np.asarray(grad)[pos], numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("mode, jit_compile, side", CHUNKED_VARIANTS)
def test_chunked_sequence_matches_finite_differences(monkeypatch, mode, jit_compile, side):
    """Sequences spanning several chunks of the fused loop (the last one partial): outputs,
    final states and the gradients of weights, inputs and initial states stay exact, eagerly
    and traced into a graph, in training (gradient from the per-chunk lists) and inference
    (from exportable plain tensors)."""
    from shared.layers import fused as fused_core

    in_function, training = mode
    monkeypatch.setattr(fused_core, "CHUNK", 2)
    b, t, d, u = 2, 5, 3, 4  # chunks of 2, 2, 1 steps
    x = RNG.normal(size=(b, t, d))
    w = list(_random_weights(d, u))
    h0, c0 = RNG.normal(size=(b, u)), RNG.normal(size=(b, u))
    mask = None if side is None else _mask(b, t, side)
    proj = RNG.normal(size=(b, t, u))

    def np_loss(weights, x_in, h_in, c_in):
        y, h, c = numpy_peephole_lstm(x_in, *weights, h0=h_in, c0=c_in, mask=mask)
        return float(np.sum(y * proj) + np.sum(h**3) + np.sum(c**2))

    layer = PeepholeLSTM(
        u, return_sequences=True, return_state=True, jit_compile=jit_compile, dtype="float64"
    )
    layer.build(x.shape)
    _set(layer, *w)
    cell = layer.cell
    variables = [cell.kernel, cell.recurrent_kernel, cell.bias, cell.peephole_kernel]

    def loss_and_grads(inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            y, h, c = layer(inputs[0], initial_state=inputs[1:], mask=mask, training=training)
            loss = tf.reduce_sum(y * proj) + tf.reduce_sum(h**3) + tf.reduce_sum(c**2)
        return loss, tape.gradient(loss, [v.value for v in variables] + inputs)

    if in_function:
        loss_and_grads = tf.function(loss_and_grads)
    loss, grads = loss_and_grads([tf.constant(a) for a in (x, h0, c0)])
    params = [*w, x, h0, c0]
    assert abs(float(loss) - np_loss(w, x, h0, c0)) < 1e-9

    eps = 1e-6
    for k, (param, grad) in enumerate(zip(params, grads)):
        for idx in RNG.choice(param.size, size=min(6, param.size), replace=False):
            pos = np.unravel_index(idx, param.shape)
            plus = [p.copy() for p in params]
            minus = [p.copy() for p in params]
            plus[k][pos] += eps
            minus[k][pos] -= eps
            numeric = (np_loss(plus[:4], *plus[4:]) - np_loss(minus[:4], *minus[4:])) / (2 * eps)
            np.testing.assert_allclose(np.asarray(grad)[pos], numeric, rtol=1e-5, atol=1e-7)


# --- equivalence with keras when peepholes are off ----------------------------------------------
def _copy_weights(src, dst):
    assert len(src.weights) == len(dst.weights)
    for a, b in zip(src.weights, dst.weights):
        b.assign(a)


@pytest.mark.parametrize("fused, jit", PATHS)
@pytest.mark.parametrize("side", [None, "post", "pre"])
def test_no_peepholes_equals_keras_lstm(fused, jit, side):
    x = RNG.normal(size=(4, 8, 5)).astype("float32")
    mask = None if side is None else _mask(4, 8, side)
    ref = keras.layers.LSTM(6, return_sequences=True, return_state=True)
    ours = PeepholeLSTM(
        6,
        return_sequences=True,
        return_state=True,
        use_peepholes=False,
        fused=fused,
        jit_compile=jit,
    )
    ref.build(x.shape)
    ours.build(x.shape)
    _copy_weights(ref, ours)
    xt = tf.constant(x)
    results = []
    for layer in (ref, ours):
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y, h, c = layer(xt, mask=mask)
            loss = tf.reduce_sum(y * y) + tf.reduce_sum(h) + tf.reduce_sum(c * 0.5)
        results.append(([y, h, c], tape.gradient(loss, [*layer.trainable_weights, xt])))
    for a, b in zip(results[0][0], results[1][0]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_cell_without_peepholes_equals_keras_cell():
    x = RNG.normal(size=(3, 6, 4)).astype("float32")
    ref = keras.layers.RNN(keras.layers.LSTMCell(5), return_sequences=True)
    ours = keras.layers.RNN(PeepholeLSTMCell(5, use_peepholes=False), return_sequences=True)
    ref.build(x.shape)
    ours.build(x.shape)
    _copy_weights(ref, ours)
    np.testing.assert_allclose(ref(x), ours(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("merge_mode, side, return_sequences", BIDIRECTIONAL_VARIANTS)
def test_bidirectional_equals_keras(merge_mode, side, return_sequences):
    x = RNG.normal(size=(4, 7, 3)).astype("float32")
    mask = None if side is None else _mask(4, 7, side)
    ref = keras.layers.Bidirectional(
        keras.layers.LSTM(5, return_sequences=return_sequences, return_state=True),
        merge_mode=merge_mode,
    )
    ours = Bidirectional(
        PeepholeLSTM(5, return_sequences=return_sequences, return_state=True, use_peepholes=False),
        merge_mode=merge_mode,
    )
    ref.build(x.shape)
    ours.build(x.shape)
    assert ours.can_fuse()
    _copy_weights(ref, ours)
    xt = tf.constant(x)
    outs, grads = [], []
    for layer in (ref, ours):
        with tf.GradientTape() as tape:
            tape.watch(xt)
            out = tf.nest.flatten(layer(xt, mask=mask))
            loss = sum(tf.reduce_sum(o * o) for o in out)
        outs.append(out)
        grads.append(tape.gradient(loss, [*layer.trainable_weights, xt]))
    assert len(outs[0]) == len(outs[1])
    for a, b in zip(outs[0], outs[1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(grads[0], grads[1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_bidirectional_with_peepholes_matches_numpy_and_initial_state():
    b, t, d, u = 3, 6, 2, 4
    x = RNG.normal(size=(b, t, d))
    wf, wb = _random_weights(d, u), _random_weights(d, u)
    states = [RNG.normal(size=(b, u)) for _ in range(4)]
    mask = _mask(b, t, "post")
    bi = Bidirectional(
        PeepholeLSTM(u, return_sequences=True, return_state=True, dtype="float64"), dtype="float64"
    )
    bi.build(x.shape)
    _set(bi.forward_layer, *wf)
    _set(bi.backward_layer, *wb)
    y, hf, cf, hb, cb = bi(x, initial_state=states, mask=mask)
    yf, hf_ref, cf_ref = numpy_peephole_lstm(x, *wf, states[0], states[1], mask)
    # Backward: each sequence reversed over its own valid part: the reversed padded sequence
    # with the reversed mask carries the state over the padding first, then reads the last real
    # step first.
    yb, hb_ref, cb_ref = numpy_peephole_lstm(x[:, ::-1], *wb, states[2], states[3], mask[:, ::-1])
    yf = yf * mask[..., None]  # Bidirectional returns zeros at padding (keras convention)
    yb = (yb * mask[:, ::-1, None])[:, ::-1]
    np.testing.assert_allclose(y, np.concatenate([yf, yb], -1), rtol=1e-5, atol=1e-7)
    for got, want in [(hf, hf_ref), (cf, cf_ref), (hb, hb_ref), (cb, cb_ref)]:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


# --- masking: padded batch equals each sequence alone -------------------------------------------
@pytest.mark.parametrize("side", ["post", "pre"])
@pytest.mark.parametrize("wrapper", [False, True])
def test_padded_batch_equals_each_sequence_alone(side, wrapper):
    t, d, u = 9, 3, 5
    lengths = [9, 4, 1, 6]
    base = PeepholeLSTM(u, return_sequences=True, return_state=True)
    layer = Bidirectional(base) if wrapper else base
    padded = np.zeros((len(lengths), t, d), "float32")
    seqs = [RNG.normal(size=(n, d)).astype("float32") for n in lengths]
    mask = np.zeros((len(lengths), t), bool)
    for k, (n, s) in enumerate(zip(lengths, seqs)):
        sl = slice(0, n) if side == "post" else slice(t - n, t)
        padded[k, sl] = s
        mask[k, sl] = True
    batch_out = [np.asarray(o) for o in layer(padded, mask=mask)]
    for k, (n, s) in enumerate(zip(lengths, seqs)):
        alone = [np.asarray(o) for o in layer(s[None])]
        sl = slice(0, n) if side == "post" else slice(t - n, t)
        np.testing.assert_allclose(batch_out[0][k, sl], alone[0][0], rtol=1e-5, atol=1e-6)
        for got, want in zip(batch_out[1:], alone[1:]):
            np.testing.assert_allclose(got[k], want[0], rtol=1e-5, atol=1e-6)


# --- dropout -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fused", [True, False])
def test_dropout_only_in_training(fused):
    x = RNG.normal(size=(4, 6, 8)).astype("float32")
    layer = PeepholeLSTM(8, dropout=0.5, recurrent_dropout=0.5, fused=fused, seed=3)
    plain = PeepholeLSTM(8, fused=fused)
    layer.build(x.shape)
    plain.build(x.shape)
    _copy_weights(layer, plain)
    np.testing.assert_allclose(layer(x, training=False), plain(x), rtol=1e-6)
    a = np.asarray(layer(x, training=True))
    b = np.asarray(layer(x, training=True))
    assert not np.allclose(a, np.asarray(plain(x)), atol=1e-4)
    assert not np.allclose(a, b, atol=1e-6)  # fresh masks per batch


def test_fused_dropout_equals_cell_loop_with_same_masks():
    """The fused path applies the cell's masks exactly as the cell does step by step."""
    x = RNG.normal(size=(3, 5, 4)).astype("float32")
    fused = PeepholeLSTM(6, dropout=0.3, recurrent_dropout=0.4, fused=True)
    loop = PeepholeLSTM(6, dropout=0.3, recurrent_dropout=0.4, fused=False)
    fused.build(x.shape)
    loop.build(x.shape)
    _copy_weights(fused, loop)
    dp = (RNG.random((3, 4)) > 0.3) / 0.7
    rdp = (RNG.random((3, 6)) > 0.4) / 0.6
    for layer in (fused, loop):
        layer.cell.get_dropout_mask = lambda _x, m=dp: tf.constant(m, tf.float32)
        layer.cell.get_recurrent_dropout_mask = lambda _h, m=rdp: tf.constant(m, tf.float32)
    np.testing.assert_allclose(
        fused(x, training=True), loop(x, training=True), rtol=1e-5, atol=1e-6
    )


# --- serialization and export ------------------------------------------------------------------
def _model():
    inputs = keras.Input((None, 3))
    masked = keras.layers.Masking(0.0)(inputs)
    seq = Bidirectional(PeepholeLSTM(4, return_sequences=True))(masked)
    last = PeepholeLSTM(5, use_peepholes=True)(seq)
    outputs = keras.layers.Dense(2)(last)
    return keras.Model(inputs, outputs)


def test_keras_save_load_round_trip(tmp_path):
    model = _model()
    for v in model.weights:  # non-trivial peepholes
        v.assign(RNG.normal(size=v.shape) * 0.3)
    x = RNG.normal(size=(2, 6, 3)).astype("float32")
    x[1, 4:] = 0.0
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(model(x), loaded(x), rtol=1e-6)
    assert isinstance(loaded.layers[2], Bidirectional)
    assert loaded.layers[2].can_fuse()


# Every constructor argument with a value other than its default.
CELL_ARGS = {
    "use_peepholes": False,
    "activation": "relu",
    "recurrent_activation": "hard_sigmoid",
    "use_bias": False,
    "kernel_initializer": "he_normal",
    "recurrent_initializer": "glorot_normal",
    "bias_initializer": "ones",
    "peephole_initializer": "ones",
    "unit_forget_bias": False,
    "kernel_regularizer": keras.regularizers.L2(0.03),
    "recurrent_regularizer": keras.regularizers.L1(0.02),
    "bias_regularizer": keras.regularizers.L1L2(0.1, 0.2),
    "peephole_regularizer": keras.regularizers.L2(0.5),
    "kernel_constraint": keras.constraints.MaxNorm(2.0),
    "recurrent_constraint": keras.constraints.NonNeg(),
    "bias_constraint": keras.constraints.UnitNorm(),
    "peephole_constraint": keras.constraints.MinMaxNorm(0.5, 1.5),
    "dropout": 0.25,
    "recurrent_dropout": 0.125,
    "seed": 11,
}
LAYER_ARGS = {
    "return_sequences": True,
    "return_state": True,
    "go_backwards": True,
    "stateful": True,
    "unroll": True,
    "zero_output_for_mask": True,
    "fused": False,
    "jit_compile": False,
    "use_cudnn": False,
}
_SERIALIZERS = {
    "activation": keras.activations.serialize,
    "initializer": keras.initializers.serialize,
    "regularizer": keras.regularizers.serialize,
    "constraint": keras.constraints.serialize,
}


def _expected(key, value):
    """The serialised form keras itself gives `value` (the reference for the config)."""
    for suffix, serialize in _SERIALIZERS.items():
        if key.endswith(suffix):
            getter = getattr(keras, suffix + "s" if suffix != "activation" else "activations")
            return serialize(getter.get(value))
    return value


def _check_config(obj, clone, args):
    config = obj.get_config()
    for key, value in args.items():
        want = _expected(key, value)
        assert config[key] == want, key
        assert _expected(key, getattr(clone, key)) == want, key


def test_config_holds_every_non_default_argument():
    layer = PeepholeLSTM(7, name="enc", **CELL_ARGS, **LAYER_ARGS)
    clone = PeepholeLSTM.from_config(layer.get_config())
    assert clone.units == layer.get_config()["units"] == 7
    assert clone.name == "enc"
    _check_config(layer, clone, {**CELL_ARGS, **LAYER_ARGS})

    cell = PeepholeLSTMCell(3, **CELL_ARGS)
    _check_config(cell, PeepholeLSTMCell.from_config(cell.get_config()), CELL_ARGS)

    bi = Bidirectional(PeepholeLSTM(3, use_peepholes=False, dropout=0.5), merge_mode="mul")
    clone = Bidirectional.from_config(bi.get_config())
    assert bi.get_config()["merge_mode"] == clone.merge_mode == "mul"
    for direction in (clone.forward_layer, clone.backward_layer):
        assert (direction.units, direction.use_peepholes, direction.dropout) == (3, False, 0.5)
    assert not clone.forward_layer.go_backwards and clone.backward_layer.go_backwards


@pytest.mark.parametrize("cls", [PeepholeLSTMCell, PeepholeLSTM, Bidirectional])
def test_layers_are_registered_serializable(cls):
    assert keras.saving.get_registered_object(f"lstm_suite>{cls.__name__}") is cls


# --- use_cudnn, stateful, unroll ---------------------------------------------------------------
def test_use_cudnn_true_without_gpu_is_a_clear_error(monkeypatch):
    x = RNG.normal(size=(2, 4, 3)).astype("float32")
    if tf.config.list_logical_devices("GPU"):  # hide the GPU: this checks the CPU behaviour
        monkeypatch.setattr(peephole_lstm, "_gpu_visible", lambda: False)
    with pytest.raises(ValueError, match="use_cudnn=True, but no GPU is visible"):
        PeepholeLSTM(5, use_peepholes=False, use_cudnn=True)(x)
    with pytest.raises(ValueError, match="use_cudnn=True needs use_peepholes=False"):
        PeepholeLSTM(5, use_cudnn=True)
    assert PeepholeLSTM(5, use_peepholes=False)(x).shape == (2, 5)  # "auto" falls back


@pytest.mark.parametrize("fused", [True, False])
def test_stateful_carries_states_like_keras(fused):
    """Peepholes off: equal to keras.layers.LSTM(stateful=True) over batches and after a reset;
    peepholes on: each batch starts from the NumPy reference's final states of the last one."""
    batches = [RNG.normal(size=(3, 4, 2)).astype("float32") for _ in range(2)]
    ref = keras.layers.LSTM(5, stateful=True, return_sequences=True)
    ours = PeepholeLSTM(5, stateful=True, return_sequences=True, use_peepholes=False, fused=fused)
    for layer in (ref, ours):
        layer.build(batches[0].shape)
    _copy_weights(ref, ours)
    for x in [*batches, "reset", batches[1]]:
        if isinstance(x, str):
            ref.reset_states()
            ours.reset_states()
            continue
        np.testing.assert_allclose(ours(x), ref(x), rtol=1e-5, atol=1e-6)

    w = _random_weights(2, 5)
    peep = PeepholeLSTM(5, stateful=True, return_sequences=True, fused=fused, dtype="float64")
    peep.build(batches[0].shape)
    _set(peep, *w)
    h = c = None
    for x in batches:
        y_ref, h, c = numpy_peephole_lstm(x.astype("float64"), *w, h0=h, c0=c)
        np.testing.assert_allclose(peep(x), y_ref, rtol=1e-5, atol=1e-7)


def test_unroll_equals_keras_and_numpy():
    x = RNG.normal(size=(3, 5, 2)).astype("float32")
    ref = keras.layers.LSTM(4, unroll=True, return_sequences=True)
    ours = PeepholeLSTM(4, unroll=True, return_sequences=True, use_peepholes=False)
    assert not ours.can_fuse()  # unroll runs the generic cell loop
    for layer in (ref, ours):
        layer.build(x.shape)
    _copy_weights(ref, ours)
    np.testing.assert_allclose(ours(x), ref(x), rtol=1e-5, atol=1e-6)

    w = _random_weights(2, 4)
    peep = PeepholeLSTM(4, unroll=True, return_sequences=True, dtype="float64")
    peep.build(x.shape)
    _set(peep, *w)
    y_ref = numpy_peephole_lstm(x.astype("float64"), *w)[0]
    np.testing.assert_allclose(peep(x), y_ref, rtol=1e-5, atol=1e-7)


def test_saved_model_export_round_trip(tmp_path):
    model = _model()
    for v in model.weights:
        v.assign(RNG.normal(size=v.shape) * 0.3)
    x = RNG.normal(size=(3, 5, 3)).astype("float32")
    model.export(str(tmp_path / "export"), verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "export"))
    np.testing.assert_allclose(model(x), reloaded.serve(tf.constant(x)), rtol=1e-6)


# --- mixed precision ---------------------------------------------------------------------------
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    x = RNG.normal(size=(2, 6, 3)).astype("float32")
    ref = PeepholeLSTM(4, return_sequences=True)
    ref.build(x.shape)
    for wrapper in (False, True):
        layer = PeepholeLSTM(4, return_sequences=True, dtype=policy)
        layer = Bidirectional(layer, dtype=policy) if wrapper else layer
        layer.build(x.shape)
        assert all(v.dtype == "float32" for v in layer.weights)
        if not wrapper:
            _copy_weights(ref, layer)
        with tf.GradientTape() as tape:
            y = layer(x)
            loss = tf.reduce_sum(tf.cast(y, "float32"))
        assert y.dtype == keras.mixed_precision.DTypePolicy(policy).compute_dtype
        grads = tape.gradient(loss, layer.trainable_weights)
        assert all(g is not None and g.dtype == tf.float32 for g in grads)
        assert all(np.all(np.isfinite(g)) for g in grads)
        if not wrapper:
            tol = 2e-2 if policy == "mixed_bfloat16" else 5e-3
            np.testing.assert_allclose(np.asarray(y, "float32"), ref(x), atol=tol)


# --- invalid arguments -------------------------------------------------------------------------
@pytest.mark.parametrize("units", [0, -3, 2.5, True])
def test_invalid_units(units):
    with pytest.raises(ValueError, match="units"):
        PeepholeLSTM(units)
    with pytest.raises(ValueError, match="units"):
        PeepholeLSTMCell(units)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="dropout"):
        PeepholeLSTM(3, dropout=1.5)
    with pytest.raises(ValueError, match="recurrent_dropout"):
        PeepholeLSTMCell(3, recurrent_dropout=-0.1)
    with pytest.raises(ValueError, match="merge_mode"):
        Bidirectional(PeepholeLSTM(3), merge_mode="max")
    with pytest.raises(ValueError, match="fused"):
        PeepholeLSTM(3, fused="yes")
    with pytest.raises(ValueError, match="fused=True"):
        PeepholeLSTM(3, fused=True, activation="relu")
    with pytest.raises(ValueError, match="layer"):
        Bidirectional("lstm")
    with pytest.raises(ValueError, match="ndim|rank"):
        PeepholeLSTM(3)(np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="ndim|rank"):
        Bidirectional(PeepholeLSTM(3))(np.zeros((2, 3, 4, 5), "float32"))


def test_custom_activation_falls_back_to_cell_loop():
    x = RNG.normal(size=(2, 4, 3)).astype("float32")
    layer = PeepholeLSTM(3, activation="relu", return_sequences=True)
    assert not layer.can_fuse()
    layer.build(x.shape)
    reference = keras.layers.RNN(PeepholeLSTMCell(3, activation="relu"), return_sequences=True)
    reference.build(x.shape)
    _copy_weights(layer, reference)
    np.testing.assert_allclose(layer(x), reference(x), rtol=1e-6)


# --- distribution ------------------------------------------------------------------------------
def test_mirrored_strategy_matches_single_device(mirrored_strategy):
    x = RNG.normal(size=(8, 6, 3)).astype("float32")
    mask_x = x.copy()
    mask_x[::2, 4:] = 0.0
    y = RNG.normal(size=(8, 2)).astype("float32")

    def build():
        keras.utils.set_random_seed(7)
        inputs = keras.Input((6, 3))
        h = keras.layers.Masking(0.0)(inputs)
        h = Bidirectional(PeepholeLSTM(4, return_sequences=True))(h)
        h = PeepholeLSTM(4)(h)
        model = keras.Model(inputs, keras.layers.Dense(2)(h))
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        return model

    single = build()
    single.fit(mask_x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    with mirrored_strategy.scope():
        mirrored = build()
    mirrored.fit(mask_x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    for a, b in zip(single.weights, mirrored.weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_gate_activations_match_numpy_step():
    x = RNG.normal(size=(2, 3))
    h, c = RNG.normal(size=(2, 4)), RNG.normal(size=(2, 4))
    w = _random_weights(3, 4)
    cell = PeepholeLSTMCell(4, dtype="float64")
    cell.build(x.shape)
    _set(cell, *w)
    gates = cell.gate_activations(x, [h, c])
    z_i, z_f, z_c, z_o = np.split(x @ w[0] + h @ w[1] + w[2], 4, axis=-1)
    i = _sigmoid(z_i + w[3][0] * c)
    f = _sigmoid(z_f + w[3][1] * c)
    c_new = f * c + i * np.tanh(z_c)
    o = _sigmoid(z_o + w[3][2] * c_new)
    for name, want in {
        "i": i,
        "f": f,
        "g": np.tanh(z_c),
        "c": c_new,
        "o": o,
        "h": o * np.tanh(c_new),
    }.items():
        np.testing.assert_allclose(gates[name], want, rtol=1e-10, err_msg=name)
    y, _ = cell(x, [h, c])
    np.testing.assert_allclose(y, gates["h"], rtol=1e-12)


@pytest.mark.parametrize("wrapper", [False, True])
def test_xla_loops_match_numpy_reference(wrapper):
    """jit_compile=True compiles the two loops with XLA; results must not change."""
    b, t, d, u = 3, 7, 2, 4
    x = RNG.normal(size=(b, t, d))
    mask = _mask(b, t, "post")
    base = PeepholeLSTM(u, return_sequences=True, jit_compile=True, dtype="float64")
    layer = Bidirectional(base, dtype="float64") if wrapper else base
    layer.build(x.shape)
    directions = [layer.forward_layer, layer.backward_layer] if wrapper else [layer]
    weights = [_random_weights(d, u) for _ in directions]
    for direction, w in zip(directions, weights):
        _set(direction, *w)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = layer(xt, mask=mask)
        loss = tf.reduce_sum(y * y)
    grad_x = tape.gradient(loss, xt)

    def reference(x_np):
        y_f = numpy_peephole_lstm(x_np, *weights[0], mask=mask)[0]
        if not wrapper:
            return y_f
        y_b = numpy_peephole_lstm(x_np[:, ::-1], *weights[1], mask=mask[:, ::-1])[0]
        return np.concatenate(
            [y_f * mask[..., None], (y_b * mask[:, ::-1, None])[:, ::-1]], axis=-1
        )

    np.testing.assert_allclose(y, reference(x), rtol=1e-5, atol=1e-7)
    eps = 1e-6
    for _ in range(6):
        pos = tuple(RNG.integers(0, n) for n in x.shape)
        plus, minus = x.copy(), x.copy()
        plus[pos] += eps
        minus[pos] -= eps
        numeric = (np.sum(reference(plus) ** 2) - np.sum(reference(minus) ** 2)) / (2 * eps)
        np.testing.assert_allclose(np.asarray(grad_x)[pos], numeric, rtol=1e-5, atol=1e-7)
