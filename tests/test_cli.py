"""The `lstm-suite` command line: help, one-line errors and exit codes, the full cycle, demo."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from toy_fast import FAST as TOY_FAST
from toy_fast import TINY, sets

from shared import cli

SCRIPT = Path(sys.executable).with_name("lstm-suite")
# the console script as a user starts it: no TensorFlow log level inherited from the test run
USER_ENV = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
FAST = [*TOY_FAST, "training.epochs=1"]


def train_args(run: Path, *overrides: str) -> list[str]:
    return ["train", "toy", "--config", str(TINY), "--run-dir", str(run), *sets(*FAST, *overrides)]


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A trained and exported toy run (shared by the tests of the cycle)."""
    root = tmp_path_factory.mktemp("cli")
    run = root / "run"
    assert cli.main(train_args(run)) == 0
    assert cli.main(["export", "toy", "--run-dir", str(run), "--out", str(root / "e")]) == 0
    return run, root / "e"


def _toy_checkpoint_answers(run: Path, texts: list[str]) -> list[str]:
    """The checkpoint's own answers, computed without the export (NumPy argmax of the logits)."""
    import keras

    from suites.toy.serving import LABELS

    model = keras.saving.load_model(run / "checkpoints" / "best.keras")
    answers = []
    for text in texts:
        tokens = np.array([[int(c) + 1 for c in text]], np.int32)
        answers.append(LABELS[int(np.argmax(model.predict(tokens, verbose=0)[0]))])
    return answers


def test_help_documents_every_command_and_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for word in (
        "train",
        "evaluate",
        "export",
        "predict",
        "bench-export",
        "demo",
        "TF_CONFIG",
        "exit codes",
        "--set",
        "--data-dir",
        "--quiet",
        "runtime.strategy",
    ):
        assert word in text
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = capsys.readouterr().out
    for option in ("--config", "--run-dir", "--data-dir", "--set", "--overwrite", "--debug"):
        assert option in text


def test_config_error_is_one_line_with_exit_code_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: toy\ntraining:\n  epoch: 3\n")
    code = cli.main(["train", "toy", "--config", str(bad), "--run-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == cli.EXIT_USAGE
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"{bad}:3" in err and "training.epoch" in err and "'training.epochs'" in err
    assert not (tmp_path / "r").exists()


def test_debug_shows_the_exception(tmp_path):
    from shared.config import ConfigError

    with pytest.raises(ConfigError):
        cli.main(["train", "toy", "--config", str(tmp_path / "missing.yaml"), "--debug"])
    with pytest.raises(ConfigError):  # --debug before the command works too
        cli.main(["--debug", "train", "toy", "--config", str(tmp_path / "missing.yaml")])


def test_unknown_task_and_missing_inputs_are_usage_errors(tmp_path, capsys):
    assert cli.main(["train", "nosuchtask", "--config", str(TINY)]) == cli.EXIT_USAGE
    assert "unknown task 'nosuchtask'" in capsys.readouterr().err
    assert cli.main(["evaluate", "toy"]) == cli.EXIT_USAGE
    assert "--run-dir is required" in capsys.readouterr().err
    assert cli.main(["evaluate", "toy", "--run-dir", str(tmp_path)]) == cli.EXIT_USAGE
    assert "config.yaml not found" in capsys.readouterr().err
    assert cli.main(["predict", "toy", "--run-dir", str(tmp_path), "1"]) == cli.EXIT_USAGE
    assert "no export in" in capsys.readouterr().err


def test_finished_run_is_refused_with_exit_2(toy_run, capsys):
    run, _ = toy_run
    assert cli.main(train_args(run)) == cli.EXIT_USAGE
    assert "already holds a finished run" in capsys.readouterr().err


def test_evaluate_writes_one_layout_and_matches_the_checkpoint(toy_run, capsys):
    run, _ = toy_run
    assert cli.main(["evaluate", "toy", "--run-dir", str(run), "--split", "test"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores == {"test": json.loads((run / "metrics.json").read_text())["test"]}
    split = json.loads((run / "eval" / "test" / "metrics.json").read_text())
    assert split["accuracy"] == scores["test"]["accuracy"]
    with open(run / "eval" / "test" / "predictions.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert list(rows[0]) == ["id", "reference", "text", "predicted"]
    texts = [r["text"] for r in rows]
    assert [r["predicted"] for r in rows] == _toy_checkpoint_answers(run, texts)
    expected = np.mean([r["predicted"] == r["reference"] for r in rows])
    assert scores["test"]["accuracy"] == pytest.approx(expected)


def test_predict_equals_the_checkpoint_and_reports_bad_inputs(toy_run, tmp_path, capsys):
    run, export = toy_run
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("11110000\n\n00001111\n")
    argv = ["predict", "toy", "--export-dir", str(export), "--input", "10101010"]
    assert cli.main([*argv, "--input-file", str(inputs)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    texts = ["10101010", "11110000", "00001111"]
    assert [line.split("\t")[0] for line in lines] == texts
    assert [line.split("\t")[1] for line in lines] == _toy_checkpoint_answers(run, texts)
    # one bad input: the good ones are still answered, the bad one named, exit 1
    assert cli.main([*argv, "--input", "12"]) == cli.EXIT_FAILURE
    captured = capsys.readouterr()
    assert captured.out.strip().split("\t")[0] == "10101010"
    assert "12: toy inputs are strings of 0/1" in captured.err
    # the newest export of a run is the default
    assert cli.main(["predict", "toy", "--run-dir", str(run), "01"]) == cli.EXIT_USAGE
    assert "no export in" in capsys.readouterr().err


def test_predict_refuses_an_export_of_another_task(tmp_path, capsys):
    fake = tmp_path / "other"
    (fake / "assets").mkdir(parents=True)
    (fake / "saved_model.pb").write_bytes(b"")
    (fake / "assets" / "task.txt").write_text("some_other_task\n")
    assert cli.main(["predict", "toy", "--export", str(fake), "01"]) == cli.EXIT_USAGE
    assert "is a some_other_task export, not a toy one" in capsys.readouterr().err
    assert cli.main(["predict", "toy", "--export", str(tmp_path), "01"]) == cli.EXIT_USAGE
    assert "not a SavedModel" in capsys.readouterr().err


def test_bench_export_prints_a_row_per_batch_size(toy_run, capsys):
    _, export = toy_run
    argv = ["bench-export", "toy", "--export", str(export), "0101", "1100", "111000"]
    assert cli.main([*argv, "--batch-size", "1", "--batch-size", "2", "--repeats", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("batch")]
    assert [row.split(":")[0].split()[-1] for row in rows] == ["1", "2"]
    assert all("items/s over 3 inputs" in row for row in rows)
    assert cli.main([*argv, "x"]) == cli.EXIT_USAGE


def test_run_task_script_calls_the_cli(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.run_task_script("toy", "train", ["--config", str(tmp_path / "none.yaml")])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert "cannot read config file" in capsys.readouterr().err


def test_an_error_is_one_line_without_tensorflow_logs(tmp_path):
    """The console script's stderr holds the error line only (no C++ start-up lines)."""
    result = subprocess.run(
        [str(SCRIPT), "train", "toy", "--config", str(TINY), *sets("model.units=0")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=USER_ENV,
    )
    assert result.returncode == cli.EXIT_USAGE
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("lstm-suite: error: ") and "model.units" in result.stderr


@pytest.mark.slow
def test_console_script_demo(tmp_path):
    result = subprocess.run(
        [str(SCRIPT), "demo", "--task", "toy", "--quiet", "--run-dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        env=USER_ENV,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == "", result.stderr[-3000:]
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("toy ")]
    assert rows and rows[0][:3] == ["toy", "test", "accuracy"]
    metrics = json.loads((tmp_path / "demo" / "toy" / "metrics.json").read_text())
    assert float(rows[0][3]) == pytest.approx(metrics["test"]["accuracy"], abs=5e-4)
    predictions = [r for r in rows[1:] if r[-2] in ("no", "yes")]
    assert len(predictions) == 4


def test_evaluate_files_needs_both_files_and_a_task_that_scores_files(toy_run, tmp_path, capsys):
    run, _ = toy_run
    src, ref = tmp_path / "src.txt", tmp_path / "ref.txt"
    src.write_text("0101\n")
    ref.write_text("no\n")
    base = ["evaluate", "toy", "--run-dir", str(run)]
    assert cli.main([*base, "--src", str(src)]) == cli.EXIT_USAGE
    assert "--src and --ref go together" in capsys.readouterr().err
    assert cli.main([*base, "--src", str(src), "--ref", str(tmp_path / "nope")]) == cli.EXIT_USAGE
    assert "no such file" in capsys.readouterr().err
    assert cli.main([*base, "--src", str(src), "--ref", str(ref)]) == cli.EXIT_USAGE
    assert "cannot score files" in capsys.readouterr().err


def test_a_task_s_callbacks_take_part_in_every_fit(tmp_path):
    """`Task.callbacks()` reaches `fit` (e.g. sentiment's unfreezing of word vectors)."""
    import keras

    from shared.config import load_config
    from shared.training import loop
    from suites.toy.task import ToyTask

    seen = []

    class Recorder(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(epoch)

    class ToyWithCallback(ToyTask):
        def callbacks(self):
            return [Recorder()]

    config = load_config(TINY, overrides=[*FAST, "training.epochs=2"], task="toy")
    loop.train(ToyWithCallback, config, tmp_path / "run")
    assert seen == [0, 1]


def test_with_run_needs_a_task_that_combines_runs_and_splits(toy_run, tmp_path, capsys):
    run, _ = toy_run
    base = ["evaluate", "toy", "--run-dir", str(run), "--with-run", str(run)]
    assert cli.main(base) == cli.EXIT_USAGE
    assert "the toy task cannot combine runs (--with-run)" in capsys.readouterr().err
    (tmp_path / "src").write_text("0101\n")
    (tmp_path / "ref").write_text("no\n")
    files = ["--src", str(tmp_path / "src"), "--ref", str(tmp_path / "ref")]
    assert cli.main([*base, *files]) == cli.EXIT_USAGE
    assert "--with-run scores splits, not --src/--ref files" in capsys.readouterr().err


def test_predict_decoder_needs_a_task_with_decoders_outside_its_export(toy_run, capsys):
    run, _ = toy_run
    argv = ["predict", "toy", "--run-dir", str(run), "--decoder", "lm", "0101"]
    assert cli.main(argv) == cli.EXIT_USAGE
    assert "the toy task decodes in its export only" in capsys.readouterr().err


def test_evaluate_name_keeps_a_second_reading_of_a_split_apart(toy_run, capsys):
    run, _ = toy_run
    base = ["evaluate", "toy", "--run-dir", str(run), "--split", "test"]
    assert cli.main(base) == 0
    assert cli.main([*base, "--name", "test_again", "--set", "data.data_seed=99"]) == 0
    capsys.readouterr()
    results = json.loads((run / "metrics.json").read_text())
    again = json.loads((run / "eval" / "test_again" / "metrics.json").read_text())
    assert results["test_again"]["accuracy"] == again["accuracy"]
    with open(run / "eval" / "test_again" / "predictions.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    with open(run / "eval" / "test" / "predictions.tsv", newline="") as f:
        first = list(csv.DictReader(f, delimiter="\t"))
    assert [r["text"] for r in rows] != [r["text"] for r in first]  # another split was read
    assert results["test"]["accuracy"] == pytest.approx(
        np.mean([r["predicted"] == r["reference"] for r in first])
    )
    assert cli.main([*base, "--split", "validation", "--name", "x"]) == cli.EXIT_USAGE
    assert "give exactly one --split" in capsys.readouterr().err
