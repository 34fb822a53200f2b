"""End to end on synthetic speech: train the tiny config, evaluate, export, predict."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from shared.config import load_config
from shared.task import get_task
from shared.training import loop
from suites.speech.audio import load_audio, resample
from suites.speech.decoding import ctc_decode, lexicon_decode, sparse_to_lists
from suites.speech.features import compute_features
from suites.speech.serving import export_server, pad_batch, read_sample_rate
from suites.speech.warps import WarpSearch

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("speech_tiny")
    # Per-utterance mean/variance normalisation and VTLP on: the export round trip covers them.
    overrides = [
        "training.progress=none",
        "model.lexicon=['yes', 'no', up, down]",
        "model.utterance_norm=true",
        "model.utterance_var_norm=true",
        "model.vtlp=true",
        "model.word_correction=true",
    ]
    cfg = load_config(REPO / "configs/speech/tiny.yaml", overrides=overrides)
    task_cls = get_task("speech")
    start = time.perf_counter()
    loop.train(task_cls, cfg, run_dir)
    print(f"tiny speech training: {time.perf_counter() - start:.1f} s")
    task = task_cls(cfg, run_dir)
    task.prepare()
    model = loop.load_checkpoint(task, run_dir)
    return task, model


def _test_wavs(task):
    _, meta = task.caches["test"]
    synth = next((task.cache_dir).glob("synthetic-*"))
    paths = [synth / "wavs" / f"{i}.wav" for i in meta["ids"]]
    return paths, meta["transcripts"]


def test_tiny_config_learns_synthetic_words(trained):
    task, model = trained
    results = task.evaluate(model, "test")
    assert results["cer_greedy"] <= 0.1 and results["cer_beam"] <= 0.1, results
    assert results["accuracy_lexicon"] >= 0.9, results
    hyps = (task.run_dir / "eval" / "hypotheses_test.tsv").read_text().splitlines()
    assert hyps[0] == "id\tspeaker\treference\tgreedy\tbeam\tlexicon\tvocab"
    assert len(hyps) - 1 == task.caches["test"][1]["count"]
    # Vocabulary correction: every output word is a training word or the beam's own word.
    train_words = {w for t in task.caches["train"][1]["transcripts"] for w in t.split()}
    for row in hyps[1:]:
        *_, beam, _, vocab = row.split("\t")
        assert len(vocab.split()) == len(beam.split())
        for b, v in zip(beam.split(), vocab.split(), strict=True):
            assert v == b or (v in train_words and b not in train_words), row
    assert results["cer_vocab"] <= results["cer_beam"] + 0.02, results


def test_lm_decoder_on_trained_model(trained, monkeypatch):
    import dataclasses

    from shared.metrics import speech as sm

    task, model = trained
    monkeypatch.setattr(task.config, "model", dataclasses.replace(task.config.model, lm_order=3))
    results = task.evaluate(model, "test")
    assert results["cer_lm"] <= 0.1, results
    header = (task.run_dir / "eval" / "hypotheses_test.tsv").read_text().splitlines()[0]
    assert header == "id\tspeaker\treference\tgreedy\tbeam\tlexicon\tvocab\tlm"
    # weight 0 and bonus 0: plain prefix beam search, as good as TF's beam search here
    _, refs, log_probs = task.split_log_probs(model, "test")
    plain = task.lm_decode(log_probs, task.language_model(), 0.0, 0.0)
    assert sm.cer(refs, plain) <= results["cer_beam"] + 0.02


def test_beam_width_one_equals_greedy_on_trained_model(trained):
    task, model = trained
    _, refs, greedy, beam1 = task.transcribe_split(model, "validation", beam_width=1)
    assert beam1 == greedy and len(refs) > 5


def test_test_warps_in_evaluate(trained, monkeypatch):
    import dataclasses

    task, model = trained
    plain = task.transcribe_split(model, "test", beam_width=4)
    m = task.config.model
    monkeypatch.setattr(task.config, "model", dataclasses.replace(m, test_warps=[1.0]))
    assert task.transcribe_split(model, "test", beam_width=4) == plain  # factor 1 = no warp
    monkeypatch.setattr(task.config, "model", dataclasses.replace(m, test_warps=[0.9, 1.0, 1.1]))
    results = task.evaluate(model, "test")
    assert results["cer_greedy"] <= 0.1 and results["accuracy_lexicon"] >= 0.9, results


def test_export_round_trip_equals_keras_decode(trained, tmp_path):
    task, model = trained
    out = tmp_path / "export"
    task.export(model, out)
    assert read_sample_rate(out) == 16000
    paths, refs = _test_wavs(task)
    waves = [load_audio(p, 16000) for p in paths]
    batch, lengths = pad_batch(waves)
    serve = tf.saved_model.load(str(out)).signatures["serving_default"]
    served = serve(waveform=tf.constant(batch), waveform_length=tf.constant(lengths))
    exported = [t.decode() for t in served["transcript"].numpy()]
    # Keras path: librosa features, padded, through the checkpointed model, greedy decode.
    cfg = task.config.data.features
    feats = [compute_features(w, cfg) for w in waves]
    x = np.zeros((len(feats), max(len(f) for f in feats), cfg.dim), np.float32)
    for i, f in enumerate(feats):
        x[i, : len(f)] = f
    y = model({"features": x, "feature_lengths": np.array([len(f) for f in feats])})
    ids = sparse_to_lists(ctc_decode(y["logits"], y["logit_lengths"]), len(feats))
    assert exported == [task.vocab.decode(i) for i in ids]
    assert np.mean([h == r for h, r in zip(exported, refs, strict=True)]) >= 0.9
    # A lexicon-decoding export equals the task's lexicon decode of the same utterances.
    lex_dir = tmp_path / "export_lexicon"
    export_server(model, cfg, task.vocab.alphabet, lex_dir, lexicon=task.config.model.lexicon)
    served = tf.saved_model.load(str(lex_dir)).signatures["serving_default"](
        waveform=tf.constant(batch), waveform_length=tf.constant(lengths)
    )
    lexicon = task.config.model.lexicon
    lex_ids = [task.vocab.encode(w) for w in lexicon]
    best = lexicon_decode(y["logits"], y["logit_lengths"], lex_ids).numpy()
    assert [t.decode() for t in served["transcript"].numpy()] == [lexicon[j] for j in best]
    # Test-time VTLN in the export: the same warp choice and transcripts as on librosa features.
    search = WarpSearch([0.9, 1.0, 1.1], cfg, task.config.model.vtlp_boundary)
    warp_dir = tmp_path / "export_warps"
    export_server(model, cfg, task.vocab.alphabet, warp_dir, warps=search)
    served = tf.saved_model.load(str(warp_dir)).signatures["serving_default"](
        waveform=tf.constant(batch), waveform_length=tf.constant(lengths)
    )
    yw = search(model, x, np.array([len(f) for f in feats]))
    ids = sparse_to_lists(ctc_decode(yw["logits"], yw["logit_lengths"]), len(feats))
    assert [t.decode() for t in served["transcript"].numpy()] == [task.vocab.decode(i) for i in ids]


def test_cli_predict_any_rate_and_bad_files(trained, tmp_path, capsys):
    from shared.cli import main

    task, model = trained
    out = tmp_path / "export"
    task.export(model, out)
    paths, refs = _test_wavs(task)
    wave = load_audio(paths[0], 16000)
    resampled = tmp_path / "resampled_44k.wav"
    sf.write(resampled, resample(wave, 16000, 44100), 44100)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"not audio at all")
    argv = ["predict", "speech", "--export-dir", str(out)]
    for p in (paths[0], resampled, corrupt):
        argv += ["--input", str(p)]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == f"{paths[0]}\t{refs[0]}"
    assert lines[1] == f"{resampled}\t{refs[0]}"
    assert lines[2].startswith(f"{corrupt}\t<error: unreadable")


def test_evaluation_only_corpus_keeps_training_artifacts(trained):
    import dataclasses

    task, model = trained
    summary = (task.artifacts_dir / "data_summary.json").read_text()
    stats = (task.artifacts_dir / "feature_stats.json").read_text()
    data = dataclasses.replace(task.config.data, test_speakers=["*"], validation_fraction=0.0)
    config = dataclasses.replace(task.config, data=data)
    blind = type(task)(config, task.run_dir)
    blind.prepare()
    assert sorted(blind.caches) == ["test"] and blind.caches["test"][1]["count"] == 180
    assert blind.evaluate(model, "test")["cer_greedy"] <= 0.1
    assert (task.artifacts_dir / "data_summary.json").read_text() == summary
    assert (task.artifacts_dir / "feature_stats.json").read_text() == stats
    assert (task.artifacts_dir / "data_summary_eval.json").is_file()
    with pytest.raises(ValueError, match="split 'validation' is empty"):
        blind.evaluate(model, "validation")
