"""GPU readiness in one command: layer speed on the GPU, mirrored and mixed-precision training.

On a machine with a CUDA GPU this runs, in a few minutes, and prints one table:

1. the layer benchmark on the GPU (B=64, T=100, input 128, units 256; forward and training,
   both output modes): `keras.layers.LSTM` (cuDNN kernel), our `PeepholeLSTM` with the peepholes
   off (which must dispatch to the same cuDNN kernel: it is built with `use_cudnn=True`, which
   raises instead of falling back), our `PeepholeLSTM` with peepholes (the fused XLA path), in
   float32 and `mixed_float16`;
2. a `runtime.strategy=mirrored` training of each task's tiny config (`configs/<task>/tiny.yaml`,
   all visible GPUs), and one with `runtime.mixed_precision=mixed_float16`; each row says whether
   the run finished and how long it took.

On a machine without a GPU it says so and exits 0 within a second (TensorFlow is not even
imported where no NVIDIA device exists or CUDA_VISIBLE_DEVICES hides them). Exit status 1 when
any check failed. Trainings that would start after 7.5 minutes are skipped (shown as such).

Usage:
    python benchmarks/gpu_check.py                 # everything (~5-8 minutes on one GPU)
    python benchmarks/gpu_check.py --skip-training # the layer table only
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TASKS = ("toy", "sentiment", "speech", "translation")
TRAIN_TIMEOUT_S = 90  # per tiny training
BUDGET_S = 7.5 * 60  # trainings that would start after this are skipped: under 8 minutes in all


def gpu_names() -> list[str]:
    """The GPUs TensorFlow sees; [] at once (no TensorFlow import) where there can be none."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1"):
        return []
    if not any(Path("/dev").glob("nvidia[0-9]*")) and not Path("/dev/dxg").exists():
        return []  # no NVIDIA device node (Linux) nor WSL2 GPU
    import tensorflow as tf

    return [d.name for d in tf.config.list_physical_devices("GPU")]


def layer_factories() -> dict:
    """name -> factory(units, return_sequences, dtype) of the layers compared on the GPU."""
    import keras

    from shared.layers import PeepholeLSTM

    return {
        "keras.LSTM (cuDNN)": lambda u, s, d: keras.layers.LSTM(u, return_sequences=s, dtype=d),
        "PeepholeLSTM no peep (cuDNN)": lambda u, s, d: PeepholeLSTM(
            u, return_sequences=s, use_peepholes=False, use_cudnn=True, dtype=d
        ),
        "PeepholeLSTM (fused XLA)": lambda u, s, d: PeepholeLSTM(u, return_sequences=s, dtype=d),
    }


def layer_rows(repeats: int) -> list[list[str]]:
    """Median ms per call of each layer, interleaved, per policy, mode and phase."""
    import tensorflow as tf

    import benchmarks.bench_layers as bench

    factories = layer_factories()
    bench.VARIANTS.update(factories)
    x = tf.random.normal((64, 100, 128))
    rows = []
    for policy in ("float32", "mixed_float16"):
        for mode, sequences in bench.MODES.items():
            steps = {n: bench.make_steps(n, sequences, policy, x, 256) for n in factories}
            for phase, index in (("forward", 0), ("train", 1)):
                fns = {n: s[index] for n, s in steps.items()}
                seconds = bench.time_interleaved(fns, repeats)
                ref = seconds["keras.LSTM (cuDNN)"]
                for name, sec in seconds.items():
                    label = f"{name} {policy} {mode} {phase}"
                    rows.append([label, "ok", f"{1000 * sec:.2f} ms", f"{ref / sec:.2f}x keras"])
    return rows


def training_commands(run_root: Path) -> list[tuple[str, list[str]]]:
    """(row name, command) of the tiny trainings: mirrored for each task, one mixed_float16."""
    cli = [sys.executable, "-m", "shared.cli", "train"]
    runs = []
    for task in TASKS:
        config = REPO / "configs" / task / "tiny.yaml"
        args = [task, "--config", str(config), "--quiet", "--overwrite"]
        runs.append(
            (
                f"train {task} tiny, mirrored",
                cli
                + args
                + ["--run-dir", str(run_root / task), "--set", "runtime.strategy=mirrored"],
            )
        )
    toy = REPO / "configs" / "toy" / "tiny.yaml"
    runs.append(
        (
            "train toy tiny, mixed_float16",
            cli
            + ["toy", "--config", str(toy), "--quiet", "--overwrite"]
            + ["--run-dir", str(run_root / "toy_fp16")]
            + ["--set", "runtime.mixed_precision=mixed_float16"],
        )
    )
    return runs


def training_rows(run_root: Path, deadline: float) -> list[list[str]]:
    """Runs the tiny trainings until `deadline` (a time.perf_counter() value)."""
    rows = []
    for name, cmd in training_commands(run_root):
        start = time.perf_counter()
        if start + TRAIN_TIMEOUT_S > deadline:
            rows.append([name, "skipped", "", "time budget of the check used up"])
            continue
        try:
            out = subprocess.run(
                cmd, cwd=REPO, capture_output=True, text=True, timeout=TRAIN_TIMEOUT_S
            )
            status = "ok" if out.returncode == 0 else f"FAILED (exit {out.returncode})"
            detail = "" if out.returncode == 0 else (out.stderr.strip().splitlines() or [""])[-1]
        except subprocess.TimeoutExpired:
            status, detail = f"FAILED (timeout {TRAIN_TIMEOUT_S} s)", ""
        rows.append([name, status, f"{time.perf_counter() - start:.0f} s", detail])
    return rows


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args(argv)

    deadline = time.perf_counter() + BUDGET_S
    gpus = gpu_names()
    if not gpus:
        print("gpu_check: no GPU visible on this machine; nothing to check.")
        return 0
    print(f"gpu_check: {len(gpus)} GPU(s): {', '.join(gpus)}")
    rows = [["check", "status", "time", "note"]]
    try:
        rows += layer_rows(args.repeats)
    except Exception as err:  # one table with the failure, not a traceback
        rows.append(["layer benchmark", "FAILED", "", f"{type(err).__name__}: {err}"[:200]])
    if not args.skip_training:
        with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
            rows += training_rows(Path(tmp), deadline)
    print_table(rows)
    return 1 if any(r[1].startswith("FAILED") for r in rows[1:]) else 0


if __name__ == "__main__":
    sys.exit(main())
