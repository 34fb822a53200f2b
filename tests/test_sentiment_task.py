"""Sentiment end to end through the spine: tiny config trains, evaluates, exports, predicts.

The export round trip checks the contract of issue 4: `tf.saved_model.load` alone (after
`import tensorflow_text`) gives `serving_default(text)` -> `probabilities` [None, C] float32 and
`label` [None] int64, equal to the Keras model's outputs on the same raw strings.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from shared.config import load_config
from shared.task import get_task
from shared.training import loop
from suites.sentiment.data import make_negation_examples

REPO = Path(__file__).resolve().parents[1]
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
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("sentiment") / "run"
    config = load_config(TINY, overrides=["training.progress=none"])
    task_cls = get_task("sentiment")
    loop.train(task_cls, config, run_dir)
    return task_cls, config, run_dir


@pytest.mark.slow
def test_tiny_config_beats_chance_and_writes_evaluation(tiny_run):
    task_cls, config, run_dir = tiny_run
    results = loop.evaluate(task_cls, config, run_dir, splits=("validation", "test"))
    assert results["test"]["accuracy"] > 0.8, results  # chance (and bag of words) = 0.5
    report = json.loads((run_dir / "eval" / "test_report.json").read_text())
    matrix = np.array(report["confusion_matrix"])
    assert matrix.sum() == config.data.synthetic_eval_size
    assert np.trace(matrix) / matrix.sum() == pytest.approx(results["test"]["accuracy"])
    assert (run_dir / "eval" / "test_confusion.png").stat().st_size > 1000
    assert json.loads((run_dir / "metrics.json").read_text())["test"] == results["test"]


RAW = [
    "The plot was NOT dull and clumsy!!",
    "the film was great and not boring",
    "",
    "   ",
    'Ünïcödé ☃ (weird) "quotes" don\'t; ...',
    "the plot was not good and bad " * 400,  # very long: truncated to data.max_length tokens
]


@pytest.fixture(scope="module")
def exported(tiny_run):
    task_cls, config, run_dir = tiny_run
    out = loop.export(task_cls, config, run_dir, run_dir / "exports" / "tiny")
    return out


def test_export_matches_keras_model_on_raw_strings(tiny_run, exported):
    task_cls, config, run_dir = tiny_run
    task = task_cls(config, run_dir)
    model = loop.load_checkpoint(task, run_dir)
    expected = task.predict_probabilities(model, RAW)

    import tensorflow_text  # noqa: F401

    serve = tf.saved_model.load(str(exported)).signatures["serving_default"]
    spec = serve.structured_input_signature[1]["text"]
    assert spec.dtype == tf.string and spec.shape.as_list() == [None]
    out = serve(text=tf.constant(RAW))
    assert out["probabilities"].dtype == tf.float32 and out["label"].dtype == tf.int64
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["label"].numpy(), expected.argmax(axis=1))
    assert (exported / "assets" / "labels.txt").read_text().split() == ["negative", "positive"]
    # One string alone and an all-empty batch also work.
    one = serve(text=tf.constant(RAW[:1]))["probabilities"].numpy()
    np.testing.assert_allclose(one, expected[:1], rtol=1e-5, atol=1e-6)
    empty = serve(text=tf.constant(["", ""]))["probabilities"].numpy()
    np.testing.assert_allclose(empty, expected[[2, 2]], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_predict_in_a_fresh_process_prints_label_and_probability(tiny_run, exported):
    task_cls, _, _ = tiny_run
    code = textwrap.dedent(
        f"""
        from suites.sentiment.task import SentimentTask
        for line in SentimentTask.predict({str(exported)!r}, ["good and not bad", ""]):
            print(line)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    label, probability, text = lines[0].split("\t")
    assert label in ("negative", "positive") and 0.5 <= float(probability) <= 1.0
    assert text == "good and not bad"


@pytest.mark.parametrize(
    "name",
    [
        "tiny",
        "sst2",
        "sst2_rt",
        "rt_polarity",
        "imdb",
    ],
)
def test_configs_load_and_validate(name):
    config = load_config(REPO / "configs" / "sentiment" / f"{name}.yaml", data_dir="/data")
    assert config.task == "sentiment"
    assert config.data.data_dir == "/data"


def test_load_splits_for_each_file_format(tmp_path):
    from suites.sentiment.task import SentimentDataConfig, load_splits

    (tmp_path / "a.pos").write_text("".join(f"good {i}\n" for i in range(20)))
    (tmp_path / "a.neg").write_text("".join(f"bad {i}\n" for i in range(30)))
    config = SentimentDataConfig(
        format="rt_polarity",
        data_dir=str(tmp_path),
        positive_file="a.pos",
        negative_file="a.neg",
        validation_fraction=0.2,
        test_fraction=0.0,
    )
    splits = load_splits(config, seed=0)
    assert sorted(splits) == ["train", "validation"]
    assert splits["validation"].class_counts() == [6, 4]

    (tmp_path / "t.tsv").write_text("text\tlabel\nfine\tok\nawful\tbad\n")
    (tmp_path / "v.tsv").write_text("text\tlabel\nmeh\tbad\n")
    config = SentimentDataConfig(
        format="csv", data_dir=str(tmp_path), train_file="t.tsv", validation_file="v.tsv"
    )
    splits = load_splits(config, seed=0)
    assert splits["train"].label_names == ("bad", "ok") and splits["validation"].labels == [0]

    with pytest.raises(FileNotFoundError, match=r"data\.validation_file: .*missing"):
        load_splits(dataclasses.replace(config, validation_file="missing"), seed=0)


def test_load_splits_from_tfds_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    from suites.sentiment.task import SentimentDataConfig, load_splits

    config = load_config(REPO / "configs" / "sentiment" / "imdb.yaml").data
    assert isinstance(config, SentimentDataConfig)
    with tfds.testing.mock_data(num_examples=10):
        splits = load_splits(config, seed=0)
    assert sorted(splits) == ["test", "train", "validation"]
    assert splits["train"].label_names == ("negative", "positive")  # renamed from neg/pos
    assert all(len(s) > 0 for s in splits.values())
