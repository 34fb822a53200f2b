"""Checkpoint averaging: one checkpoint whose weights are the mean of the last N epochs'.

Averaging the parameters of the last few epoch checkpoints (OpenNMT's `average_checkpoints`,
Marian's `--exponential-smoothing` in spirit) smooths out the noise of the final updates and
usually generalises a little better than any single checkpoint, at no training cost. The
epoch checkpoints come from `training.keep_epoch_checkpoints: N`; the average is written to
`checkpoints/<name>.keras` (default `average.keras`), which `evaluate` and `export` load with
`--checkpoint average`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import UsageError
from shared.files import save_model_atomic
from shared.log import get_logger
from shared.training.callbacks import epoch_checkpoints

log = get_logger(__name__)

RESERVED_NAMES = ("best", "last")


def average_arrays(checkpoints: list[list[np.ndarray]]) -> list[np.ndarray]:
    """The element-wise mean of each variable over `checkpoints` (oldest first).

    Floating-point variables are averaged (accumulated in float64, cast back to their dtype);
    any other variable (step counters, random-seed states) is taken from the newest checkpoint.

    Raises:
        ValueError: no checkpoints, or they do not hold the same variables and shapes.
    """
    if not checkpoints:
        raise ValueError("no checkpoints to average")
    newest = checkpoints[-1]
    for other in checkpoints[:-1]:
        shapes = [(a.shape, a.dtype) for a in other]
        if shapes != [(a.shape, a.dtype) for a in newest]:
            raise ValueError("the checkpoints hold different variables: not the same model")
    averaged = []
    for i, value in enumerate(newest):
        if np.issubdtype(value.dtype, np.floating):
            total = np.zeros(value.shape, np.float64)
            for weights in checkpoints:
                total += weights[i]
            averaged.append((total / len(checkpoints)).astype(value.dtype))
        else:
            averaged.append(np.array(value, copy=True))
    return averaged


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name.startswith("."):
        raise UsageError(f"--out {name!r}: a checkpoint name is letters, digits, '_', '-', '.'")
    if name in RESERVED_NAMES or re.fullmatch(r"epoch-\d+", name):
        raise UsageError(f"--out {name!r}: that name is the training loop's; choose another")


def average_checkpoints(
    run_dir: str | Path, last: int | None = None, name: str = "average"
) -> Path:
    """Writes `run_dir/checkpoints/<name>.keras`: the mean of the newest `last` epoch checkpoints.

    The task's modules must be imported (they register its layers as serializable). The
    architecture, optimizer state and non-float variables are the newest checkpoint's.

    Args:
        run_dir: a run trained with `training.keep_epoch_checkpoints` > 0.
        last: how many of the newest epoch checkpoints to average; None: all that are kept.
        name: the output checkpoint's name (without `.keras`).

    Returns:
        The written checkpoint's path.

    Raises:
        UsageError: no epoch checkpoints, too few of them, or a bad `last`/`name`.
    """
    import keras

    _check_name(name)
    folder = Path(run_dir) / "checkpoints"
    found = epoch_checkpoints(folder)
    if not found:
        raise UsageError(
            f"{folder}: no epoch-<E>.keras checkpoints to average; train with "
            "--set training.keep_epoch_checkpoints=N (N > 1)"
        )
    if last is not None and last < 1:
        raise UsageError(f"--last {last}: must be at least 1")
    if last is not None and last > len(found):
        raise UsageError(
            f"--last {last}: {folder} holds only {len(found)} epoch checkpoints "
            f"(epochs {', '.join(str(e) for e, _ in found)})"
        )
    chosen = found[-last:] if last else found
    model: Any = None
    values = []
    for _, path in chosen:
        model = keras.saving.load_model(path)
        values.append([np.asarray(keras.ops.convert_to_numpy(v)) for v in model.weights])
    for variable, value in zip(model.weights, average_arrays(values), strict=True):
        variable.assign(value)
    out = folder / f"{name}.keras"
    save_model_atomic(model, out)
    log.info("averaged epochs %s -> %s", ", ".join(str(e) for e, _ in chosen), out)
    return out
