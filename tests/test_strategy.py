"""Strategies: construction, batch split, mirrored == single device, 2-process multi-worker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from toy_fast import FAST as TOY_FAST
from toy_fast import TINY

from shared.config import RuntimeConfig, load_config
from shared.task import get_task
from shared.training import loop
from shared.training import strategy as st

ToyTask = get_task("toy")

REPO = Path(__file__).resolve().parents[1]
FAST = [
    *TOY_FAST,
    "training.epochs=1",
    "training.monitor=val_loss",
    "training.backup_every_steps=null",
    # Keras 3 clips per-replica gradients before summing them: no clipping in these tests
    "training.global_clipnorm=null",
]
WORKER_TIMEOUT = 300  # a hang guard, generous for a loaded machine


def test_default_and_one_device(two_cpus):
    assert st.make_strategy(RuntimeConfig()).num_replicas_in_sync == 1
    device = two_cpus[1]
    one = st.make_strategy(RuntimeConfig(strategy="one_device", devices=[device]))
    assert isinstance(one, tf.distribute.OneDeviceStrategy)
    with one.scope():
        v = tf.Variable(1.0)
    assert v.device.endswith("CPU:1")


def test_mirrored_batch_split(two_cpus):
    strategy = st.make_strategy(RuntimeConfig(strategy="mirrored", devices=two_cpus))
    assert strategy.num_replicas_in_sync == 2
    assert st.per_replica_batch_size(32, strategy) == 16
    with pytest.raises(st.StrategyError, match="not divisible by the 2 replicas"):
        st.per_replica_batch_size(33, strategy)
    ds = strategy.experimental_distribute_dataset(tf.data.Dataset.range(8).batch(4))
    first = next(iter(ds))
    assert [t.numpy().tolist() for t in strategy.experimental_local_results(first)] == [
        [0, 1],
        [2, 3],
    ]


def test_cluster_from_config_or_environment(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(st.StrategyError, match="needs a cluster"):
        st.make_strategy(RuntimeConfig(strategy="multi_worker"))
    runtime = RuntimeConfig(strategy="multi_worker", workers=["a:1", "b:2"], task_index=1)
    assert st.cluster_tf_config(runtime) == {
        "cluster": {"worker": ["a:1", "b:2"]},
        "task": {"type": "worker", "index": 1},
    }
    env = {"cluster": {"worker": ["h:3"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(env))
    assert st.cluster_tf_config(RuntimeConfig(strategy="multi_worker")) == env
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(st.StrategyError, match="TF_CONFIG is not valid JSON"):
        st.cluster_tf_config(RuntimeConfig(strategy="multi_worker"))


def test_mixed_precision_policy():
    try:
        st.set_precision(RuntimeConfig(mixed_precision="mixed_bfloat16"))
        layer = keras.layers.Dense(2)
        assert (layer.compute_dtype, layer.variable_dtype) == ("bfloat16", "float32")
        st.set_precision(RuntimeConfig())
        assert keras.layers.Dense(2).compute_dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def last_weights(run_dir: Path) -> list[np.ndarray]:
    return keras.saving.load_model(run_dir / "checkpoints" / "last.keras").get_weights()


@pytest.mark.slow
def test_mirrored_trains_like_one_device(tmp_path, two_cpus):
    devices = two_cpus
    single = load_config(TINY, overrides=FAST)
    mirrored = load_config(
        TINY,
        overrides=[*FAST, "runtime.strategy=mirrored", f"runtime.devices={json.dumps(devices)}"],
    )
    loop.train(ToyTask, single, tmp_path / "single")
    loop.train(ToyTask, mirrored, tmp_path / "mirrored")
    reference = last_weights(tmp_path / "single")
    initial = ToyTask(single, tmp_path).build_model().get_weights()
    for a, b in zip(reference, last_weights(tmp_path / "mirrored"), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert any(not np.allclose(a, w0) for a, w0 in zip(reference, initial, strict=True))


def first_step_weight(strategy) -> float:
    """One SGD step of Dense(1) from 0 on a seeded-shuffled stream: the weight names the batch."""
    keras.utils.set_random_seed(0)
    x = np.arange(1, 9, dtype="float32")[:, None]
    ds = tf.data.Dataset.from_tensor_slices((x, x)).shuffle(8, seed=1).batch(2).repeat()
    with strategy.scope():
        model = keras.Sequential(
            [keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")]
        )
        model.compile(keras.optimizers.SGD(1.0), "mse")
    model.fit(ds, epochs=1, steps_per_epoch=1, verbose=0, shuffle=False)
    return float(model.get_weights()[0][0, 0])


def test_keras_still_swallows_a_batch_under_mirrored(two_cpus):
    """Canary for the first half of multiworker_fix: fails once Keras stops pulling a batch."""
    from shared.training.multiworker_fix import multi_worker_fit_fix

    # the cached instance: another MirroredStrategy over the same devices in this process could
    # clash with it on collective instance keys
    mirrored = st.make_strategy(RuntimeConfig(strategy="mirrored", devices=two_cpus))
    single = first_step_weight(tf.distribute.get_strategy())
    with multi_worker_fit_fix():
        assert first_step_weight(mirrored) == pytest.approx(single, rel=1e-6)
    if first_step_weight(mirrored) == pytest.approx(single, rel=1e-6):
        pytest.fail(
            f"Keras {keras.__version__} no longer perturbs the data order under "
            "MirroredStrategy: `_maybe_symbolic_build` in "
            "shared/training/multiworker_fix.py may be unnecessary (check the "
            "multi-worker canary too)"
        )


# ---------------------------------------------------------------------------------------------
# Two worker processes on 127.0.0.1
# ---------------------------------------------------------------------------------------------
def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def run_workers(argv: list[str], cwd: Path, timeout: float = WORKER_TIMEOUT) -> list[tuple]:
    """Starts one process per worker with its TF_CONFIG; hard timeout; SIGKILLs leftovers.

    A worker whose peer never comes waits forever and ignores SIGTERM, hence SIGKILL of the
    whole process group. Returns [(returncode, stdout, stderr)] per worker.
    """
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    procs = []
    try:
        for index in range(2):
            tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
            env = {
                **os.environ,
                "TF_CONFIG": json.dumps(tf_config),
                "TF_CPP_MIN_LOG_LEVEL": "2",
                "CUDA_VISIBLE_DEVICES": "",
            }
            procs.append(
                subprocess.Popen(
                    [sys.executable, *argv],
                    cwd=cwd,
                    env=env,
                    text=True,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + timeout
        results = []
        for proc in procs:
            try:
                out, err = proc.communicate(timeout=max(deadline - time.monotonic(), 1))
            except subprocess.TimeoutExpired:
                tails = []
                for other in procs:
                    if other.poll() is None:
                        os.killpg(other.pid, signal.SIGKILL)
                    tails.append(other.communicate()[1][-1500:])
                pytest.fail(
                    f"multi-worker run exceeded {timeout}s (a worker hung); stderr of the "
                    "workers:\n" + "\n---\n".join(tails)
                )
            results.append((proc.returncode, out, err))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(WORKER_TIMEOUT + 60)
def test_multi_worker_fit_still_needs_the_workaround():
    """Canary for tensorflow#72388: fails once upstream Keras/TF fixed it."""
    results = run_workers([str(REPO / "tests" / "multiworker_canary.py")], cwd=REPO)
    reports = []
    for code, out, err in results:
        assert code == 0, err[-3000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))
    if all(r["ok"] for r in reports):
        pytest.fail(
            f"Keras {keras.__version__} / TF {tf.__version__} run multi-worker fit without the "
            "workaround: tensorflow#72388 is fixed upstream. Delete "
            "shared/training/multiworker_fix.py, its use in shared/training/loop.py and this test."
        )
    known = ("PerReplica", "axis", "Invalid reduction dimension")
    assert all(any(k in r.get("error", "") for k in known) for r in reports), reports


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(WORKER_TIMEOUT + 180)  # the workers, then a one-device reference run
def test_multi_worker_trains_identical_weights_on_both_workers(tmp_path):
    run_dir = tmp_path / "run"
    argv = ["-m", "shared.cli", "train", "toy", "--config", str(TINY), "--run-dir", str(run_dir)]
    for override in [*FAST, "runtime.strategy=multi_worker"]:
        argv += ["--set", override]
    results = run_workers(argv, cwd=REPO)
    for code, _, err in results:
        assert code == 0, err[-3000:]
    chief = last_weights(run_dir)
    worker = last_weights(run_dir / "workers" / "1")
    for a, b in zip(chief, worker, strict=True):
        np.testing.assert_array_equal(a, b)
    assert (run_dir / "history.csv").exists() and not (
        run_dir / "workers" / "1" / "history.csv"
    ).exists()
    # and the same as one device on the same global batch
    single = load_config(TINY, overrides=FAST)
    loop.train(ToyTask, single, tmp_path / "single")
    for a, b in zip(last_weights(tmp_path / "single"), chief, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
