"""Hostile input through the command line, for every task: one line naming the problem, the
README's exit codes (2: usage, configuration or data location; 1: a failure), nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared import cli
from shared.task import available_tasks

REPO = Path(__file__).resolve().parents[1]
TASKS = available_tasks()


def tiny(task: str) -> str:
    return str(REPO / "configs" / task / "tiny.yaml")


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("seed=-1", "seed"),
        ("training.learning_rate=.nan", "training.learning_rate"),
        ("training.epochs=0", "training.epochs"),
        ("training.global_batch_size=0", "training.global_batch_size"),
    ],
)
def test_bad_spine_values_are_refused_at_load(task, override, key, tmp_path, capsys):
    run = tmp_path / "run"
    code, err = run_cli(
        capsys, "train", task, "--config", tiny(task), "--run-dir", str(run), "--set", override
    )
    assert code == cli.EXIT_USAGE, err
    assert len(err.splitlines()) == 1 and f"{key}:" in err and f"--set {override}" in err
    assert not run.exists()


@pytest.mark.parametrize("task", TASKS)
def test_bad_model_values_are_refused_at_load(task, tmp_path, capsys):
    """Every task's model section range-checks its sizes and rates (first such key found)."""
    from shared.config import RANGE, load_config
    from shared.task import get_task

    config = load_config(tiny(task), task=task)
    import dataclasses

    checked = [f for f in dataclasses.fields(get_task(task).ModelConfig) if RANGE in f.metadata]
    assert checked, f"{task}: no model key declares its range"
    field = checked[0]
    bad = field.metadata[RANGE].low - 1 if field.metadata[RANGE].low is not None else 1e9
    value = getattr(config.model, field.name)
    bad = [bad] * len(value) if isinstance(value, list) else bad
    override = f"model.{field.name}={bad}"
    code, err = run_cli(capsys, "train", task, "--config", tiny(task), "--set", override,
                        "--run-dir", str(tmp_path / "r"))  # fmt: skip
    assert code == cli.EXIT_USAGE, err
    assert f"model.{field.name}" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("task", "recipe"),
    [
        ("sentiment", "sst2.yaml"),
        ("speech", "fsdd.yaml"),
        ("translation", "multi30k_de_en.yaml"),
    ],
)
def test_a_missing_data_directory_is_a_usage_error(task, recipe, tmp_path, capsys):
    missing = tmp_path / "no_such_folder"
    config = str(REPO / "configs" / task / recipe)
    code, err = run_cli(capsys, "train", task, "--config", config, "--data-dir", str(missing),
                        "--run-dir", str(tmp_path / "r"))  # fmt: skip
    assert code == cli.EXIT_USAGE, err
    assert len(err.splitlines()) == 1 and "no_such_folder" in err


def test_a_failed_start_does_not_block_the_corrected_command(tmp_path, capsys):
    run = str(tmp_path / "run")
    fast = ["--set", "training.epochs=1", "--set", "training.progress=none"]
    args = ["train", "sentiment", "--config", tiny("sentiment"), "--run-dir", run, *fast]
    code, err = run_cli(capsys, *args, "--data-dir", str(tmp_path / "missing"),
                        "--set", "data.format=sst2")  # fmt: skip
    assert code == cli.EXIT_USAGE, err
    code, err = run_cli(capsys, *args)
    assert code == 0, err
