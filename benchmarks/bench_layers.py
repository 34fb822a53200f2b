"""Speed and memory of the shared layers against keras' LSTM, with the machine's ceiling.

In one process this measures:

- the ceiling: the rate of a large square matmul (2048³) in the compute dtype;
- the recurrent step's product alone, (B, u)·(u, 4u), called once per `tf.function` call and
  inside an in-graph loop of 50 steps (what a recurrent loop can reach at best);
- every layer variant in both output modes (`return_sequences` True: "seq", False: "last"),
  forward (inference call) and training (forward + backward + SGD update; loss = mean square
  of the output), timed in interleaved repetitions (A, B, C, A, B, C, ...) so that machine noise
  hits them alike; the table reports medians.

Each row prints the time per call (median), the throughput (timestep·batch per second), the achieved
matrix-product rate as a percentage of the ceiling, and the ratio to the keras layer of its group
(same output mode, phase and dtype policy) and, with several --policies, the speed-up over
the first policy. The ceiling and the recurrent-product rates are the best of several calls
(on a shared machine, the closest to what the cores can do); the % of ceiling of a row uses the
ceiling of its policy's compute dtype. The FLOPs counted are those of the products per direction and
time step: input projection 2·B·I·4u and recurrent product 2·B·u·4u; training adds the recurrent
backward product and the two weight gradients dU and dW (2·B·u·4u, 2·B·u·4u, 2·B·I·4u). The
input gradient dx is not counted: the benchmark input needs none and TensorFlow prunes it for
both layers. Elementwise gate math is not counted.

Peak memory (RSS high-water growth over two training steps, `return_sequences=True`) is
measured per variant in a fresh subprocess, only at long sequences (--memory-lengths).

Usage:
    python benchmarks/bench_layers.py                                # T=100, all rows
    python benchmarks/bench_layers.py --lengths 100 1000 --repeats 7 --json out.json
    python benchmarks/bench_layers.py --policies float32 mixed_bfloat16   # bf16 compute too
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

# name -> factory(units, return_sequences, dtype); the plain names are the layers' defaults.
VARIANTS = {
    "keras.LSTM": lambda u, s, d: keras.layers.LSTM(u, return_sequences=s, dtype=d),
    "PeepholeLSTM": lambda u, s, d: PeepholeLSTM(u, return_sequences=s, dtype=d),
    "PeepholeLSTM(no peep)": lambda u, s, d: PeepholeLSTM(
        u, return_sequences=s, use_peepholes=False, dtype=d
    ),
    "PeepholeLSTM graph loops": lambda u, s, d: PeepholeLSTM(
        u, return_sequences=s, jit_compile=False, dtype=d
    ),
    "keras.Bidirectional(LSTM)": lambda u, s, d: keras.layers.Bidirectional(
        keras.layers.LSTM(u, return_sequences=s, dtype=d), dtype=d
    ),
    "Bidirectional(PeepholeLSTM)": lambda u, s, d: Bidirectional(
        PeepholeLSTM(u, return_sequences=s, dtype=d), dtype=d
    ),
    "Bidirectional(PeepholeLSTM graph loops)": lambda u, s, d: Bidirectional(
        PeepholeLSTM(u, return_sequences=s, jit_compile=False, dtype=d), dtype=d
    ),
}
DEFAULT_VARIANTS = [
    "keras.LSTM",
    "PeepholeLSTM",
    "PeepholeLSTM(no peep)",
    "keras.Bidirectional(LSTM)",
    "Bidirectional(PeepholeLSTM)",
]
MODES = {"seq": True, "last": False}


def reference(name: str) -> str:
    return "keras.Bidirectional(LSTM)" if "Bidirectional" in name else "keras.LSTM"


def directions(name: str) -> int:
    return 2 if "Bidirectional" in name else 1


def gflop(phase: str, name: str, batch: int, length: int, features: int, units: int) -> float:
    """GFLOP of the matrix products of one call (see the module docstring)."""
    proj = 2 * batch * features * 4 * units
    rec = 2 * batch * units * 4 * units
    per_step = proj + rec if phase == "forward" else 2 * proj + 3 * rec
    return per_step * length * directions(name) / 1e9


def _best_seconds(fn, repeats: int) -> float:
    """The fastest of `repeats` calls: on a shared machine, the closest to what it can do."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(fn())
        times.append(time.perf_counter() - start)
    return float(np.min(times))


def gemm_ceiling(dtype: str, size: int = 2048, repeats: int = 7) -> float:
    """GFLOP/s of a size³ matmul in `dtype` (TensorFlow's kernel, all cores; best call)."""
    a = tf.random.normal((size, size), dtype=tf.float32)
    a = tf.cast(a, dtype)
    matmul = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, a), tf.float32)))
    matmul()
    return 2 * size**3 / _best_seconds(matmul, repeats) / 1e9


def recurrent_gemm_rates(
    batch: int, units: int, dtype: str, loop: int = 50, repeats: int = 7
) -> dict:
    """GFLOP/s of the recurrent product (B, u)·(u, 4u): one per call, and `loop` per call.

    Best call of several: the rate the step's product reaches at most.
    """
    h = tf.cast(tf.random.normal((batch, units)), dtype)
    u = tf.cast(tf.random.normal((units, 4 * units)) * 0.05, dtype)

    @tf.function
    def one():
        return tf.cast(tf.matmul(h, u)[0, 0], tf.float32)

    @tf.function(jit_compile=True)
    def looped():
        def body(t, x):
            return t + 1, tf.tanh(tf.matmul(x, u)[:, :units])

        return tf.cast(tf.while_loop(lambda t, _: t < loop, body, (0, h))[1][0, 0], tf.float32)

    flop = 2 * batch * units * 4 * units
    one()
    looped()
    return {
        "one_call_gflops": flop / _best_seconds(one, repeats * 5) / 1e9,
        "xla_loop_gflops": flop * loop / _best_seconds(looped, repeats) / 1e9,
    }


def make_steps(name: str, sequences: bool, dtype: str, x: tf.Tensor, units: int):
    """(forward_fn, train_fn) of one variant, built and traced."""
    keras.utils.set_random_seed(0)
    layer = VARIANTS[name](units, sequences, dtype)
    layer.build(x.shape)
    optimizer = keras.optimizers.SGD(1e-3)
    optimizer.build(layer.trainable_variables)

    @tf.function
    def forward():
        return tf.reduce_sum(tf.cast(layer(x, training=False), tf.float32))

    @tf.function
    def train():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(tf.cast(layer(x, training=True), tf.float32)))
        grads = tape.gradient(loss, layer.trainable_variables)
        optimizer.apply(grads, layer.trainable_variables)
        return loss

    forward()
    train()
    return forward, train


def time_interleaved(fns: dict, repeats: int) -> dict:
    """Median wall-clock seconds per call of each function, calls interleaved."""
    wall = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            np.asarray(fn())  # wait for the result
            wall[name].append(time.perf_counter() - start)
    return {name: float(np.median(v)) for name, v in wall.items()}


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
    layer = VARIANTS[name](units, True, None)
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
    cmd = [sys.executable, __file__, "--probe-memory", name, "--batch", str(batch)]
    cmd += ["--lengths", str(length), "--features", str(features), "--units", str(units)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=1800)
    return float(out.stdout.strip().splitlines()[-1])


def measure_length(args, length: int, policy: str, ceiling: float) -> list[dict]:
    """All rows of one sequence length and dtype policy."""
    x = tf.random.normal((args.batch, length, args.features))
    rows = []
    for mode in args.modes:
        steps = {n: make_steps(n, MODES[mode], policy, x, args.units) for n in args.variants}
        for phase, index in (("forward", 0), ("train", 1)):
            seconds = time_interleaved({n: s[index] for n, s in steps.items()}, args.repeats)
            for name in args.variants:
                rate = gflop(phase, name, args.batch, length, args.features, args.units)
                rate /= seconds[name]
                ref = reference(name)
                rows.append(
                    {
                        "T": length,
                        "policy": policy,
                        "mode": mode,
                        "phase": phase,
                        "variant": name,
                        "ms": 1000 * seconds[name],
                        "tb_per_s": args.batch * length / seconds[name],
                        "gflops": rate,
                        "ceiling_pct": 100 * rate / ceiling,
                        "ratio": seconds[ref] / seconds[name] if ref in seconds else None,
                    }
                )
    return rows


def print_table(report: dict) -> None:
    for policy, c in report["ceiling"].items():
        print(
            f"ceiling ({policy}): {c['gemm_gflops']:.0f} GFLOP/s (2048³ matmul); recurrent "
            f"product {c['one_call_gflops']:.0f} GFLOP/s one per call, "
            f"{c['xla_loop_gflops']:.0f} in an XLA loop of 50"
        )
    first = {
        (r["T"], r["mode"], r["phase"], r["variant"]): r["ms"]
        for r in report["results"]
        if r["policy"] == report["config"]["policies"][0]
    }
    print(
        f"{'T':>5} {'policy':<14} {'mode':<4} {'phase':<7} {'variant':<32} {'ms':>8} "
        f"{'tb/s':>8} {'GFLOP/s':>7} {'%ceil':>6} {'ratio':>6} {'speed-up':>8}"
    )
    for r in report["results"]:
        ratio = float("nan") if r["ratio"] is None else r["ratio"]
        speedup = first[(r["T"], r["mode"], r["phase"], r["variant"])] / r["ms"]
        print(
            f"{r['T']:>5} {r['policy']:<14} {r['mode']:<4} {r['phase']:<7} {r['variant']:<32} "
            f"{r['ms']:>8.1f} {r['tb_per_s']:>8.0f} {r['gflops']:>7.1f} "
            f"{r['ceiling_pct']:>5.1f}% {ratio:>6.2f} {speedup:>8.2f}"
        )
    for r in report["memory"]:
        print(f"peak MB T={r['T']} {r['variant']:<40} {r['peak_mb']:>8.0f}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--lengths", type=int, nargs="+", default=[100])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=DEFAULT_VARIANTS)
    parser.add_argument(
        "--policies",
        nargs="+",
        default=["float32"],
        help="keras dtype policies of the layers, e.g. float32 mixed_bfloat16 (default "
        "float32); 'speed-up' is against the first one",
    )
    parser.add_argument(
        "--memory-lengths",
        type=int,
        nargs="*",
        default=[],
        help="lengths at which peak training memory is probed in fresh subprocesses, e.g. 1000",
    )
    parser.add_argument("--json", default="benchmarks/bench_layers.json")
    parser.add_argument("--probe-memory", metavar="VARIANT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe_memory:
        print(
            probe_memory(args.probe_memory, args.batch, args.lengths[0], args.features, args.units)
        )
        return {}

    ceiling = {}
    for policy in args.policies:
        compute = keras.DTypePolicy(policy).compute_dtype
        ceiling[policy] = {"gemm_gflops": gemm_ceiling(compute)}
        ceiling[policy].update(recurrent_gemm_rates(args.batch, args.units, compute))
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
        "config": vars(args),
        "ceiling": ceiling,
        "results": [],
        "memory": [],
    }
    for length in args.lengths:
        for policy in args.policies:
            gemm = ceiling[policy]["gemm_gflops"]
            report["results"] += measure_length(args, length, policy, gemm)
    for length in args.memory_lengths:
        for name in args.variants:
            mb = peak_memory_mb(name, args.batch, length, args.features, args.units)
            report["memory"].append({"T": length, "variant": name, "peak_mb": mb})
    print_table(report)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
