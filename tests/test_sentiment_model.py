"""Sentiment model pieces: mask-aware pooling, masking end to end, text normalisation."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from suites.sentiment.model import AttentionPooling1D, MaskedGlobalMaxPooling1D, build_classifier
from suites.sentiment.text import normalize

RNG = np.random.default_rng(0)
X = RNG.normal(size=(3, 5, 4)).astype("float32")
LENGTHS = np.array([5, 2, 0])  # the last row is empty (all padding)
MASK = np.arange(5)[None, :] < LENGTHS[:, None]


def test_masked_max_pooling_matches_numpy():
    pooled = np.asarray(MaskedGlobalMaxPooling1D()(X, mask=MASK))
    np.testing.assert_allclose(pooled[0], X[0].max(axis=0))
    np.testing.assert_allclose(pooled[1], X[1, :2].max(axis=0))
    np.testing.assert_array_equal(pooled[2], np.zeros(4))
    np.testing.assert_allclose(np.asarray(MaskedGlobalMaxPooling1D()(X)), X.max(axis=1))


def test_attention_pooling_matches_numpy_and_ignores_padding():
    layer = AttentionPooling1D(units=3)
    pooled = np.asarray(layer(X, mask=MASK))
    w, b, v = (np.asarray(t) for t in (layer.kernel, layer.bias, layer.context))
    for row, length in enumerate(LENGTHS):
        if length == 0:
            np.testing.assert_array_equal(pooled[row], np.zeros(4))
            continue
        h = X[row, :length]
        scores = (np.tanh(h @ w + b) @ v)[:, 0]
        alpha = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
        np.testing.assert_allclose(pooled[row], alpha @ h, rtol=1e-5, atol=1e-6)
    weights = np.asarray(layer.attention_weights(X, MASK))
    np.testing.assert_array_equal(weights[~MASK], 0.0)
    np.testing.assert_allclose(weights.sum(axis=1), [1, 1, 0], atol=1e-6)


def test_attention_pooling_config_keeps_every_constructor_argument():
    layer = AttentionPooling1D(units=7, kernel_initializer="he_normal", name="att")
    clone = AttentionPooling1D.from_config(layer.get_config())
    assert clone.units == 7 and clone.name == "att"
    assert isinstance(clone.kernel_initializer, keras.initializers.HeNormal)
    with pytest.raises(ValueError, match="units"):
        AttentionPooling1D(units=0)


@pytest.mark.parametrize("pooling", ["last", "max", "attention"])
def test_classifier_output_does_not_depend_on_padding(pooling):
    keras.utils.set_random_seed(1)
    model = build_classifier(
        vocab_size=20, num_classes=3, embedding_dim=6, lstm_units=[5, 4], pooling=pooling
    )
    ids = np.array([[3, 7, 9, 4], [5, 6, 0, 0]], np.int32)
    padded = np.pad(ids, [[0, 0], [0, 6]])
    short = np.asarray(model(ids, training=False))
    long = np.asarray(model(padded, training=False))
    assert short.shape == (2, 3)
    np.testing.assert_allclose(short.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(short, long, rtol=1e-5, atol=1e-6)
    # The second row alone (unpadded) gives the same output as inside the padded batch.
    alone = np.asarray(model(ids[1:, :2], training=False))
    np.testing.assert_allclose(alone[0], short[1], rtol=1e-5, atol=1e-6)
    # A fully padded (empty) row gives finite probabilities.
    empty = np.asarray(model(np.zeros((1, 3), np.int32), training=False))
    assert np.all(np.isfinite(empty))


def test_classifier_round_trips_through_keras_file(tmp_path):
    model = build_classifier(
        vocab_size=12, num_classes=2, embedding_dim=4, lstm_units=[3], pooling="attention"
    )
    ids = np.array([[1, 5, 7, 0]], np.int32)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(ids), model(ids), rtol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pooling": "mean"}, "pooling"),
        ({"lstm_units": []}, "lstm_units"),
        ({"dropout": 1.0}, "dropout"),
        ({"lstm_dropout": -0.1}, "lstm_dropout"),
        ({"num_classes": 1}, "num_classes"),
    ],
)
def test_classifier_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_classifier(**{"vocab_size": 10, "num_classes": 2, **kwargs})


def test_ptb_normalisation_maps_raw_text_to_sst_style_and_is_idempotent():
    raw = ["Don't (REALLY) like it's \"ending\"... OK!", "Can't stop", ""]
    got = [t.decode() for t in normalize(tf.constant(raw)).numpy()]
    assert got == [
        "do n't -lrb- really -rrb- like it 's '' ending '' ... ok !",
        "ca n't stop",
        "",
    ]
    sst = ["it 's a charming -lrb- and often affecting -rrb- journey .", "do n't bother ."]
    assert [t.decode() for t in normalize(tf.constant(sst)).numpy()] == sst
    assert [t.decode() for t in normalize(tf.constant(got)).numpy()] == got
    assert normalize(tf.constant(["As Is"]), "none").numpy()[0] == b"As Is"
