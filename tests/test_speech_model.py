"""The CTC acoustic model and decoders against NumPy references."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from suites.speech.config import FeatureConfig, ModelConfig
from suites.speech.decoding import ctc_decode, ids_to_strings, lexicon_decode, sparse_to_lists
from suites.speech.model import build_model

FC6 = FeatureConfig(n_mels=6)


def _numpy_greedy(logits, length, blank):
    best = logits[:length].argmax(-1)
    out, prev = [], None
    for k in best:
        if k != prev and k != blank:
            out.append(int(k))
        prev = k
    return out


def _numpy_ctc_nll(logits, labels, blank):
    """-log p(labels | logits) by the CTC forward algorithm in float64 (Graves et al., 2006)."""
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True))
    logp = logp - logits.max(-1, keepdims=True)
    ext = [blank]
    for c in labels:
        ext += [c, blank]
    alpha = np.full(len(ext), -np.inf)
    alpha[0], alpha[1] = logp[0, blank], logp[0, ext[1]]
    for t in range(1, len(logits)):
        new = np.full(len(ext), -np.inf)
        for s, c in enumerate(ext):
            terms = [alpha[s]] + ([alpha[s - 1]] if s >= 1 else [])
            if s >= 2 and c != blank and c != ext[s - 2]:
                terms.append(alpha[s - 2])
            new[s] = np.logaddexp.reduce(terms) + logp[t, c]
        alpha = new
    return -np.logaddexp(alpha[-1], alpha[-2])


def test_greedy_decoder_matches_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 30, 6)).astype(np.float32)
    lengths = np.array([30, 17, 1, 8, 25], np.int32)
    got = sparse_to_lists(ctc_decode(logits, lengths, beam_width=0), 5)
    assert got == [_numpy_greedy(logits[i], lengths[i], 5) for i in range(5)]


def test_beam_width_one_equals_greedy_on_peaked_outputs():
    rng = np.random.default_rng(1)
    best = rng.integers(0, 6, size=(4, 40))
    logits = rng.normal(size=(4, 40, 6)).astype(np.float32)
    np.put_along_axis(logits, best[..., None], 12.0, axis=-1)  # a trained model's peaked output
    lengths = np.array([40, 33, 12, 5], np.int32)
    greedy = sparse_to_lists(ctc_decode(logits, lengths, 0), 4)
    assert sparse_to_lists(ctc_decode(logits, lengths, 1), 4) == greedy
    assert greedy == [_numpy_greedy(logits[i], lengths[i], 5) for i in range(4)]


def test_beam_search_finds_the_most_probable_labelling():
    # Two frames over {a, blank}: best path "blank blank" (p=.36) but labelling "a" has
    # p = .4*.6 + .6*.4 + .4*.4 = .64, so beam search must prefer "a" and greedy returns "".
    probs = np.array([[[0.4, 0.6], [0.4, 0.6]]])
    logits = np.log(probs).astype(np.float32)
    assert sparse_to_lists(ctc_decode(logits, [2], 0), 1) == [[]]
    assert sparse_to_lists(ctc_decode(logits, [2], 4), 1) == [[0]]


def test_lexicon_decode_picks_the_most_likely_entry():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(4, 12, 5)).astype(np.float32) * 3
    lengths = np.array([12, 9, 6, 3], np.int32)
    lexicon = [[0], [1, 2], [2, 2, 3], [3, 0, 1]]
    got = lexicon_decode(logits, lengths, lexicon).numpy()
    for i in range(4):
        nll = [_numpy_ctc_nll(logits[i, : lengths[i]].astype(np.float64), e, 4) for e in lexicon]
        assert got[i] == int(np.argmin(nll))


def test_ids_to_strings():
    sparse = tf.SparseTensor([[0, 0], [0, 1], [2, 0]], [1, 0, 2], [3, 2])
    assert ids_to_strings(sparse, "ab ", 3).numpy().tolist() == [b"ba", b"", b" "]


@pytest.mark.parametrize("stride, kind", [(2, "logmel"), (1, "logmel"), (2, "mfcc")])
def test_model_ctc_loss_matches_forward_algorithm(stride, kind):
    cfg = ModelConfig(stride=stride, lstm_units=8, lstm_layers=1, dropout=0.0, utterance_norm=True)
    features = FeatureConfig(kind=kind, n_mels=6, n_mfcc=4)
    model = build_model(cfg, features, num_classes=5, mean=[0.0] * 6, variance=[1.0] * 6)
    rng = np.random.default_rng(2)
    x = {"features": rng.normal(size=(3, 11, 6)).astype(np.float32),
         "feature_lengths": np.array([11, 7, 4], np.int32)}  # fmt: skip
    labels = np.array([[0, 1, 1, 3], [2, -1, -1, -1], [3, 0, -1, -1]], np.int32)
    out = model(x, training=False)
    logits, out_len = out["logits"].numpy(), out["logit_lengths"].numpy()
    np.testing.assert_array_equal(out_len, -(-x["feature_lengths"] // stride))
    valid = [[c for c in row if c >= 0] for row in labels]
    ref = np.mean(
        [_numpy_ctc_nll(logits[i, : out_len[i]].astype(np.float64), valid[i], 4) for i in range(3)]
    )
    loss = model.compute_loss(x, labels, out, training=False)
    np.testing.assert_allclose(float(loss), ref, rtol=1e-4)
    # Padding frames must not change the valid outputs.
    padded = {
        **x,
        "features": np.concatenate([x["features"], 9 * np.ones((3, 5, 6), np.float32)], 1),
    }
    out_padded = model(padded, training=False)["logits"].numpy()
    for i in range(3):
        np.testing.assert_allclose(out_padded[i, : out_len[i]], logits[i, : out_len[i]], atol=1e-5)


def test_model_save_round_trip_loads_with_keras_alone(tmp_path):
    features = FeatureConfig(kind="mfcc", n_mels=10, n_mfcc=6)
    cfg = ModelConfig(lstm_units=8, vtlp=True, utterance_norm=True, utterance_var_norm=True)
    model = build_model(cfg, features, 7, mean=[1.0] * 10, variance=[4.0] * 10)
    x = {"features": np.random.default_rng(3).normal(size=(2, 9, 10)).astype(np.float32),
         "feature_lengths": np.array([9, 5], np.int32)}  # fmt: skip
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded).__name__ == "CTCModel"
    np.testing.assert_allclose(loaded(x)["logits"], model(x)["logits"], atol=1e-6)
    names = {type(layer).__name__ for layer in loaded.layers}
    assert names >= {"VTLP", "Cepstra", "UtteranceMeanNorm", "SpecAugment", "Bidirectional"}


@pytest.mark.slow  # two strategies, two graph compilations (~10 s idle, ~40 s on a busy host)
def test_mirrored_training_step_equals_single_device(mirrored_strategy):
    cfg = ModelConfig(lstm_units=8, lstm_layers=1, dropout=0.0, spec_augment=False)
    rng = np.random.default_rng(6)
    x = {"features": rng.normal(size=(4, 12, 6)).astype(np.float32),
         "feature_lengths": np.array([12, 9, 6, 12], np.int32)}  # fmt: skip
    y = np.array([[0, 1], [2, -1], [1, 1], [3, 0]], np.int32)

    def one_step(strategy, weights=None):
        with strategy.scope():
            model = build_model(cfg, FC6, 5, mean=[0.0] * 6, variance=[1.0] * 6)
            model.compile(optimizer=keras.optimizers.SGD(0.5))
        if weights is not None:
            model.set_weights(weights)
        start = model.get_weights()
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
        model.fit(ds, epochs=1, verbose=0)
        return start, model.get_weights()

    start, single = one_step(tf.distribute.get_strategy())
    _, multi = one_step(mirrored_strategy, start)
    assert any(not np.allclose(a, b) for a, b in zip(start, single, strict=True))
    for a, b in zip(single, multi, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
