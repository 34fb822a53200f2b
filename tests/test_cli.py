"""The `lstm-suite` command line: help, one-line errors and exit codes, the full cycle, demo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared import cli

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "toy" / "tiny.yaml"
FAST = [
    "data.min_length=8",
    "data.max_length=8",
    "data.num_train=64",
    "data.num_validation=16",
    "data.num_test=16",
    "training.global_batch_size=16",
    "model.units=8",
    "training.tensorboard=false",
    "training.epochs=1",
    "training.progress=none",
]


def sets(*overrides: str) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


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
        "demo",
        "TF_CONFIG",
        "exit codes",
        "--set",
        "--data-dir",
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


@pytest.mark.slow
def test_train_evaluate_export_predict(tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        cli.main(["train", "toy", "--config", str(TINY), "--run-dir", str(run), *sets(*FAST)]) == 0
    )
    assert (run / "checkpoints" / "best.keras").exists()
    capsys.readouterr()
    # a second train of the finished run is refused (exit 1, one line), --overwrite retrains
    assert (
        cli.main(["train", "toy", "--config", str(TINY), "--run-dir", str(run), *sets(*FAST)])
        == cli.EXIT_FAILURE
    )
    assert "already holds a finished run" in capsys.readouterr().err

    assert cli.main(["evaluate", "toy", "--run-dir", str(run), "--split", "test"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores == {"test": json.loads((run / "metrics.json").read_text())["test"]}
    assert 0.0 <= scores["test"]["accuracy"] <= 1.0

    assert cli.main(["export", "toy", "--run-dir", str(run), "--out", str(tmp_path / "e")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "e")
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("11110000\n\n00001111\n")
    assert (
        cli.main(
            [
                "predict",
                "toy",
                "--export-dir",
                str(tmp_path / "e"),
                "--input",
                "10101010",
                "--input-file",
                str(inputs),
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["10101010", "11110000", "00001111"]
    assert all(line.split("\t")[1] in ("no", "yes") for line in lines)
    assert (
        cli.main(["predict", "toy", "--export-dir", str(tmp_path / "e"), "--input", "12"])
        == cli.EXIT_FAILURE
    )
    assert "strings of 0/1" in capsys.readouterr().err


def test_run_task_script_calls_the_cli(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.run_task_script("toy", "train", ["--config", str(tmp_path / "none.yaml")])
    assert exit_info.value.code == cli.EXIT_USAGE
    assert "cannot read config file" in capsys.readouterr().err


@pytest.mark.slow
def test_console_script_demo(tmp_path):
    script = Path(sys.executable).with_name("lstm-suite")
    if not script.exists():
        pytest.skip("the lstm-suite console script is not installed (pip install -e .)")
    result = subprocess.run(
        [str(script), "demo", "--task", "toy", "--quiet", "--run-dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("toy ")]
    assert rows and rows[0][:3] == ["toy", "test", "accuracy"]
    metrics = json.loads((tmp_path / "demo" / "toy" / "metrics.json").read_text())
    assert float(rows[0][3]) == pytest.approx(metrics["test"]["accuracy"], abs=5e-4)
    predictions = [r for r in rows[1:] if r[-2] in ("no", "yes")]
    assert len(predictions) >= 2
