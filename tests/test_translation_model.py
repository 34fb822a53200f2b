"""Translation model and decoders on small untrained models vs NumPy, step-wise and exhaustive
references."""

from __future__ import annotations

import itertools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from shared.data.tokenizer import BOS_ID, EOS_ID
from suites.translation.decoder import Attention, AttentionDecoder
from suites.translation.decoding import (
    beam_search,
    greedy_decode,
    max_lengths,
    sequence_log_prob,
)
from suites.translation.model import Seq2SeqAttention, SmoothedSequenceLoss

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


NON_DEFAULT = dict(
    embedding_dim=8,
    encoder_units=8,
    encoder_layers=2,
    decoder_units=12,
    decoder_layers=2,
    attention="bahdanau",
    attention_units=6,
    input_feeding=False,
    dropout=0.1,
    tie_target_embedding=True,
)


def test_save_load_round_trip_keeps_every_constructor_argument(tmp_path):
    keras.utils.set_random_seed(3)
    model = Seq2SeqAttention(VOCAB, VOCAB + 2, **NON_DEFAULT)
    model.build()
    inputs = {"source": SOURCE, "target_in": TARGET_IN}
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded(inputs), model(inputs), rtol=1e-6)
    expected = {**NON_DEFAULT, "source_vocab_size": VOCAB, "target_vocab_size": VOCAB + 2}
    assert {key: loaded.get_config()[key] for key in expected} == expected
    # the built structure follows them, not only the config dict
    assert len(loaded.encoder) == 2 and loaded.decoder.num_layers == 2
    assert loaded.decoder.attention.kind == "bahdanau" and loaded.decoder.input_feeding is False
    assert loaded.decoder.attention.units == 6 and loaded.dropout_rate == 0.1
    assert loaded.output_projection.units == 8  # tied: projects to the embedding width


def test_layer_and_loss_configs_keep_non_default_arguments():
    attention = Attention.from_config(Attention("bahdanau", 7, 5, 9).get_config())
    assert (attention.kind, attention.units, attention.query_dim, attention.memory_dim) == (
        "bahdanau",
        7,
        5,
        9,
    )
    decoder = AttentionDecoder(6, 3, 4, 6, "dot", 5, False, 0.25)
    decoder = AttentionDecoder.from_config(decoder.get_config())
    assert (decoder.units, decoder.num_layers, decoder.embedding_dim, decoder.memory_dim) == (
        6,
        3,
        4,
        6,
    )
    assert (decoder.attention_kind, decoder.attention_units) == ("dot", 5)
    assert decoder.input_feeding is False and decoder.dropout == 0.25
    loss = SmoothedSequenceLoss.from_config(SmoothedSequenceLoss(0.3).get_config())
    assert loss.label_smoothing == pytest.approx(0.3)


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


# -- beam search against exhaustive search ---------------------------------------------------
TINY_VOCAB = 6  # pad, unk, bos, eos and two words: every output sequence can be enumerated


def _exhaustive(model, source_row: np.ndarray, limit: int, alpha: float):
    """The best (ids, log p) over EVERY output of at most `limit` tokens ending in eos.

    A live hypothesis may emit any token but eos only ends it, and the last allowed position
    must be eos (as in `decoding._restrict`); log p is summed from teacher-forced logits, and
    the rank is log p / ((5 + length) / 6) ** alpha.
    """
    others = [t for t in range(TINY_VOCAB) if t != EOS_ID]
    candidates = [
        (*prefix, EOS_ID) for n in range(limit) for prefix in itertools.product(others, repeat=n)
    ]
    width = max(len(c) for c in candidates)
    target_in = np.zeros((len(candidates), width), np.int32)
    for i, c in enumerate(candidates):
        target_in[i, : len(c)] = (BOS_ID, *c[:-1])
    source = np.repeat(source_row[None], len(candidates), axis=0)
    logits = model({"source": source, "target_in": target_in}).numpy().astype(np.float64)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    best, best_rank, best_score = None, -math.inf, None
    for i, c in enumerate(candidates):
        score = sum(log_p[i, t, token] for t, token in enumerate(c))
        rank = score / ((5 + len(c)) / 6) ** alpha
        if rank > best_rank:
            best, best_rank, best_score = c, rank, score
    return list(best), best_score


def _tiny_model(eos_bias: float) -> Seq2SeqAttention:
    """An untrained model whose eos logit is lowered, so that output length is a real trade-off."""
    keras.utils.set_random_seed(11)
    model = Seq2SeqAttention(
        TINY_VOCAB, TINY_VOCAB, embedding_dim=4, encoder_units=4, decoder_units=6, dropout=0.0
    )
    model.build()
    bias = np.zeros(TINY_VOCAB, np.float32)
    bias[EOS_ID] = eos_bias
    model.output_projection.bias.assign(bias)
    return model


TINY_SOURCE = np.array([[4, 5, 4, EOS_ID], [5, EOS_ID, 0, 0], [4, EOS_ID, 0, 0]], np.int32)


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
def test_beam_search_equals_exhaustive_search(alpha):
    model = _tiny_model(eos_bias=-2.6)
    ratio, offset = 0.5, 2  # limits ceil(0.5 * n) + 2: 4, 3, 3 tokens
    limits = max_lengths(TINY_SOURCE, ratio, offset).numpy()
    # a beam as wide as all outputs prunes nothing, so it must find the exhaustive optimum
    ids, scores = beam_search(model, TINY_SOURCE, 160, alpha, ratio, offset)
    for row, limit in enumerate(limits):
        expected, expected_score = _exhaustive(model, TINY_SOURCE[row], int(limit), alpha)
        got = list(ids.numpy()[row])
        assert got[: len(expected)] == expected and not any(got[len(expected) :])
        assert scores.numpy()[row] == pytest.approx(expected_score, rel=1e-4, abs=1e-4)


def test_length_penalty_changes_the_exhaustive_winner():
    """The exhaustive reference distinguishes the penalties (else the test above proves little)."""
    model = _tiny_model(eos_bias=-2.6)
    winners = {alpha: _exhaustive(model, TINY_SOURCE[0], 4, alpha)[0] for alpha in (0.0, 2.0)}
    assert len(winners[2.0]) > len(winners[0.0])


class MarkovModel:
    """A "model" whose next-token log-probabilities depend on the previous token only.

    It has the two methods the decoders use (`encode`, `decode_step`), so beam search runs on a
    distribution known exactly: `log_probs[previous token]`.
    """

    def __init__(self, log_probs: np.ndarray):
        self.log_probs = log_probs.astype(np.float64)
        self.table = tf.constant(log_probs, tf.float32)

    def encode(self, source, training=False):
        batch = tf.shape(source)[0]
        memory = tf.zeros([batch, 1, 1])
        return memory, memory, tf.ones([batch, 1], tf.bool), [tf.zeros([batch, 1])]

    def decode_step(self, tokens, states, memory, keys, mask):
        return tf.gather(self.table, tokens), states, tf.ones([tf.shape(tokens)[0], 1])


def _reference_beam(log_probs: np.ndarray, k: int, alpha: float, limit: int):
    """GNMT beam search written out plainly: (tokens, log p) of the best hypothesis.

    Every step extends each live hypothesis by every token (only eos at the last allowed
    position), keeps finished ones as they are, and keeps the k best by log p / lp(length).
    """
    lp = lambda n: ((5 + n) / 6) ** alpha  # noqa: E731
    beams = [((), 0.0, False)]
    for step in range(limit):
        candidates = []
        for tokens, score, done in beams:
            if done:
                candidates.append((tokens, score, True))
                continue
            row = log_probs[tokens[-1] if tokens else BOS_ID]
            allowed = [EOS_ID] if step == limit - 1 else range(len(row))
            candidates += [((*tokens, v), score + row[v], v == EOS_ID) for v in allowed]
        candidates.sort(key=lambda c: c[1] / lp(len(c[0])), reverse=True)
        beams = candidates[:k]
        if all(done for _, _, done in beams):
            break
    tokens, score, _ = max(beams, key=lambda c: c[1] / lp(len(c[0])))
    return list(tokens), score


def _hand_made_log_probs() -> np.ndarray:
    """After bos: eos 0.239, "a" 0.7; after "a": eos 0.319, "b" 0.6; after "b": eos 0.05.

    Unpenalised, "eos" (log p -1.43) beats "a eos" (-1.50); with length penalty 0.6 "a eos"
    ranks -1.50 / 1.097 = -1.37 and wins. With 2 beams, "a b" (-0.87) fills one beam after step
    2, so the other holds "a eos" only if the penalty is applied while pruning, not just at the
    end: a search that ranks without it keeps "eos" there and returns it.
    """
    a, b = 4, 5
    probs = np.full((TINY_VOCAB, TINY_VOCAB), 1 / TINY_VOCAB)
    for previous, tokens, values in (
        (BOS_ID, [EOS_ID, a, b], [0.239, 0.7, 0.057]),
        (a, [EOS_ID, b], [0.319, 0.6]),
        (b, [EOS_ID, a, b], [0.05, 0.45, 0.45]),
    ):  # the rest of each row's mass spread over the other tokens
        probs[previous] = (1 - sum(values)) / (TINY_VOCAB - len(tokens))
        probs[previous, tokens] = values
    return np.log(probs)


MARKOV_SOURCE = np.array([[4, 5, 4, EOS_ID], [5, EOS_ID, 0, 0]], np.int32)


def test_length_penalty_decides_while_pruning():
    model = MarkovModel(_hand_made_log_probs())
    limits = max_lengths(MARKOV_SOURCE, 1.0, 2).numpy()
    for alpha, expected in ((0.0, [EOS_ID]), (0.6, [4, EOS_ID])):
        ids, _ = beam_search(model, MARKOV_SOURCE, 2, alpha, 1.0, 2)
        for row, limit in zip(ids.numpy(), limits, strict=True):
            assert list(row[: len(expected)]) == expected and not any(row[len(expected) :])
            assert _reference_beam(model.log_probs, 2, alpha, int(limit))[0] == expected


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
@pytest.mark.parametrize("k", [2, 3])
def test_narrow_beam_equals_reference_beam_search(k, alpha):
    rng = np.random.default_rng(2)
    logits = rng.normal(scale=1.5, size=(TINY_VOCAB, TINY_VOCAB))
    model = MarkovModel(logits - np.log(np.exp(logits).sum(axis=1, keepdims=True)))
    source = np.array([[4, 5, 4, 4, EOS_ID], [5, EOS_ID, 0, 0, 0], [4, 4, EOS_ID, 0, 0]], np.int32)
    limits = max_lengths(source, 2.0, 2).numpy()  # 12, 6, 8 tokens
    ids, scores = beam_search(model, source, k, alpha, 2.0, 2)
    for row, limit in enumerate(limits):
        expected, expected_score = _reference_beam(model.log_probs, k, alpha, int(limit))
        got = list(ids.numpy()[row])
        assert got[: len(expected)] == expected and not any(got[len(expected) :])
        assert scores.numpy()[row] == pytest.approx(expected_score, rel=1e-4, abs=1e-4)


def test_search_stops_once_no_live_beam_can_win():
    """Unpenalised, after 3 steps the 2 beams hold "eos" (log p -1.43, finished) and "a b a" or
    "a b b" (-1.67, live): no extension can beat "eos", so the loop ends there instead of at the
    limit of 6 tokens (what it returns is the full search's answer, checked above)."""
    model = MarkovModel(_hand_made_log_probs())
    ids, scores = beam_search(model, MARKOV_SOURCE, 2, 0.0, 1.0, 2)
    assert ids.shape[1] == 3
    assert ids.numpy()[:, 0].tolist() == [EOS_ID, EOS_ID] and not ids.numpy()[:, 1:].any()
    assert scores.numpy() == pytest.approx([math.log(0.239)] * 2, rel=1e-5)
