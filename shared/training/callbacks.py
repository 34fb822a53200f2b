"""Callbacks of the training loop: atomic checkpoints, exact resumption, NaN guard, early stop.

Keras' own `BackupAndRestore` restarts an interrupted epoch from its first batch (it records the
batch but never skips to it) and writes its weights and metadata non-atomically, so a kill at the
wrong moment leaves a torn backup. `ResumableBackup` instead writes (weights + optimizer state,
epoch, step, other callbacks' state) through temporary files and renames; the loop restores it and
skips the data stream to the exact step (see `shared.training.loop`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import keras

from shared.files import atomic_write_json, save_model_atomic, save_weights_atomic

_MAX_WORDS = ("acc", "auc", "bleu", "chrf", "f1", "precision", "recall", "iou")
STATE_FILE = "state.json"


def resolve_mode(monitor: str, mode: str) -> str:
    """`monitor_mode` "auto" -> "max" for accuracy-like metrics, else "min"."""
    if mode != "auto":
        return mode
    name = monitor.lower()
    return "max" if any(word in name for word in _MAX_WORDS) else "min"


def verbosity(progress: str, isatty: bool) -> int:
    """Keras `verbose`: 1 = progress bar (TTY), 2 = one line per epoch, 0 = silent."""
    return {"bar": 1, "epoch": 2, "none": 0}.get(progress, 1 if isatty else 2)


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite."""


class FitState:
    """State shared by the callbacks of one run (where we are, whether we diverged)."""

    def __init__(self, epoch: int = 0, step: int = 0):
        self.epoch = epoch  # current epoch (0-based)
        self.step = step  # batches completed in the current epoch
        self.step_offset = step  # batches of the current epoch done before this `fit` call
        self.diverged: str | None = None  # message once the loss is NaN/inf


class NanGuard(keras.callbacks.Callback):
    """Like `TerminateOnNaN`, but remembers where it happened so the loop can raise an error."""

    def __init__(self, state: FitState):
        super().__init__()
        self.state = state

    def on_epoch_begin(self, epoch, logs=None):
        self.state.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.state.step = self.state.step_offset + batch + 1
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.state.diverged = (
                f"the training loss became {float(loss)} at epoch {self.state.epoch + 1}, "
                f"batch {self.state.step}; lower training.learning_rate, set "
                "training.global_clipnorm, or check the data"
            )
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.state.step = 0
        self.state.step_offset = 0


class EndFitAfterEpoch(keras.callbacks.Callback):
    """Ends a `fit` after epoch `last` (0-based): lets a short first epoch show as "Epoch k/N"."""

    def __init__(self):
        super().__init__()
        self.last: int | None = None

    def on_epoch_end(self, epoch, logs=None):
        if self.last is not None and epoch >= self.last:
            self.model.stop_training = True


class ModelCheckpoints(keras.callbacks.Callback):
    """Writes `last.keras` every epoch and `best.keras` when `monitor` improves (atomically)."""

    def __init__(self, directory: Path, monitor: str, mode: str, state: FitState):
        super().__init__()
        self.directory = Path(directory)
        self.monitor, self.mode, self.state = monitor, resolve_mode(monitor, mode), state
        self.best: float | None = None

    def improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, epoch, logs=None):
        if self.state.diverged:
            return
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(
                f"training.monitor={self.monitor!r} is not a logged metric; available: "
                f"{', '.join(sorted(logs))} (val_* metrics need a validation set)"
            )
        value = float(logs[self.monitor])
        if math.isfinite(value) and self.improved(value):
            self.best = value
            save_model_atomic(self.model, self.directory / "best.keras")
        save_model_atomic(self.model, self.directory / "last.keras")

    def get_state(self) -> dict[str, Any]:
        return {"best": self.best}

    def set_state(self, state: dict[str, Any]) -> None:
        self.best = state.get("best")


EPOCH_CHECKPOINT = re.compile(r"epoch-(\d+)\.keras")


def epoch_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """The `epoch-<E>.keras` files of `directory` as (E, path), oldest epoch first."""
    found = []
    for path in Path(directory).glob("epoch-*.keras"):
        match = EPOCH_CHECKPOINT.fullmatch(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


class EpochCheckpoints(keras.callbacks.Callback):
    """Writes `epoch-<E>.keras` (1-based E) after every epoch and keeps the newest `keep`.

    The files are what `lstm-suite average` averages. They live in the checkpoint directory,
    so a resumed run finds (and keeps pruning) the ones of the epochs before the interruption.
    """

    def __init__(self, directory: Path, keep: int, state: FitState):
        super().__init__()
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.directory, self.keep, self.state = Path(directory), keep, state

    def on_epoch_end(self, epoch, logs=None):
        if self.state.diverged:
            return
        save_model_atomic(self.model, self.directory / f"epoch-{epoch + 1}.keras")
        for _, old in epoch_checkpoints(self.directory)[: -self.keep]:
            old.unlink(missing_ok=True)


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """`EarlyStopping` whose patience counter survives a resume (see `set_state`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._restore: dict[str, Any] | None = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self._restore:
            self.wait = self._restore["wait"]
            if self._restore["best"] is not None:
                self.best = self._restore["best"]
            self._restore = None

    def get_state(self) -> dict[str, Any]:
        best = None if self.best is None else float(self.best)
        if best is not None and not math.isfinite(best):
            best = None
        return {"wait": int(self.wait), "best": best}

    def set_state(self, state: dict[str, Any]) -> None:
        self._restore = dict(state)


class ResumableBackup(keras.callbacks.Callback):
    """Backs up the full training state every `every_steps` batches and at each epoch end.

    `backup_dir/state.json` names the weights file and records epoch, step, the other callbacks'
    state and `finished`. The weights file is written first, the JSON second (both atomically),
    so whatever moment the process dies the JSON points at a complete file.

    Args:
        backup_dir: where to write (one run's backups only).
        every_steps: also back up after every N batches; None: only at epoch ends.
        state: the run's FitState.
        stateful: callbacks with get_state/set_state whose state is saved alongside, by name.
        extra: fixed entries stored in the JSON (e.g. the config fingerprint).
    """

    def __init__(
        self,
        backup_dir: Path,
        every_steps: int | None,
        state: FitState,
        stateful: dict[str, Any],
        extra: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.every_steps, self.state, self.stateful = every_steps, state, stateful
        self.extra = dict(extra or {})
        self.steps_per_epoch: int | None = None

    def on_train_batch_end(self, batch, logs=None):
        step = self.state.step_offset + batch + 1
        due = bool(self.every_steps) and step % self.every_steps == 0
        mid_epoch = self.steps_per_epoch is None or step < self.steps_per_epoch
        if due and mid_epoch and not self.state.diverged:
            self.save(self.state.epoch, step)

    def on_epoch_end(self, epoch, logs=None):
        if not self.state.diverged:
            self.save(epoch + 1, 0)

    def save(self, epoch: int, step: int) -> None:
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        name = f"state-e{epoch:05d}-s{step:07d}.weights.h5"
        save_weights_atomic(self.model, self.backup_dir / name)
        record = {
            **self.extra,
            "weights": name,
            "epoch": epoch,
            "step": step,
            "finished": False,
            "callbacks": {key: cb.get_state() for key, cb in self.stateful.items()},
        }
        atomic_write_json(self.backup_dir / STATE_FILE, record)
        for old in self.backup_dir.glob("state-*.weights.h5"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def mark_finished(self, epoch: int) -> None:
        """Records a completed run and drops the (now useless) weights backup."""
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            self.backup_dir / STATE_FILE,
            {**self.extra, "weights": None, "epoch": epoch, "step": 0, "finished": True},
        )
        for old in self.backup_dir.glob("state-*.weights.h5"):
            old.unlink(missing_ok=True)


def read_backup(backup_dir: Path) -> dict[str, Any] | None:
    """The backup record of `backup_dir` (see ResumableBackup), or None."""
    import json

    path = Path(backup_dir) / STATE_FILE
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    weights = record.get("weights")
    if weights and not re.fullmatch(r"state-e\d+-s\d+\.weights\.h5", weights):
        raise ValueError(f"{path}: unexpected weights name {record['weights']!r}")
    return record
