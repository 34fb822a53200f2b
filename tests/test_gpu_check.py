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


def test_without_gpu_says_so_and_exits_zero_in_seconds():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # hides a GPU if the machine has one
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
    assert elapsed < 60, f"took {elapsed:.0f} s"


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


def test_table_lines_up_columns(capsys):
    gpu_check.print_table([["check", "status"], ["a long check name", "ok"]])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].index("status") == lines[1].index("ok")
