"""benchmarks/gpu_check.py: the CPU path (no GPU: says so, exits 0 in seconds) and its plan."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import gpu_check  # noqa: E402
from shared.config import load_config, parse_override  # noqa: E402


@pytest.mark.parametrize("hide", ["", "-1"])
def test_without_gpu_says_so_and_exits_zero_in_seconds(hide):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": hide}  # hides a GPU if the machine has one
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    elapsed = time.perf_counter() - start
    assert out.returncode == 0, out.stderr
    assert "no GPU visible" in out.stdout
    assert elapsed < 30, f"took {elapsed:.0f} s"


def test_without_gpu_tensorflow_agrees(monkeypatch):
    """Where TensorFlow is asked (no hiding variable), it finds what this machine has."""
    import tensorflow as tf

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    want = [d.name for d in tf.config.list_physical_devices("GPU")]
    assert gpu_check.gpu_names() == want


@pytest.mark.parametrize("name, cmd", gpu_check.training_commands(Path("/nonexistent")))
def test_training_commands_load_as_configs(name, cmd):
    """Every training the GPU check would start names an existing config and valid keys."""
    task = cmd[cmd.index("train") + 1]
    config = cmd[cmd.index("--config") + 1]
    overrides = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--set"]
    loaded = load_config(config, overrides=overrides, task=task)
    for text in overrides:
        key, value = parse_override(text)
        section, field = key.split(".")
        assert getattr(getattr(loaded, section), field) == value, name


def test_trainings_past_the_budget_are_skipped_not_started(monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("started a training past the deadline")

    monkeypatch.setattr(gpu_check.subprocess, "run", must_not_run)
    rows = gpu_check.training_rows(Path("/nonexistent"), deadline=time.perf_counter())
    assert len(rows) == len(gpu_check.training_commands(Path("/nonexistent")))
    assert all(row[1] == "skipped" for row in rows)


def test_table_lines_up_columns(capsys):
    gpu_check.print_table([["check", "status"], ["a long check name", "ok"]])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].index("status") == lines[1].index("ok")
