"""Ensembles of translation models (`--with-run`): the decoders rank by the members' mean
probability, checked against teacher forcing of each member separately (NumPy), and the
ensemble's export answers like its Keras decoders."""

from __future__ import annotations

import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from shared import cli, serving
from shared.config import load_config
from shared.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from shared.errors import UsageError
from shared.runs import load_checkpoint
from suites.translation.decoding import beam_search, greedy_decode
from suites.translation.ensemble import Ensemble
from suites.translation.model import Seq2SeqAttention
from suites.translation.serving import encode_source
from suites.translation.task import TranslationTask


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_run):
    run_dir = tiny_run("translation", tmp_path_factory.mktemp("ensemble") / "run")
    task = TranslationTask(load_config(run_dir / "config.yaml", task="translation"), run_dir)
    keras.utils.set_random_seed(3)
    untrained = task.build_model()  # a member that disagrees with the trained one
    return run_dir, task, load_checkpoint(run_dir, "best"), untrained


def _sources(task, count: int) -> tf.Tensor:
    texts = [s for s, _ in task.raw_pairs("test")[:count]]
    return encode_source(task.tokenizers()[0], tf.constant(texts))


def _member_log_probs(model, source, ids) -> np.ndarray:
    """Teacher-forced log-probabilities [B, T, V] of one member on the given outputs."""
    target_in = np.concatenate([np.full((ids.shape[0], 1), BOS_ID), ids[:, :-1]], axis=1)
    logits = model({"source": source, "target_in": tf.constant(target_in, tf.int32)})
    return tf.nn.log_softmax(logits).numpy().astype(np.float64)


def _reference(members, source, ids) -> tuple[np.ndarray, np.ndarray]:
    """(sum over emitted tokens of log mean_i p_i, the argmax token of mean_i p_i) per step.

    A row's tokens run up to its first eos (an untrained model may also emit padding's id).
    """
    mean = np.mean([np.exp(_member_log_probs(m, source, ids)) for m in members], axis=0)
    picked = np.take_along_axis(mean, ids[..., None], axis=-1)[..., 0]
    after_eos = np.cumsum(np.cumsum(ids == EOS_ID, axis=1), axis=1) > 1
    scores = np.sum(np.where(after_eos, 0.0, np.log(picked)), axis=1)
    return scores, mean.argmax(axis=-1)


def test_greedy_takes_the_argmax_of_the_mean_probability(trained):
    _, task, best, untrained = trained
    members = [best, untrained]
    source = _sources(task, 24)
    ids, scores = greedy_decode(Ensemble(members), source, 1.5, 4)
    ids = ids.numpy()
    reference, argmax = _reference(members, source, ids)
    np.testing.assert_allclose(scores, reference, rtol=1e-4, atol=1e-4)
    limits = np.ceil(1.5 * np.sum(source.numpy() != PAD_ID, axis=1)).astype(int) + 4
    for row in range(ids.shape[0]):
        emitted = int(np.sum(ids[row] != PAD_ID))
        free = emitted if emitted < limits[row] else emitted - 1  # the last may be forced eos
        np.testing.assert_array_equal(ids[row, :free], argmax[row, :free])
    # the members really disagree, so the test above is not the trained model's own greedy
    alone, _ = greedy_decode(untrained, source, 1.5, 4)
    assert alone.shape != ids.shape or np.any(alone.numpy() != ids)


def test_beam_search_scores_its_answers_by_the_mean_probability(trained):
    _, task, best, untrained = trained
    members = [best, untrained]
    source = _sources(task, 24)
    ensemble = Ensemble(members)
    _, greedy_scores = greedy_decode(ensemble, source, 1.5, 4)
    ids, scores = beam_search(ensemble, source, 3, 0.0, 1.5, 4)
    reference, _ = _reference(members, source, ids.numpy())
    np.testing.assert_allclose(scores, reference, rtol=1e-4, atol=1e-4)
    assert np.all(scores.numpy() >= greedy_scores.numpy() - 1e-4)


def test_members_of_every_attention_kind_and_depth_decode_together():
    """Members whose memories, keys and states differ in width and number (dot, general and
    bahdanau attention; 1 and 2 decoder layers) still get their own back at every step."""
    keras.utils.set_random_seed(11)
    shapes = [
        dict(attention="dot", encoder_units=8, decoder_units=16),
        dict(attention="general", encoder_units=12, decoder_units=20, decoder_layers=2),
        dict(attention="bahdanau", encoder_units=6, decoder_units=10, attention_units=7),
    ]
    members = []
    for shape in shapes:
        model = Seq2SeqAttention(30, 25, embedding_dim=8, dropout=0.0, **shape)
        model.build()
        members.append(model)
    source = tf.constant(np.random.default_rng(0).integers(3, 30, (6, 5)), tf.int32)
    ids, scores = greedy_decode(Ensemble(members), source, 1.5, 2)
    reference, _ = _reference(members, source, ids.numpy())
    np.testing.assert_allclose(scores, reference, rtol=1e-4, atol=1e-4)


def test_one_member_decodes_like_the_model(trained):
    _, task, best, _ = trained
    source = _sources(task, 16)
    for decode in (
        lambda m: greedy_decode(m, source, 1.5, 4),
        lambda m: beam_search(m, source, 3, 0.0, 1.5, 4),
    ):
        (ids, scores), (ensemble_ids, ensemble_scores) = decode(best), decode(Ensemble([best]))
        np.testing.assert_array_equal(ensemble_ids, ids)
        np.testing.assert_allclose(ensemble_scores, scores, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_with_run_evaluates_and_exports_one_saved_model(trained, tmp_path):
    run_dir, task, best, _ = trained
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)  # a second run with the same SentencePiece models
    keras.utils.set_random_seed(5)
    task.build_model().save(other / "checkpoints" / "best.keras")
    checkpoint = run_dir / "checkpoints" / "last.keras"
    base = ["--run-dir", str(run_dir), "--with-run", str(other), "--with-run", str(checkpoint)]
    assert cli.main(["evaluate", "translation", *base, "--split", "test", "--quiet"]) == 0
    assert (run_dir / "eval" / "ensemble" / "test" / "metrics.json").is_file()
    out = tmp_path / "export"
    assert cli.main(["export", "translation", *base, "--out", str(out), "--quiet"]) == 0
    loaded = serving.load_export(out, "translation")
    members = [best, load_checkpoint(other, "best"), load_checkpoint(run_dir, "last")]
    texts = [s for s, _ in task.raw_pairs("test")[:12]]
    got = [t.decode() for t in loaded("serving_default", text=tf.constant(texts))["translation"]]
    assert got == task.translate(Ensemble(members), texts, "beam")


def test_runs_with_other_sentencepiece_models_are_refused(trained, tmp_path, capsys):
    run_dir, task, best, _ = trained
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    config = load_config(
        other / "config.yaml", task="translation", overrides=["data.vocab_size=40"]
    )
    for model in (other / "artifacts").glob("spm.*"):
        model.unlink()
    other_task = TranslationTask(config, other)
    other_task.prepare()
    with pytest.raises(UsageError, match="SentencePiece models differ"):
        task.combine(best, [(other_task, best)])
    missing = run_dir / "checkpoints" / "epoch-99.keras"
    argv = ["evaluate", "translation", "--run-dir", str(run_dir), "--with-run", str(missing)]
    assert cli.main([*argv, "--split", "test"]) == cli.EXIT_USAGE
    assert "not a checkpoint file of a run" in capsys.readouterr().err
