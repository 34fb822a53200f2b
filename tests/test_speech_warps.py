"""Test-time VTLN (suites/speech/warps.py) against a NumPy re-computation of its choice."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from suites.speech.config import FeatureConfig
from suites.speech.layers import VTLP
from suites.speech.warps import WarpSearch, best_path_scores

FC = FeatureConfig(sample_rate=8000, n_fft=256, hop_length=80, n_mels=12)


def _toy_model(classes=5, stride=2, seed=0):
    """A fixed random map of stacked frames to logits, with halved lengths (like a front end)."""
    w = np.random.default_rng(seed).normal(size=(FC.n_mels * stride, classes)).astype(np.float32)

    def model(inputs, training=False):
        x, n = inputs["features"], tf.cast(inputs["feature_lengths"], tf.int32)
        t = tf.shape(x)[1] // stride
        stacked = tf.reshape(x[:, : t * stride], [tf.shape(x)[0], t, FC.n_mels * stride])
        return {"logits": tf.matmul(stacked / 10.0, w), "logit_lengths": n // stride}

    return model


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_best_path_scores_is_the_greedy_path_log_probability():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(3, 7, 4)).astype(np.float32)
    lengths = np.array([7, 3, 1])
    got = best_path_scores(tf.constant(logits), tf.constant(lengths)).numpy()
    ref = [_log_softmax(logits[i, :n]).max(-1).sum() for i, n in enumerate(lengths)]
    np.testing.assert_allclose(got, ref, rtol=1e-5)


def test_each_utterance_gets_the_outputs_of_its_best_scoring_warp():
    rng = np.random.default_rng(2)
    factors = [0.9, 1.0, 1.12]
    feats = rng.normal(-40, 15, size=(6, 20, FC.n_mels)).astype(np.float32)
    lengths = np.array([20, 17, 9, 20, 4, 12], np.int32)
    model = _toy_model()
    out = WarpSearch(factors, FC, boundary=0.8)(model, feats, lengths)
    vtlp = VTLP(FC.sample_rate, FC.n_mels, FC.fmin, FC.fmax, 0.9, 1.12, 0.8)
    chosen = []
    for i in range(len(feats)):
        runs = []
        for f in factors:
            x = feats[i : i + 1] if f == 1.0 else vtlp.warp(feats[i : i + 1], tf.constant([f]))
            y = model(
                {"features": tf.constant(x), "feature_lengths": tf.constant(lengths[i : i + 1])}
            )
            n = int(y["logit_lengths"][0])
            logits = y["logits"].numpy()[0]
            runs.append((_log_softmax(logits[:n]).max(-1).sum(), logits, n))
        best = int(np.argmax([r[0] for r in runs]))
        chosen.append(factors[best])
        np.testing.assert_allclose(out["logits"].numpy()[i], runs[best][1], rtol=1e-5, atol=1e-5)
        assert int(out["logit_lengths"][i]) == runs[best][2]
    np.testing.assert_allclose(out["warp"].numpy(), chosen)
    assert len(set(chosen)) > 1  # the data exercise the choice, not one factor throughout


def test_a_single_factor_of_one_is_the_plain_model():
    feats = np.random.default_rng(3).normal(size=(2, 10, FC.n_mels)).astype(np.float32)
    lengths = np.array([10, 6], np.int32)
    model = _toy_model()
    out = WarpSearch([1.0], FC)(model, feats, lengths)
    plain = model({"features": tf.constant(feats), "feature_lengths": tf.constant(lengths)})
    np.testing.assert_array_equal(out["logits"].numpy(), plain["logits"].numpy())


def test_bad_settings_name_the_config_key():
    with pytest.raises(ValueError, match="model.test_warps"):
        WarpSearch([0.9, 3.0], FC)
    with pytest.raises(ValueError, match="model.test_warps"):
        WarpSearch([], FC)
