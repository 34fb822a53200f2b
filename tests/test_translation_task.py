"""The translation task end to end through the CLI on the tiny generated config, plus data paths.

The tiny run trained once per pytest run (`tiny_run`, conftest.py) and one export are shared by the
end-to-end checks: the toy language is learnt to near-perfect exact match, beam 1 equals greedy,
beam 3 scores at least as high as greedy, the export answers raw strings exactly like the Keras
decoders, and hostile inputs (an empty batch, empty strings) get empty answers.
"""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
import yaml

from shared import cli, serving
from shared.config import load_config
from shared.errors import DataError
from shared.runs import load_checkpoint
from suites.translation.attention import attention_map, plot_attention
from suites.translation.data import generate_pairs, toy_lexicon
from suites.translation.decoding import beam_search, greedy_decode, sequence_log_prob
from suites.translation.serving import encode_source
from suites.translation.task import TranslationTask

TINY = Path(__file__).resolve().parents[1] / "configs" / "translation" / "tiny.yaml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_run):
    run_dir = tiny_run("translation", tmp_path_factory.mktemp("translation") / "run")
    config = load_config(run_dir / "config.yaml", task="translation")
    task = TranslationTask(config, run_dir)
    model = load_checkpoint(run_dir, "best")
    return run_dir, task, model


@pytest.fixture(scope="module")
def export(trained):
    run_dir, _, _ = trained
    out = run_dir.parent / "export"
    assert cli.main(["export", "translation", "--run-dir", str(run_dir), "--out", str(out)]) == 0
    return serving.load_export(out, "translation")


def test_generated_language_is_deterministic():
    lexicon = toy_lexicon(12)
    pairs = generate_pairs(50, 12, 3, 7, seed=1)
    assert pairs == generate_pairs(50, 12, 3, 7, seed=1) != generate_pairs(50, 12, 3, 7, seed=2)
    for source, target in pairs:
        words = source.split()
        assert 3 <= len(words) <= 7
        assert target.split() == [lexicon[w] for w in reversed(words)]


@pytest.mark.slow
def test_tiny_config_learns_the_toy_language(trained):
    run_dir, task, _ = trained
    assert cli.main(["evaluate", "translation", "--run-dir", str(run_dir), "--split", "test"]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert metrics["exact_match_beam"] >= 0.95 and metrics["exact_match_greedy"] >= 0.95
    assert metrics["bleu_beam"] > 90 and metrics["chrf_beam"] > 90
    details = json.loads((run_dir / "eval" / "test" / "metrics.json").read_text())["details"]
    assert details["beam"]["bleu_signature"].startswith("nrefs:1|case:mixed")
    with open(run_dir / "eval" / "test" / "predictions.tsv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    pairs = task.raw_pairs("test")
    assert len(rows) == len(pairs) == metrics["sentences"]
    assert [(r["source"], r["reference"]) for r in rows] == pairs
    exact = np.mean([r["beam"] == r["reference"] for r in rows])
    assert exact == pytest.approx(metrics["exact_match_beam"])


@pytest.mark.slow
def test_evaluate_files_scores_like_the_split(trained, tmp_path):
    _, task, model = trained
    pairs = task.raw_pairs("test")
    (tmp_path / "src.txt").write_text("".join(s + "\n" for s, _ in pairs), encoding="utf-8")
    (tmp_path / "ref.txt").write_text("".join(t + "\n" for _, t in pairs), encoding="utf-8")
    from_files = task.evaluate_files(model, tmp_path / "src.txt", tmp_path / "ref.txt")
    from_split = task.evaluate(model, "test")
    assert from_files.hypotheses == from_split.hypotheses
    for key in ("bleu_beam", "chrf_greedy", "exact_match_beam", "sentences"):
        assert from_files.metrics[key] == from_split.metrics[key]
    (tmp_path / "short.txt").write_text("x\n")
    with pytest.raises(DataError, match=r"src\.txt has \d+ lines but .*short\.txt has 1"):
        task.evaluate_files(model, tmp_path / "src.txt", tmp_path / "short.txt")


@pytest.mark.slow
def test_beam_search_against_greedy_on_trained_model(trained):
    _, task, model = trained
    source_tok, _ = task.tokenizers()
    texts = [s for s, _ in task.raw_pairs("test")[:48]]
    source = encode_source(source_tok, tf.constant(texts))
    ids, scores = greedy_decode(model, source, 1.5, 4)
    beam1_ids, beam1_scores = beam_search(model, source, 1, 0.0, 1.5, 4)
    np.testing.assert_array_equal(beam1_ids, ids)
    np.testing.assert_allclose(beam1_scores, scores, rtol=1e-5, atol=1e-6)
    beam_ids, beam_scores = beam_search(model, source, 3, 0.0, 1.5, 4)
    assert np.all(beam_scores.numpy() >= scores.numpy() - 1e-4)
    np.testing.assert_allclose(
        beam_scores, sequence_log_prob(model, source, beam_ids), rtol=1e-4, atol=1e-4
    )
    # sentences leave the batch as they settle: each row's answer is the one it gets alone
    for row in range(0, 48, 4):
        alone_ids, alone_score = beam_search(model, source[row : row + 1], 3, 0.0, 1.5, 4)
        width = alone_ids.shape[1]
        np.testing.assert_array_equal(beam_ids[row, :width], alone_ids[0])
        assert not np.any(beam_ids[row, width:])
        assert float(beam_scores[row]) == pytest.approx(float(alone_score[0]), abs=1e-4)


@pytest.mark.slow
def test_attention_follows_the_reversal(trained):
    _, task, model = trained
    source_tok, _ = task.tokenizers()
    pairs = task.raw_pairs("test")[:32]
    source = encode_source(source_tok, tf.constant([s for s, _ in pairs]))
    _, _, weights = greedy_decode(model, source, 1.5, 4, return_attention=True)
    hits = total = 0
    for row, (src, _) in enumerate(pairs):
        n = len(src.split())
        if len(source_tok.tokenize(tf.constant(src)).numpy()) != n:
            continue  # only sentences whose words are single pieces
        for i in range(n):  # target word i translates source word n - 1 - i
            hits += int(np.argmax(weights[row, i]) == n - 1 - i)
            total += 1
    assert total > 50 and hits / total >= 0.7


@pytest.mark.slow
def test_attention_map_and_plot(trained, tmp_path):
    _, task, model = trained
    source_tok, target_tok = task.tokenizers()
    sentence, _ = task.raw_pairs("test")[0]
    amap = attention_map(model, source_tok, target_tok, sentence, 1.5, 4)
    assert amap.translation == task.translate(model, [sentence], "greedy")[0]
    assert amap.source_pieces[-1] == amap.target_pieces[-1] == "</s>"
    assert amap.weights.shape == (len(amap.target_pieces), len(amap.source_pieces))
    np.testing.assert_allclose(amap.weights.sum(axis=1), 1.0, rtol=1e-5)
    plot_attention(amap, tmp_path / "attention.png")
    assert (tmp_path / "attention.png").stat().st_size > 1000


@pytest.mark.slow
def test_export_round_trip_equals_keras_decoding(trained, export, capsys):
    _, task, model = trained
    texts = [s for s, _ in task.raw_pairs("test")[:20]] + ["  kalo kami  "]
    assert export.task == "translation"
    for signature, decoder in (("serving_default", "beam"), ("greedy", "greedy")):
        exported = export(signature, text=tf.constant(texts))["translation"]
        assert [t.decode() for t in exported] == task.translate(model, texts, decoder)
    capsys.readouterr()
    argv = ["predict", "translation", "--export-dir", str(export.path), "--input", texts[0]]
    assert cli.main(argv) == 0
    assert capsys.readouterr().out.splitlines() == task.translate(model, texts[:1], "beam")


@pytest.mark.slow
@pytest.mark.parametrize("signature", ["serving_default", "greedy"])
def test_export_hostile_input(trained, export, signature):
    _, task, model = trained
    empty = export(signature, text=tf.constant([], tf.string))
    assert empty["translation"].shape == (0,) and empty["score"].shape == (0,)
    texts = [s for s, _ in task.raw_pairs("test")[:3]]
    alone = export(signature, text=tf.constant(texts))
    hostile = ["", texts[0], "   ", texts[1], texts[2], "\t"]
    mixed = export(signature, text=tf.constant(hostile))
    decoder = "beam" if signature == "serving_default" else "greedy"
    assert [t.decode() for t in mixed["translation"]] == task.translate(model, hostile, decoder)
    assert [t.decode() for t in mixed["translation"]] == [
        "",
        *[t.decode() for t in alone["translation"][:1]],
        "",
        *[t.decode() for t in alone["translation"][1:]],
        "",
    ]
    np.testing.assert_allclose(mixed["score"][[1, 3, 4]], alone["score"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(mixed["score"][[0, 2, 5]], 0.0)
    only_empty = export(signature, text=tf.constant(["", " "]))
    assert list(only_empty["translation"]) == [b"", b""]


@pytest.mark.slow
def test_bench_export_times_batch_1_and_32(trained, export, capsys):
    _, task, _ = trained
    texts = [s for s, _ in task.raw_pairs("test")[:40]]
    argv = ["bench-export", "translation", "--export", str(export.path), "--repeats", "1", *texts]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines if line.startswith("batch")]
    assert [r[1] for r in rows] == ["1:", "32:"] and all(float(r[2]) > 0 for r in rows)


def _task(tmp_path, **data) -> TranslationTask:
    raw = {"task": "translation", "data": data, "model": {"embedding_dim": 8}}
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return TranslationTask(load_config(path), tmp_path / "run")


def test_tatoeba_task_prepare_cleans_and_reports(tmp_path):
    lines = [f"Sentence number {i} here.\tSatz Nummer {i} hier." for i in range(60)]
    lines += ["\tleer", "Only English.\t", "long " * 40 + "\tlang"]
    with zipfile.ZipFile(tmp_path / "deu-eng.zip", "w") as archive:
        archive.writestr("deu.txt", "\n".join(lines) + "\n")
    task = _task(
        tmp_path,
        format="tatoeba",
        data_dir=str(tmp_path),
        split_fractions=[1.0, 0.0, 0.0],
        vocab_size=60,
        vocab_hard_limit=False,
        max_length=20,
    )
    task.artifacts_dir.mkdir(parents=True)
    task.prepare()
    source, target = task.tokenizers()
    assert source is target and 30 < source.vocab_size <= 60
    src_ids, tgt_ids = task.encoded_split("train")
    assert len(src_ids) == len(tgt_ids) == 60
    report = json.loads((task.artifacts_dir / "data_report.json").read_text())["train"]
    assert report == {"total": 63, "empty": 2, "too_long": 1, "kept": 60}
    expected = [s for s, t in task.raw_pairs("train") if s and t and not t.startswith("long")]
    decoded = source.detokenize(tf.ragged.constant(src_ids)).numpy()
    assert [d.decode() for d in decoded] == expected  # German side, in the shuffled order


def test_parallel_files_task_and_missing_data_dir(tmp_path):
    for split, n in (("train", 30), ("dev", 5)):
        (tmp_path / f"{split}.src").write_text("".join(f"a{i} b{i}\n" for i in range(n)))
        (tmp_path / f"{split}.tgt").write_text("".join(f"x{i} y{i}\n" for i in range(n)))
    task = _task(
        tmp_path,
        format="parallel",
        data_dir=str(tmp_path),
        source="src",
        target="tgt",
        validation_split="dev",
        file_pattern="{split}.{lang}",
        vocab_size=40,
        vocab_hard_limit=False,
        joint_vocab=False,
    )
    assert task.raw_pairs("validation")[2] == ("a2 b2", "x2 y2")
    task.prepare()
    source, target = task.tokenizers()
    assert source is not target
    assert (task.artifacts_dir / "spm.src.model").is_file()
    with pytest.raises(DataError, match="data.data_dir is required"):
        _task(tmp_path / "other", format="multi30k").raw_pairs("train")
    with pytest.raises(DataError, match="data.data_dir: .*nowhere is not a directory"):
        _task(tmp_path / "x", format="multi30k", data_dir=str(tmp_path / "nowhere")).raw_pairs(
            "train"
        )
    with pytest.raises(DataError, match="test2016.src"):  # no test split on disk: file named
        task.raw_pairs("test")


def test_tfds_task_path_with_mock_data(tmp_path):
    task = _task(
        tmp_path,
        format="tfds",
        tfds_name="ted_hrlr_translate/pt_to_en",
        source="pt",
        target="en",
        validation_split="validation",
    )
    with tfds.testing.mock_data(num_examples=5, policy=tfds.testing.MockPolicy.USE_CODE):
        pairs = task.raw_pairs("validation")
        dataset = tfds.load("ted_hrlr_translate/pt_to_en", split="validation", download=False)
        expected = [(ex["pt"].decode(), ex["en"].decode()) for ex in tfds.as_numpy(dataset)]
    assert len(pairs) == 5 and pairs == expected  # source = the pt feature, target = en


def test_numbers_task_is_real_language_with_digit_pieces(tmp_path):
    task = _task(
        tmp_path,
        format="numbers",
        source="de",
        target="en",
        generated_pairs=400,
        vocab_size=200,
        vocab_hard_limit=False,
        split_digits=True,
    )
    splits = {name: task.raw_pairs(name) for name in ("train", "validation", "test")}
    assert [len(p) for p in splits.values()] == [360, 20, 20]
    sources = [{s for s, _ in pairs} for pairs in splits.values()]
    assert not (sources[0] & sources[2])  # no test sentence is a training sentence
    task.artifacts_dir.mkdir(parents=True)
    task.prepare()
    source, _ = task.tokenizers()
    ids = source.tokenize(tf.constant(["1.234,5"])).to_list()[0]
    text = source.detokenize(tf.ragged.constant([[i] for i in ids])).numpy()
    assert [p.decode() for p in text if p.decode()] == ["1", ".", "2", "3", "4", ",", "5"]
