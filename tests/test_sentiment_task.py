"""Sentiment end to end through the spine: the tiny config trains, evaluates, exports, predicts.

The export's answers are compared with the checkpoint's own prediction on ids computed by an
independent `sentencepiece` processor (normalised text, truncated, padded), so neither the
export's encoding nor the spine's evaluation is checked against itself.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401 - registers the SentencePiece op for tf.saved_model.load
from sentiment_reference import reference_probabilities

from shared import runs, serving
from shared.config import load_config
from shared.errors import ConfigError, DataError
from shared.task import get_task
from suites.sentiment.readers import make_negation_examples

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs" / "sentiment").glob("*.yaml"))
TINY = REPO / "configs" / "sentiment" / "tiny.yaml"


def test_negation_set_needs_word_order():
    """A bag-of-words lookup (majority label per bag, fitted on 2000 texts) is at chance."""
    train, held_out = make_negation_examples(2000, seed=0), make_negation_examples(2000, seed=1)
    votes: dict[tuple[str, ...], Counter] = {}
    for text, label in zip(train.texts, train.labels, strict=True):
        votes.setdefault(tuple(sorted(text.split())), Counter())[label] += 1
    hits = [
        votes.get(tuple(sorted(text.split())), Counter({0: 1})).most_common(1)[0][0] == label
        for text, label in zip(held_out.texts, held_out.labels, strict=True)
    ]
    assert abs(np.mean(hits) - 0.5) < 0.05
    assert abs(np.mean(held_out.labels) - 0.5) < 0.05


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_run):
    run_dir = tiny_run("sentiment", tmp_path_factory.mktemp("sentiment") / "run")
    return get_task("sentiment"), load_config(run_dir / "config.yaml"), run_dir


@pytest.fixture(scope="module")
def checkpoint(trained):
    return runs.load_checkpoint(trained[2])


@pytest.fixture(scope="module")
def exported(trained):
    task_cls, config, run_dir = trained
    return runs.export(task_cls, config, run_dir, run_dir / "exports" / "tiny")


@pytest.fixture(scope="module")
def serve(exported):
    return tf.saved_model.load(str(exported)).signatures["serving_default"]


@pytest.mark.slow
def test_tiny_config_beats_chance_and_writes_the_evaluation(trained, checkpoint):
    task_cls, config, run_dir = trained
    results = runs.evaluate(task_cls, config, run_dir, splits=("test",))["test"]
    assert results["accuracy"] > 0.8, results  # chance (and bag of words) = 0.5
    folder = run_dir / "eval" / "test"
    with open(folder / "predictions.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    test = make_negation_examples(config.data.synthetic_eval_size, config.seed + 2)
    assert [r["text"] for r in rows] == test.texts
    assert [r["reference"] for r in rows] == [test.label_names[y] for y in test.labels]
    # Predictions and probabilities are the checkpoint's on independently encoded ids.
    expected = reference_probabilities(run_dir, config, checkpoint, test.texts)
    assert [r["predicted"] for r in rows] == [test.label_names[y] for y in expected.argmax(1)]
    np.testing.assert_allclose([float(r["probability"]) for r in rows], expected.max(1), atol=1e-4)
    # Accuracy, macro-F1 and the confusion matrix from the rows, by their definitions.
    truth = np.array(test.labels)
    guess = expected.argmax(1)
    matrix = [[int(np.sum((truth == t) & (guess == p))) for p in (0, 1)] for t in (0, 1)]
    f1 = [
        2 * matrix[c][c] / (2 * matrix[c][c] + matrix[1 - c][c] + matrix[c][1 - c]) for c in (0, 1)
    ]
    assert results["accuracy"] == pytest.approx(np.mean(truth == guess))
    assert results["macro_f1"] == pytest.approx(np.mean(f1))
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["details"]["confusion_matrix"] == matrix
    assert (folder / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


RAW = [
    "The plot was NOT dull and clumsy!!",
    "the film was great and not boring",
    "",
    "   ",
    'Ünïcödé ☃ (weird) "quotes" don\'t; ...',
    "the plot was not good and bad " * 400,  # very long: truncated to data.max_length tokens
]


def test_export_answers_what_the_checkpoint_predicts(trained, checkpoint, exported, serve):
    _, config, run_dir = trained
    expected = reference_probabilities(run_dir, config, checkpoint, RAW)
    spec = serve.structured_input_signature[1]["text"]
    assert spec.dtype == tf.string and spec.shape.as_list() == [None]
    out = serve(text=tf.constant(RAW))
    assert out["probabilities"].dtype == tf.float32 and out["label"].dtype == tf.int64
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["label"].numpy(), expected.argmax(axis=1))
    assert (exported / "assets" / "labels.txt").read_text().split() == ["negative", "positive"]
    one = serve(text=tf.constant(RAW[:1]))["probabilities"].numpy()  # alone = inside a batch
    np.testing.assert_allclose(one, expected[:1], rtol=1e-5, atol=1e-6)


def test_export_hostile_input(trained, checkpoint, serve):
    _, config, run_dir = trained
    empty = serve(text=tf.constant([], tf.string))
    assert empty["probabilities"].shape == (0, 2) and empty["label"].shape == (0,)
    # An empty or blank string is an all-padding row: the checkpoint's answer to ids [[0]].
    blank = serve(text=tf.constant(["", "  \t "]))["probabilities"].numpy()
    padding = np.asarray(checkpoint(np.zeros((1, 1), np.int32), training=False))
    np.testing.assert_allclose(blank, np.repeat(padding, 2, axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(blank.sum(axis=1), 1.0, rtol=1e-5)
    # Bytes that are not UTF-8 are answered as the text with U+FFFD in their place.
    broken = serve(text=tf.constant([b"not dull \xff\xfe and clever"]))["probabilities"]
    replaced = serve(text=tf.constant(["not dull \ufffd\ufffd and clever"]))["probabilities"]
    np.testing.assert_allclose(broken.numpy(), replaced.numpy(), rtol=1e-6)


def test_predict_prints_label_and_probability_of_the_checkpoint(trained, checkpoint, exported):
    task_cls, config, run_dir = trained
    texts = ["good and not bad", "", "the story was dull and not clever"]
    expected = reference_probabilities(run_dir, config, checkpoint, texts)
    result = serving.predict(task_cls, exported, texts, batch_size=2)
    assert result.errors == []
    names = ["negative", "positive"]
    assert result.lines == [
        f"{names[p.argmax()]}\t{p.max():.4f}\t{text}"
        for text, p in zip(texts, expected, strict=True)
    ]
    assert serving.predict(task_cls, exported, []).lines == []


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_config_loads_and_validates(path):
    config = load_config(path, data_dir="/data")
    assert config.task == "sentiment"
    assert config.data.data_dir == "/data" or config.data.format == "synthetic"


@pytest.mark.parametrize(
    ("line", "key", "message"),
    [
        ("model: {dropout: 1.5}", "model.dropout", r"must be in \[0, 1\), got 1.5"),
        ("model: {lstm_units: [64, 0]}", r"model.lstm_units\[1\]", "must be >= 1"),
        ("model: {lstm_units: []}", "model", "needs at least one layer"),
        ("data: {max_length: 0}", "data.max_length", "must be >= 1"),
        ("data: {extra_train: ['json:x']}", "data", "'json:x' must be '<format>:<path>'"),
        ("data: {validation_fraction: 0.6, test_fraction: 0.5}", "data", "must be < 1"),
        ("data: {format: rt_polarity, cv_folds: -1}", r"data\.cv_folds", "must be >= 0"),
        ("data: {format: rt_polarity, cv_folds: 1}", "data", r"data\.cv_folds: 1 fold"),
        ("data: {cv_folds: 10}", "data", r"data\.cv_folds: needs format rt_polarity"),
        (
            "data: {format: rt_polarity, cv_folds: 10, cv_fold: 10}",
            "data",
            r"data\.cv_fold: must be < data\.cv_folds = 10, got 10",
        ),
        ("data: {format: rt_polarity, cv_fold: 3}", "data", r"data\.cv_fold: 3 needs"),
    ],
)
def test_bad_config_values_name_the_file_line_and_key(tmp_path, line, key, message):
    path = tmp_path / "bad.yaml"
    path.write_text(f"task: sentiment\n{line}\n")
    with pytest.raises(ConfigError, match=rf"bad\.yaml:2: {key}: .*{message}"):
        load_config(path)


def test_missing_data_is_a_data_error_naming_the_key(tmp_path):
    config = load_config(REPO / "configs" / "sentiment" / "sst2.yaml", data_dir=str(tmp_path))
    task = get_task("sentiment")(config, tmp_path / "run")
    with pytest.raises(DataError, match=r"data\.train_file: .*stsa\.binary\.train not found"):
        task.prepare()


@pytest.fixture(scope="module")
def other_run(trained, tmp_path_factory):
    """A second run of the same task: the tiny run with its output layer leaning to class 1."""
    _, _, run_dir = trained
    other = tmp_path_factory.mktemp("other") / "run"
    shutil.copytree(run_dir, other, ignore=shutil.ignore_patterns("exports", "eval"))
    model = runs.load_checkpoint(other)
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([0.5 * kernel, bias + np.array([-0.8, 0.8], np.float32)])
    model.save(other / "checkpoints" / "best.keras")
    return other


def read_predictions(folder: Path) -> list[dict[str, str]]:
    with open(folder / "predictions.tsv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_with_run_evaluates_and_exports_the_mean_of_both_runs(trained, other_run, tmp_path):
    from shared import cli

    _, config, run_dir = trained
    base = ["--run-dir", str(run_dir), "--with-run", str(other_run)]
    assert cli.main(["evaluate", "sentiment", *base, "--split", "test"]) == 0
    folder = run_dir / "eval" / "ensemble" / "test"
    rows = read_predictions(folder)
    texts = [r["text"] for r in rows]
    each = [
        reference_probabilities(run, config, runs.load_checkpoint(run), texts)
        for run in (run_dir, other_run)
    ]
    assert np.abs(each[0] - each[1]).max() > 0.05  # the two members really differ
    expected = (each[0] + each[1]) / 2
    names = (run_dir / "artifacts" / "labels.txt").read_text().splitlines()
    assert [r["predicted"] for r in rows] == [names[i] for i in expected.argmax(axis=-1)]
    np.testing.assert_allclose(
        [float(r["probability"]) for r in rows], expected.max(axis=-1), atol=6e-5
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())["ensemble/test"]
    hits = [names[i] == r["reference"] for i, r in zip(expected.argmax(-1), rows, strict=True)]
    assert metrics["accuracy"] == pytest.approx(np.mean(hits))
    members = json.loads((folder / "members.json").read_text())
    assert members == {"runs": [str(run_dir), str(other_run)], "checkpoint": "best"}

    out = tmp_path / "ensemble_export"
    assert cli.main(["export", "sentiment", *base, "--out", str(out)]) == 0
    served = serving.load_export(out)("serving_default", text=tf.constant(texts))
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)
    assert served["label"].tolist() == expected.argmax(axis=-1).tolist()


def test_with_run_refuses_other_labels_and_untrained_folders(trained, other_run, tmp_path, capsys):
    from shared import cli

    _, _, run_dir = trained
    flipped = tmp_path / "flipped"
    shutil.copytree(other_run, flipped)
    labels = flipped / "artifacts" / "labels.txt"
    labels.write_text("".join(f"{n}\n" for n in reversed(labels.read_text().splitlines())))
    base = ["evaluate", "sentiment", "--run-dir", str(run_dir), "--split", "test"]
    assert cli.main([*base, "--with-run", str(flipped)]) == cli.EXIT_USAGE
    assert "runs with different labels cannot be combined" in capsys.readouterr().err
    assert cli.main([*base, "--with-run", str(tmp_path)]) == cli.EXIT_USAGE
    assert "no config.yaml (not a trained run)" in capsys.readouterr().err
