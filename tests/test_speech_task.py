"""End to end on synthetic speech: train the tiny config once, evaluate, export once, serve."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from shared import runs, serving
from shared.config import load_config
from shared.errors import DataError
from suites.speech import transcribe
from suites.speech.audio import load_audio, resample
from suites.speech.decoding import ctc_decode, lexicon_decode, sparse_to_lists
from suites.speech.features import compute_features
from suites.speech.serving import SpeechServer, pad_batch
from suites.speech.task import SpeechTask
from suites.speech.warps import WarpSearch

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_run):
    # tiny.yaml has per-utterance mean/variance normalisation, VTLP and a lexicon on: the export
    # round trip covers them.
    run_dir = tiny_run("speech", tmp_path_factory.mktemp("speech_tiny") / "run")
    task = SpeechTask(load_config(run_dir / "config.yaml"), run_dir)
    task.prepare()
    return task, runs.load_checkpoint(run_dir)


@pytest.fixture(scope="module")
def export_dir(trained):
    """The run's export (greedy decoding), written once by the spine's writer."""
    task, _ = trained
    return runs.export(SpeechTask, task.config, task.run_dir)


@pytest.fixture(scope="module")
def test_audio(trained):
    """(wav paths, transcripts, waveforms at 16 kHz) of the test split."""
    task, _ = trained
    _, meta = task.split("test")
    synth = next(task.cache_dir.glob("synthetic-*"))
    paths = [synth / "wavs" / f"{i}.wav" for i in meta["ids"]]
    return paths, meta["transcripts"], [load_audio(p, 16000) for p in paths]


def _keras_outputs(task, model, waves, search=None):
    """The checkpoint on librosa features of `waves` (the reference for the export)."""
    cfg = task.config.data.features
    feats = [compute_features(w, cfg) for w in waves]
    x = np.zeros((len(feats), max(len(f) for f in feats), cfg.n_mels), np.float32)
    for i, f in enumerate(feats):
        x[i, : len(f)] = f
    lengths = np.array([len(f) for f in feats], np.int32)
    if search:
        return search(model, x, lengths)
    return model({"features": x, "feature_lengths": lengths})


def _serve(export, waves, lengths=None):
    batch, n = pad_batch(waves)
    n = n if lengths is None else lengths
    out = export(waveform=tf.constant(batch), waveform_length=tf.constant(n))
    return [t.decode() for t in out["transcript"]]


def test_tiny_config_learns_synthetic_words(trained):
    task, model = trained
    result = task.evaluate(model, "test")
    m = result.metrics
    assert m["cer_greedy"] <= 0.1 and m["cer_beam"] <= 0.1 and m["accuracy_lexicon"] >= 0.9, m
    _, meta = task.split("test")
    assert len(result.ids) == m["utterances"] == meta["count"]
    assert list(result.hypotheses) == ["greedy", "beam", "lexicon"]
    speaker_of = dict(zip(meta["ids"], meta["speakers"], strict=True))
    assert result.columns["speaker"] == [speaker_of[i] for i in result.ids]
    # the spine writes it: one row per utterance and one column per decoder
    runs.write_evaluation(task.run_dir, "test", result)
    lines = (task.run_dir / "eval/test/predictions.tsv").read_text().splitlines()
    assert lines[0] == "id\treference\tspeaker\tgreedy\tbeam\tlexicon"
    assert len(lines) == 1 + meta["count"]


def test_score_reports_every_decoder_and_each_speaker():
    refs = ["one two", "three", "four", "five"]
    hyps = {"greedy": ["one too", "three", "for", "five"], "beam": ["one two", "tree", "four", ""]}
    speaker_of = {"a1": "ann", "a2": "ann", "b1": "bob", "b2": "bob"}
    result = transcribe.score(["a1", "a2", "b1", "b2"], refs, hyps, speaker_of)
    m = result.metrics
    assert m["accuracy_greedy"] == 0.5 and m["accuracy_beam"] == 0.5
    assert m["wer_greedy"] == pytest.approx(2 / 5) and m["cer_beam"] == pytest.approx(5 / 20)
    assert m["accuracy_greedy/ann"] == 0.5 and m["accuracy_greedy/bob"] == 0.5
    assert m["accuracy_beam/ann"] == 0.5 and m["cer_beam/bob"] == pytest.approx(4 / 8)
    assert result.columns == {"speaker": ["ann", "ann", "bob", "bob"]}
    many = {f"s{i}": f"speaker{i}" for i in range(21)}  # no per-speaker rows beyond 20 speakers
    result = transcribe.score(list(many), ["a"] * 21, {"greedy": ["a"] * 21}, many)
    assert not [k for k in result.metrics if "/" in k]


def test_lm_decoder_on_trained_model(trained):
    from shared.metrics import error_rates as sm

    task, model = trained
    model_config = dataclasses.replace(task.config.model, lm_order=3)
    config = dataclasses.replace(task.config, model=model_config)
    lm_task = SpeechTask(config, task.run_dir)
    lm_task.caches = task.caches
    result = lm_task.evaluate(model, "test")
    assert list(result.hypotheses)[-1] == "lm" and result.metrics["cer_lm"] <= 0.1
    # weight 0 and bonus 0: plain prefix beam search, as good as TF's beam search here
    _, refs, _, log_probs = transcribe.transcribe(model, task.split("test")[0], config)
    lm = transcribe.language_model(config, task.artifacts_dir)
    plain = transcribe.lm_decode(log_probs, lm, config, 0.0, 0.0)
    assert sm.cer(refs, plain) <= result.metrics["cer_beam"] + 0.02


@pytest.mark.parametrize("general", [0.0, 0.5])
def test_word_lm_decoder_column_equals_wordlm_decode(trained, general):
    pytest.importorskip("flashlight.lib.text.decoder", reason="flashlight-text not installed")
    pytest.importorskip("pocketsphinx", reason="pocketsphinx not installed (builds the ARPA LM)")
    from suites.speech import lm_mix, wordlm

    task, model = trained
    model_config = dataclasses.replace(
        task.config.model, word_lm=True, word_lm_beam=8, word_lm_weight=0.5,
        word_lm_general=general,
    )  # fmt: skip
    config = dataclasses.replace(task.config, model=model_config)
    lm_task = SpeechTask(config, task.run_dir)
    lm_task.prepare()
    arpa = task.artifacts_dir / "word_lm.arpa"
    assert arpa.is_file() and "\\3-grams:" in arpa.read_text()
    result = lm_task.evaluate(model, "test")
    assert "word_lm" in result.hypotheses and "cer_word_lm" in result.metrics
    _, refs, _, log_probs = transcribe.transcribe(model, task.split("test")[0], config)
    lengths = [len(x) for x in log_probs]
    batch = np.zeros((len(log_probs), max(lengths), log_probs[0].shape[1]), np.float32)
    for i, x in enumerate(log_probs):
        batch[i, : len(x)] = x
    words = {"down", "no", "up", "yes"}
    if general:  # the general model's words join the lexicon
        words |= set(lm_mix.general_words(lm_mix.general_lm_path()))
    lm = wordlm.WordLM(arpa, tuple(sorted(words)), lm_mix.general_lm_path(), general)
    direct = wordlm.decode(batch, lengths, config.data.alphabet, lm, 8, 0.5, 0.0)
    assert result.hypotheses["word_lm"] == direct
    if not general:
        assert np.mean([h == r for h, r in zip(direct, refs, strict=True)]) >= 0.9


def test_beam_width_one_equals_greedy_on_trained_model(trained):
    task, model = trained
    _, refs, hyps, _ = transcribe.transcribe(model, task.split("validation")[0], task.config, 1)
    assert hyps["beam"] == hyps["greedy"] and len(refs) > 5


def test_test_warps_in_evaluate(trained):
    task, model = trained
    path = task.split("test")[0]
    plain = transcribe.transcribe(model, path, task.config, 4)[2]

    def with_warps(factors):
        m = dataclasses.replace(task.config.model, test_warps=factors)
        return dataclasses.replace(task.config, model=m)

    assert transcribe.transcribe(model, path, with_warps([1.0]), 4)[2] == plain  # 1 = no warp
    hyps = transcribe.transcribe(model, path, with_warps([0.9, 1.0, 1.1]), 4)[2]
    refs = task.split("test")[1]["transcripts"]
    assert np.mean([h == r for h, r in zip(hyps["greedy"], refs, strict=True)]) >= 0.9


def test_export_answers_what_the_checkpoint_decodes(trained, export_dir, test_audio):
    task, model = trained
    _, refs, waves = test_audio
    export = serving.load_export(export_dir, "speech")
    assert export.task == "speech" and export.asset("sample_rate.txt").strip() == "16000"
    exported = _serve(export, waves)
    y = _keras_outputs(task, model, waves)
    ids = sparse_to_lists(ctc_decode(y["logits"], y["logit_lengths"]), len(waves))
    assert exported == [task.vocab.decode(i) for i in ids]
    assert np.mean([h == r for h, r in zip(exported, refs, strict=True)]) >= 0.9


def test_lexicon_export_with_test_warps_equals_their_decoding(trained, test_audio, tmp_path):
    task, model = trained
    _, _, waves = test_audio
    cfg, lexicon = task.config.data.features, task.config.model.lexicon
    search = WarpSearch([0.9, 1.0, 1.1], cfg, task.config.model.vtlp_boundary)
    server = SpeechServer(model, cfg, task.vocab.alphabet, lexicon=lexicon, warps=search)
    export = serving.load_export(serving.write_export(server, tmp_path / "lex", "speech"))
    y = _keras_outputs(task, model, waves, search)
    best = lexicon_decode(y["logits"], y["logit_lengths"], [task.vocab.encode(w) for w in lexicon])
    assert _serve(export, waves) == [lexicon[j] for j in best.numpy()]


def test_export_on_hostile_input(export_dir, test_audio):
    export = serving.load_export(export_dir)
    _, refs, waves = test_audio
    speech = waves[0]
    # empty batch -> empty result; 0 samples or silence -> ""; the others still answered
    empty = export(waveform=tf.zeros([0, 0]), waveform_length=tf.zeros([0], tf.int32))
    assert empty["transcript"].shape == (0,)
    silent = np.zeros(8000, np.float32)
    faint = np.full(8000, 5e-5, np.float32)  # below data.silence_threshold (1e-4)
    got = _serve(export, [speech, np.zeros(0, np.float32), silent, faint])
    assert got == [refs[0], "", "", ""]
    assert _serve(export, [np.zeros(0, np.float32)]) == [""]
    # invalid requests: a clear error saying what is wrong
    batch, lengths = pad_batch([speech, speech[:1000]])
    bad = [
        (np.where(np.arange(batch.shape[1]) == 5, np.nan, batch), lengths, "non-finite samples"),
        (batch, lengths + np.int32([0, batch.shape[1]]), "larger than the number of samples"),
        (batch, lengths * np.int32([1, -1]), "must not be negative"),
        (batch, lengths[:1], "one length per waveform"),
    ]
    for wave, n, message in bad:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            export(waveform=tf.constant(wave, tf.float32), waveform_length=tf.constant(n))


def test_cli_predict_any_rate_empty_silent_and_bad_files(export_dir, test_audio, tmp_path, capsys):
    from shared.cli import main

    paths, refs, waves = test_audio
    resampled = tmp_path / "resampled_44k.wav"
    sf.write(resampled, resample(waves[0], 16000, 44100), 44100)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(4000, np.float32), 16000)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"not audio at all")
    argv = ["predict", "speech", "--export-dir", str(export_dir)]
    for p in (paths[0], resampled, empty, silent, corrupt, tmp_path / "missing.wav"):
        argv += ["--input", str(p)]
    assert main(argv) == 1  # an input failed
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"{paths[0]}\t{refs[0]}", f"{resampled}\t{refs[0]}", f"{empty}\t", f"{silent}\t",
    ]  # fmt: skip
    errors = captured.err.splitlines()
    assert any(f"{corrupt}: unreadable or corrupt audio" in e for e in errors), errors
    assert any("missing.wav: file not found" in e for e in errors), errors


def test_cli_predict_with_the_lm_decoder_answers_what_evaluate_decodes(
    trained, test_audio, tmp_path, capsys
):
    """`predict --run-dir --decoder lm` on the test clips' files equals evaluate's "lm" column
    (cached librosa features there, graph features here); silent and bad files as the export."""
    from shared.cli import main

    task, model = trained
    paths, refs, _ = test_audio
    # a large cost per character makes the LM decoder drop letters: its answers are its own
    config = dataclasses.replace(
        task.config, model=dataclasses.replace(task.config.model, lm_order=3, lm_bonus=-6.0)
    )
    lm_task = SpeechTask(config, task.run_dir)
    lm_task.caches = task.caches
    result = lm_task.evaluate(model, "test")
    expected = dict(zip(result.ids, result.hypotheses["lm"], strict=True))
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(4000, np.float32), 16000)
    argv = ["predict", "speech", "--run-dir", str(task.run_dir), "--decoder", "lm"]
    argv += ["--set", "model.lm_order=3", "--set", "model.lm_bonus=-6", "--quiet"]
    assert main([*argv, *map(str, paths), str(silent)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{p}\t{expected[p.stem]}" for p in paths] + [f"{silent}\t"]
    assert any(line.split("\t")[1] != r for line, r in zip(lines, refs))  # not greedy's words
    assert main([*argv, str(tmp_path / "missing.wav")]) == 1
    assert "missing.wav: file not found" in capsys.readouterr().err
    for bad, message in (
        (["--decoder", "beam"], "speech decodes with lm or word_lm outside the export"),
        (["--set", "model.lm_order=0"], "--decoder lm needs a character LM"),
        (["--export", str(tmp_path)], "give --run-dir, not --export"),
    ):
        assert main([*argv, *bad, str(paths[0])]) == 2
        assert message in capsys.readouterr().err


def test_bench_export_reports_the_real_time_factor(export_dir, test_audio):
    paths, _, waves = test_audio
    export = serving.load_export(export_dir)
    item = SpeechTask.parse_input(str(paths[0]), export)
    assert SpeechTask.item_seconds(item, export) == sf.info(paths[0]).frames / 16000
    rows = serving.bench_export(
        SpeechTask, export_dir, [str(p) for p in paths[:4]], (1, 4), repeats=1
    )
    assert [r["batch_size"] for r in rows] == [1, 4]
    audio_seconds = sum(len(w) for w in waves[:4]) / 16000
    for row in rows:  # real-time factor = seconds of computing per second of audio
        elapsed = row["items"] / row["items_per_second"]
        assert row["real_time_factor"] == pytest.approx(elapsed / audio_seconds)


def test_evaluation_only_corpus_keeps_training_artifacts(trained):
    task, model = trained
    summary = (task.artifacts_dir / "data_summary.json").read_text()
    stats = (task.artifacts_dir / "feature_stats.json").read_text()
    data = dataclasses.replace(task.config.data, test_speakers=["*"], validation_fraction=0.0)
    blind = SpeechTask(dataclasses.replace(task.config, data=data), task.run_dir)
    blind.prepare()
    assert sorted(blind.caches) == ["test"] and blind.caches["test"][1]["count"] == 180
    assert blind.evaluate(model, "test").metrics["cer_greedy"] <= 0.1
    assert (task.artifacts_dir / "data_summary.json").read_text() == summary
    assert (task.artifacts_dir / "feature_stats.json").read_text() == stats
    assert (task.artifacts_dir / "data_summary_eval.json").is_file()
    with pytest.raises(DataError, match="split 'validation' is empty"):
        blind.evaluate(model, "validation")


def test_lm_tune_scores_each_word_lm_setting_as_evaluate_does(trained, capsys):
    pytest.importorskip("flashlight.lib.text.decoder", reason="flashlight-text not installed")
    pytest.importorskip("pocketsphinx", reason="pocketsphinx not installed (builds the ARPA LM)")
    import json

    from suites.speech import lm_tune

    task, model = trained
    argv = ["--run-dir", str(task.run_dir), "--split", "test", "--decoder", "word_lm",
            "--weights", "0.5", "--bonuses", "0", "-60", "--generals", "0",
            "--set", "model.word_lm_beam=8"]  # fmt: skip
    assert lm_tune.main(argv) == 0
    *rows, best = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["weight"], r["bonus"], r["general"]) for r in rows] == [(0.5, 0, 0), (0.5, -60, 0)]
    for row in rows:
        m = dataclasses.replace(
            task.config.model, word_lm=True, word_lm_beam=8, word_lm_weight=row["weight"],
            word_lm_word_score=row["bonus"],
        )  # fmt: skip
        config = dataclasses.replace(task.config, model=m)
        metrics = SpeechTask(config, task.run_dir).evaluate(model, "test").metrics
        assert row["cer"] == pytest.approx(metrics["cer_word_lm"])
        assert row["wer"] == pytest.approx(metrics["wer_word_lm"])
    assert best["best"] == min(rows, key=lambda r: r["cer"])
    assert rows[0]["cer"] != rows[1]["cer"], "the settings lead to different transcripts"
