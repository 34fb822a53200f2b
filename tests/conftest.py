"""Test-wide set-up: quiet TF, two logical CPU devices (for MirroredStrategy), data location.

Every test marked `multiprocess` must carry its own `@pytest.mark.timeout(seconds)` (a hard limit
above the timeouts of the processes it starts); the others share `timeout` of pyproject.toml.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
NUMBA_CACHES = Path(tempfile.gettempdir()) / "lstm-suite-numba"
if os.environ.get("PYTEST_XDIST_WORKER"):
    # librosa's numba functions are cached on disk (cache=True); workers that compile the same
    # gufunc at once can write mismatched cache files and crash with a segfault (numba#10128).
    # Each worker id has its own cache folder, kept for the next run (no two writers at once),
    # and starts as a copy of one compiled once for all (`_warm_numba_cache`).
    os.environ["NUMBA_CACHE_DIR"] = str(NUMBA_CACHES / os.environ["PYTEST_XDIST_WORKER"])

import tensorflow as tf  # noqa: E402

# Must run before anything initialises the TF runtime (listing logical devices would). A failure
# is kept and reported by every test that needs the two devices (`two_cpus`): they fail, never skip.
_DEVICE_SETUP_ERROR: str | None = None
try:
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )
except (RuntimeError, IndexError) as _err:
    _DEVICE_SETUP_ERROR = f"{type(_err).__name__}: {_err}"

REPO = Path(__file__).resolve().parents[1]


def datasets_dir() -> Path | None:
    """The real datasets folder: $LSTM_SUITE_DATA, else `<repo>/../shared/datasets` if present."""
    env = os.environ.get("LSTM_SUITE_DATA")
    path = Path(env) if env else REPO.parent / "shared" / "datasets"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Path of ../shared/datasets; skips the test when it is absent."""
    path = datasets_dir()
    if path is None:
        pytest.skip("real datasets not found: set LSTM_SUITE_DATA or use ../shared/datasets")
    return path


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto` starts one worker more than there are CPUs (at most 4).

    Several tests wait on subprocesses, kernels or the tiny-run lock; with 2 CPUs a third
    worker uses that time (RESULTS.md, "Test suite").
    """
    return min(4, (os.cpu_count() or 1) + 1)


def pytest_collection_modifyitems(config, items):
    """Files with more `slow` tests run first; a `multiprocess` test needs its own hard timeout.

    `make test` hands whole files to parallel workers in collection order: starting the long
    files first keeps one of them from running alone at the end.
    """
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])  # stable: the file order is kept otherwise
    missing = [
        item.nodeid
        for item in items
        if item.get_closest_marker("multiprocess") and not item.get_closest_marker("timeout")
    ]
    if missing:
        raise pytest.UsageError(
            "multiprocess tests need @pytest.mark.timeout(seconds): " + ", ".join(missing)
        )


_numba_warm = False


def _warm_numba_cache() -> None:
    """Gives this worker's empty numba cache a copy of librosa's functions compiled once.

    The first worker to get here compiles them in a subprocess (tests/numba_warmup.py) into a
    shared seed folder while the others wait on a lock; a failure only means each worker
    compiles for itself, as it would without the seed.
    """
    import fcntl
    import shutil
    import subprocess
    import sys
    import warnings

    own, seed = Path(os.environ["NUMBA_CACHE_DIR"]), NUMBA_CACHES / "seed"
    if own.exists():
        return
    NUMBA_CACHES.mkdir(parents=True, exist_ok=True)
    with open(NUMBA_CACHES / "seed.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (seed / ".complete").exists():
            shutil.rmtree(seed, ignore_errors=True)
            done = subprocess.run(
                [sys.executable, str(REPO / "tests" / "numba_warmup.py")],
                env={**os.environ, "NUMBA_CACHE_DIR": str(seed)},
                capture_output=True,
                text=True,
                timeout=600,
            )
            if done.returncode != 0:
                warnings.warn(f"numba warm-up failed: {done.stderr[-500:]}", stacklevel=1)
                return
            (seed / ".complete").touch()
        shutil.copytree(seed, own)


def pytest_runtest_setup(item):
    """Before a worker's first speech test, seeds its numba cache (`_warm_numba_cache`)."""
    global _numba_warm
    if _numba_warm or not os.environ.get("PYTEST_XDIST_WORKER") or "speech" not in item.nodeid:
        return
    _numba_warm = True
    _warm_numba_cache()


@pytest.fixture
def two_cpus() -> list[str]:
    """The names of the 2 logical CPU devices set up above; fails the test if they are missing."""
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    if len(cpus) < 2:
        pytest.fail(
            f"tests/conftest.py could not set up 2 logical CPU devices (found {len(cpus)}): "
            f"{_DEVICE_SETUP_ERROR or 'TensorFlow ignored the configuration'}; was TensorFlow "
            "initialised before conftest.py ran?"
        )
    return cpus[:2]


@pytest.fixture
def mirrored_strategy(two_cpus):
    """MirroredStrategy over the 2 logical CPUs, the process-wide instance the spine caches.

    Two MirroredStrategy objects in one process hand out clashing collective instance keys, so
    every test must use this one (tests/test_strategy.py uses the same devices and cache).
    """
    from shared.config import RuntimeConfig
    from shared.training.strategy import make_strategy

    return make_strategy(RuntimeConfig(strategy="mirrored", devices=two_cpus))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """`tiny_run(task, dest)`: a copy at `dest` of `configs/<task>/tiny.yaml` trained to the end.

    The run is trained once per pytest invocation and shared by all xdist workers (a file lock
    in the common base temp folder), so the notebooks and the task tests do not each retrain it.
    Callers get their own copy: evaluating or exporting writes into the run directory.
    """
    import fcntl
    import shutil

    from shared.config import load_config
    from shared.task import get_task
    from shared.training import loop

    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "tiny-runs"
    root.mkdir(exist_ok=True)

    def copy(task: str, dest: Path) -> Path:
        run_dir = root / task
        with open(root / f"{task}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if not loop.finished(run_dir):
                shutil.rmtree(run_dir, ignore_errors=True)
                config = load_config(
                    REPO / "configs" / task / "tiny.yaml",
                    overrides=["training.progress=none"],
                    task=task,
                )
                loop.train(get_task(task), config, run_dir)
        shutil.copytree(run_dir, dest)
        return dest

    return copy
