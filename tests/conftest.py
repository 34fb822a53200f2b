"""Test-wide set-up: quiet TF, two logical CPU devices (for MirroredStrategy tests), data location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
if _cpus and not tf.config.list_logical_devices("CPU")[1:]:
    try:
        tf.config.set_logical_device_configuration(
            _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
        )
    except RuntimeError:  # TF already initialised by an earlier import: keep what it has
        pass

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
        pytest.skip("real datasets not found: set LSTM_SUITE_DATA or place them at ../shared/datasets")
    return path
