"""Speed and memory of the shared layers against keras' built-in LSTM, in one process.

For every sequence length, all variants are built in one process and timed in interleaved
repetitions (variant A, B, C, A, B, C, ...), so that machine noise hits them alike; the table
reports the median. Peak memory is measured per variant in a fresh subprocess (peak RSS growth
over the first two training steps, VmHWM), since one process cannot attribute its peak, and
only at long sequences (--memory-lengths), where the step's activations exceed what tracing used.

Usage:
    python benchmarks/bench_layers.py                       # T=100 and T=1000, 5 repeats
    python benchmarks/bench_layers.py --lengths 100 --repeats 7 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from shared.layers import Bidirectional, PeepholeLSTM  # noqa: E402

# name -> factory(units); each variant is compared with the keras layer of its group. The plain
# names are the layers' default configuration; "+XLA loops" / "graph loops" pin `jit_compile`.
VARIANTS = {
    "keras.LSTM": lambda u: keras.layers.LSTM(u, return_sequences=True),
    "PeepholeLSTM": lambda u: PeepholeLSTM(u, return_sequences=True),
    "PeepholeLSTM(no peep)": lambda u: PeepholeLSTM(u, return_sequences=True, use_peepholes=False),
    "PeepholeLSTM+XLA loops": lambda u: PeepholeLSTM(u, return_sequences=True, jit_compile=True),
    "PeepholeLSTM graph loops": lambda u: PeepholeLSTM(u, return_sequences=True, jit_compile=False),
    "keras.Bidirectional(LSTM)": lambda u: keras.layers.Bidirectional(
        keras.layers.LSTM(u, return_sequences=True)
    ),
    "Bidirectional(PeepholeLSTM)": lambda u: Bidirectional(PeepholeLSTM(u, return_sequences=True)),
    "Bidirectional(PeepholeLSTM+XLA)": lambda u: Bidirectional(
        PeepholeLSTM(u, return_sequences=True, jit_compile=True)
    ),
    "Bidirectional(PeepholeLSTM graph loops)": lambda u: Bidirectional(
        PeepholeLSTM(u, return_sequences=True, jit_compile=False)
    ),
}
REFERENCE = {
    name: ("keras.Bidirectional(LSTM)" if "Bidirectional" in name else "keras.LSTM")
    for name in VARIANTS
}


def make_steps(name: str, batch: int, length: int, features: int, units: int):
    """Returns (forward_fn, train_fn) for one variant, built and traced."""
    keras.utils.set_random_seed(0)
    layer = VARIANTS[name](units)
    x = tf.random.normal((batch, length, features))
    layer.build(x.shape)
    optimizer = keras.optimizers.SGD(1e-3)
    optimizer.build(layer.trainable_variables)

    @tf.function
    def forward():
        return layer(x, training=False)

    @tf.function
    def train():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(layer(x, training=True)))
        grads = tape.gradient(loss, layer.trainable_variables)
        optimizer.apply(grads, layer.trainable_variables)
        return loss

    forward()
    train()
    return forward, train


def time_interleaved(fns: dict, repeats: int) -> tuple[dict, dict]:
    """Median wall-clock and process-CPU seconds per call of each function."""
    wall = {name: [] for name in fns}
    cpu = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            np.asarray(fn())  # wait for the result
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    med = {name: float(np.median(v)) for name, v in wall.items()}
    return med, {name: float(np.median(v)) for name, v in cpu.items()}


def _peak_rss_mb() -> float:
    """This address space's RSS high-water mark (VmHWM).

    Not `ru_maxrss`: Linux carries the parent's high-water mark into a child across exec, so a
    probe started by a large benchmark process would read the parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # not Linux


def probe_memory(name: str, batch: int, length: int, features: int, units: int) -> float:
    """In this process: peak RSS growth (MB) over two training steps of one variant."""
    layer = VARIANTS[name](units)
    x = tf.random.normal((batch, length, features))
    layer.build(x.shape)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(layer(x, training=True)))
        return tape.gradient(loss, layer.trainable_variables)

    step.get_concrete_function()  # trace before the baseline
    before = _peak_rss_mb()
    step()
    step()
    return _peak_rss_mb() - before


def peak_memory_mb(name: str, batch: int, length: int, features: int, units: int) -> float:
    """`probe_memory` in a fresh subprocess, so that variants do not share a peak."""
    cmd = [
        sys.executable,
        __file__,
        "--probe-memory",
        name,
        "--batch",
        str(batch),
        "--lengths",
        str(length),
        "--features",
        str(features),
        "--units",
        str(units),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=1800)
    return float(out.stdout.strip().splitlines()[-1])


def _nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else value


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument(
        "--memory-lengths",
        type=int,
        nargs="+",
        default=[1000],
        help="lengths at which peak memory is probed (default 1000: at short "
        "lengths the RSS high-water mark of tracing hides the step)",
    )
    parser.add_argument("--json", default="benchmarks/bench_layers.json")
    parser.add_argument("--probe-memory", metavar="VARIANT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe_memory:
        print(
            probe_memory(args.probe_memory, args.batch, args.lengths[0], args.features, args.units)
        )
        return {}

    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
        "config": vars(args),
        "results": [],
    }
    for length in args.lengths:
        fwd, train = {}, {}
        for name in args.variants:
            fwd[name], train[name] = make_steps(name, args.batch, length, args.features, args.units)
        t_fwd, cpu_fwd = time_interleaved(fwd, args.repeats)
        t_train, cpu_train = time_interleaved(train, args.repeats)
        for name in args.variants:
            ref = REFERENCE[name]
            row = {
                "T": length,
                "variant": name,
                "train_s": t_train[name],
                "forward_s": t_fwd[name],
                "train_steps_per_s": args.batch * length / t_train[name],
                "forward_steps_per_s": args.batch * length / t_fwd[name],
                "train_ratio": t_train[ref] / t_train[name] if ref in t_train else None,
                "forward_ratio": t_fwd[ref] / t_fwd[name] if ref in t_fwd else None,
                "train_cpu_s": cpu_train[name],
                "train_cpu_ratio": cpu_train[ref] / cpu_train[name] if ref in cpu_train else None,
            }
            if not args.no_memory and length in args.memory_lengths:
                row["peak_mb"] = peak_memory_mb(name, args.batch, length, args.features, args.units)
            report["results"].append(row)

    mem_ref = {(r["T"], r["variant"]): r.get("peak_mb") for r in report["results"]}
    header = (
        f"{'T':>5} {'variant':<40} {'train tb/s':>11} {'ratio':>6} {'cpu ratio':>9} "
        f"{'fwd tb/s':>11} {'ratio':>6} {'peak MB':>8} {'mem ratio':>9}"
    )
    print(header)
    for r in report["results"]:
        ref_mem = mem_ref.get((r["T"], REFERENCE[r["variant"]]))
        mem = r.get("peak_mb")
        mem_ratio = mem / ref_mem if mem and ref_mem else float("nan")
        print(
            f"{r['T']:>5} {r['variant']:<40} {r['train_steps_per_s']:>11.0f} "
            f"{_nan_if_none(r['train_ratio']):>6.2f} {_nan_if_none(r['train_cpu_ratio']):>9.2f} "
            f"{r['forward_steps_per_s']:>11.0f} "
            f"{_nan_if_none(r['forward_ratio']):>6.2f} {mem if mem else float('nan'):>8.0f} "
            f"{mem_ratio:>9.2f}"
        )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
