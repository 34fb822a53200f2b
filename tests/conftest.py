"""Test-wide set-up: quiet TF, two logical CPU devices (for MirroredStrategy), data location."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

# Must run before anything initialises the TF runtime (listing logical devices would).
# If TF was already initialised by an earlier import, keep what it has.
_cpus = tf.config.list_physical_devices("CPU")
if _cpus:
    with contextlib.suppress(RuntimeError):
        tf.config.set_logical_device_configuration(
            _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
        )

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


@pytest.fixture
def mirrored_strategy():
    """MirroredStrategy over the 2 logical CPUs, the process-wide instance the spine caches.

    Two MirroredStrategy objects in one process hand out clashing collective instance keys, so
    every test must use this one (tests/test_strategy.py uses the same devices and cache).
    """
    from shared.config import RuntimeConfig
    from shared.training.strategy import make_strategy

    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    if len(cpus) < 2:
        pytest.skip("needs the 2 logical CPU devices set up in conftest.py")
    return make_strategy(RuntimeConfig(strategy="mirrored", devices=cpus[:2]))
