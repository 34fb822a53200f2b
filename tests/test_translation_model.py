"""Translation model and decoders on small untrained models vs NumPy and step-wise references."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from shared.data.tokenizer import EOS_ID
from suites.translation.decoding import (
    beam_search,
    greedy_decode,
    max_lengths,
    sequence_log_prob,
)
from suites.translation.model import Attention, Seq2SeqAttention, SmoothedSequenceLoss

VOCAB = 13


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("kind", ["dot", "general", "bahdanau"])
def test_attention_matches_numpy(kind):
    rng = np.random.default_rng(0)
    query = rng.normal(size=(2, 6)).astype("float32")
    memory = rng.normal(size=(2, 5, 6)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    layer = Attention(kind, units=4, query_dim=6, memory_dim=6)
    layer.build()
    for w in layer.weights:
        w.assign(rng.normal(size=w.shape).astype("float32"))
    context, weights = layer(query, layer.keys(memory), memory, mask)
    if kind == "dot":
        scores = np.einsum("bd,bsd->bs", query, memory)
    elif kind == "general":
        scores = np.einsum("bd,bsd->bs", query, memory @ layer.memory_kernel.numpy())
    else:
        hidden = np.tanh(
            memory @ layer.memory_kernel.numpy() + (query @ layer.query_kernel.numpy())[:, None, :]
        )
        scores = hidden @ layer.score_vector.numpy()
    expected = _softmax(np.where(mask, scores, -np.inf))
    np.testing.assert_allclose(weights, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(context, np.einsum("bs,bsd->bd", expected, memory), rtol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="query_dim == memory_dim"):
        Attention("dot", 4, query_dim=8, memory_dim=6)
    with pytest.raises(ValueError, match="kind"):
        Attention("luong", 4, 8, 8)
    with pytest.raises(ValueError, match="dropout"):
        Seq2SeqAttention(10, 10, dropout=1.0)
    with pytest.raises(ValueError, match="encoder_layers"):
        Seq2SeqAttention(10, 10, encoder_layers=0)
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(None, tf.zeros([1, 2], tf.int32), beam_size=0)


def test_smoothed_loss_matches_numpy():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 4, 7)).astype("float32")
    labels = np.array([[3, 5, 1, 0], [2, 0, 0, 0]], np.int32)
    eps = 0.2
    loss = float(SmoothedSequenceLoss(eps)(labels, logits))
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    per_token = -(1 - eps) * np.take_along_axis(log_p, labels[..., None], -1)[..., 0]
    per_token -= eps * log_p.mean(-1)
    real = labels != 0
    assert loss == pytest.approx(per_token[real].mean(), rel=1e-5)


def _model(**kwargs) -> Seq2SeqAttention:
    keras.utils.set_random_seed(3)
    options = dict(
        embedding_dim=8, encoder_units=8, decoder_units=12, attention_units=6, dropout=0.1
    )
    options.update(kwargs)
    model = Seq2SeqAttention(VOCAB, VOCAB, **options)
    model.build()
    return model


SOURCE = np.array([[5, 6, 7, 8, EOS_ID], [9, 4, EOS_ID, 0, 0], [10, EOS_ID, 0, 0, 0]], np.int32)
TARGET_IN = np.array([[2, 7, 8, 9], [2, 4, 5, 0], [2, 11, 0, 0]], np.int32)


@pytest.mark.parametrize(
    "options",
    [
        {"attention": "general", "decoder_layers": 2},
        {"attention": "bahdanau", "tie_target_embedding": True},
        {"attention": "dot", "decoder_units": 16, "input_feeding": False},
    ],
)
def test_teacher_forcing_equals_step_by_step(options):
    model = _model(**options)
    logits = model({"source": SOURCE, "target_in": TARGET_IN}).numpy()
    weights = model.attention_weights(SOURCE, TARGET_IN).numpy()
    memory, keys, mask, states = model.encode(SOURCE)
    for t in range(TARGET_IN.shape[1]):
        step_logits, states, step_weights = model.decode_step(
            TARGET_IN[:, t], states, memory, keys, mask
        )
        np.testing.assert_allclose(logits[:, t], step_logits, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(weights[:, t], step_weights, rtol=1e-4, atol=1e-6)
    assert np.all(weights[SOURCE[:, None, :].repeat(4, 1) == 0] == 0)  # padding gets no attention
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)


def test_padding_does_not_change_outputs():
    model = _model()
    single = model({"source": SOURCE[1:2, :3], "target_in": TARGET_IN[1:2, :3]}).numpy()
    padded = model({"source": SOURCE[1:2], "target_in": TARGET_IN[1:2]}).numpy()
    np.testing.assert_allclose(single, padded[:, :3], rtol=1e-4, atol=1e-5)


def test_save_load_round_trip(tmp_path):
    model = _model(tie_target_embedding=True, decoder_layers=2)
    inputs = {"source": SOURCE, "target_in": TARGET_IN}
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded(inputs), model(inputs), rtol=1e-6)
    assert loaded.get_config() == model.get_config()


def test_decoders_on_untrained_model():
    model = _model()
    ids, scores = greedy_decode(model, SOURCE, max_length_ratio=1.0, max_length_offset=2)
    limits = max_lengths(SOURCE, 1.0, 2).numpy()
    ids = ids.numpy()
    for row, limit in zip(ids, limits, strict=True):
        eos = list(row).index(EOS_ID)  # every output ends with eos within its limit
        assert eos < limit and np.all(row[eos + 1 :] == 0)
    np.testing.assert_allclose(scores, sequence_log_prob(model, SOURCE, ids), rtol=1e-4)
    beam_ids, beam_scores = beam_search(model, SOURCE, 1, 0.0, 1.0, 2)
    np.testing.assert_array_equal(beam_ids, ids)
    np.testing.assert_allclose(beam_scores, scores, rtol=1e-5)
    wide_ids, wide_scores = beam_search(model, SOURCE, 4, 0.0, 1.0, 2)
    np.testing.assert_allclose(wide_scores, sequence_log_prob(model, SOURCE, wide_ids), rtol=1e-4)
