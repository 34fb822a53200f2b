"""`train`: the spine's training loop (resumable, distributed), and the run-directory rule.

Run directory rule (`prepare_run_dir`), applied by `train`:

* missing or empty            -> a fresh run.
* `overwrite=True`            -> its contents are deleted first (only if it is a run directory,
                                 i.e. holds `config.yaml`, or is empty).
* holds an attempt that failed before training started (a config.yaml but no history.csv,
  backup, checkpoint, evaluation, metrics or export: e.g. a bad value found while reading the
  data or building the model) -> not a run to protect: reused (cleared if the config differs).
* holds a run whose config equals the new one (ignoring `runtime.*`, `training.progress` and
  `training.tensorboard`, which may change between attempts, e.g. another number of GPUs):
    - unfinished              -> RESUME from `backup/state.json` (or from scratch when the
                                 previous attempt died before its first backup);
    - finished                -> error: use --overwrite or another --run-dir.
* anything else               -> error naming the keys that differ; never silently overwritten.

Exact resumption: the training data is consumed as one stream `train.repeat()` of a freshly made
dataset (so with a seeded shuffle its order is a pure function of the seed; `Task.datasets` is
called again for every `fit`), and a resumed run skips the batches consumed before the backup.
The interrupted epoch is finished by a `fit` over its remaining steps (its *training* metrics in
history.csv then average those steps only), the later epochs by a second `fit`. With
`training.deterministic: true` an interrupted+resumed run ends with the same weights as an
uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from shared.config import ExperimentConfig, diff_configs, save_config
from shared.errors import RunDirError
from shared.log import get_logger
from shared.training import callbacks as cbs
from shared.training import warm_start

__all__ = ["TrainResult", "prepare_run_dir", "train"]

IGNORED_ON_RESUME = ("runtime", "training.progress", "training.tensorboard")
_log = get_logger(__name__)


@dataclasses.dataclass
class TrainResult:
    """What `train` did."""

    run_dir: Path
    history: dict[str, list[float]]
    initial_epoch: int
    initial_step: int
    epochs_completed: int
    stopped_early: bool


# --------------------------------------------------------------------------------------------
# Run directory
# --------------------------------------------------------------------------------------------
def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    config = {k: (dict(v) if isinstance(v, dict) else v) for k, v in config.items()}
    for key in IGNORED_ON_RESUME:
        section, _, name = key.partition(".")
        if name:
            config.get(section, {}).pop(name, None)
        else:
            config.pop(section, None)
    return config


TRAINING_OUTPUTS = ("history.csv", "backup", "checkpoints", "eval", "metrics.json", "exports")


def trained(run_dir: Path) -> bool:
    """True once training has started in `run_dir` (one of TRAINING_OUTPUTS is non-empty).

    `history.csv` is written when the first `fit` begins, so a run directory without any of
    them holds only an attempt that failed before training: nothing to protect.
    """
    for name in TRAINING_OUTPUTS:
        path = run_dir / name
        if path.is_file() or (path.is_dir() and any(path.iterdir())):
            return True
    return False


def finished(run_dir: str | Path) -> bool:
    """True when `run_dir` holds a run that trained to its end (train would refuse it)."""
    record = cbs.read_backup(Path(run_dir) / "backup")
    return bool(record and record.get("finished"))


def _clear(work_dir: Path, is_chief: bool) -> None:
    """Deletes the contents of `work_dir` (the chief keeps the other workers' `workers/`)."""
    for child in work_dir.iterdir():
        if is_chief and child.name == "workers":
            continue
        shutil.rmtree(child) if child.is_dir() else child.unlink()


def prepare_run_dir(
    run_dir: Path, config: ExperimentConfig, overwrite: bool, work_dir: Path | None = None
) -> dict[str, Any] | None:
    """Applies the run-directory rule (module docstring); returns the backup record to resume.

    Args:
        run_dir: the run directory (its config.yaml decides).
        config: the new resolved config.
        overwrite: delete an existing run first.
        work_dir: where this process keeps checkpoints/backups (a non-chief worker's
            `run_dir/workers/<i>`); defaults to `run_dir`.
    """
    import yaml

    work_dir = work_dir or run_dir
    config_file = run_dir / "config.yaml"
    is_chief = work_dir == run_dir
    if overwrite and work_dir.exists() and any(work_dir.iterdir()):
        if is_chief and not config_file.exists():
            raise RunDirError(
                f"{run_dir} is not a run directory (no config.yaml); refusing "
                "to delete it with --overwrite"
            )
        _log.info(f"--overwrite: deleting the previous run in {work_dir}")
        _clear(work_dir, is_chief)
    # `workers/` may already have been created by the other workers of a multi-worker run.
    if not run_dir.exists() or not any(c.name != "workers" for c in run_dir.iterdir()):
        return None
    if not config_file.exists():
        if is_chief:
            found = sorted(c.name for c in run_dir.iterdir() if c.name != "workers")
            raise RunDirError(
                f"{run_dir} exists, is not empty and is not a run directory (no "
                f"config.yaml; found {', '.join(found[:5])}); choose another --run-dir"
            )
        return cbs.read_backup(work_dir / "backup")
    old = yaml.safe_load(config_file.read_text()) or {}
    differ = diff_configs(_comparable(old), _comparable(config.to_dict()))
    if differ and is_chief and not trained(run_dir):
        _log.info(f"reusing {run_dir}: its previous attempt stopped before training started")
        _clear(run_dir, is_chief)
        return None
    if differ:
        raise RunDirError(
            f"{run_dir} holds a run with a different config ({', '.join(differ[:8])}"
            f"{', ...' if len(differ) > 8 else ''} differ); use --overwrite to replace it or "
            "choose another --run-dir"
        )
    record = cbs.read_backup(work_dir / "backup")
    if record and record.get("finished"):
        raise RunDirError(
            f"{run_dir} already holds a finished run; use --overwrite to train "
            "again or choose another --run-dir"
        )
    return record


# --------------------------------------------------------------------------------------------
# Model helpers
# --------------------------------------------------------------------------------------------
def make_optimizer(training: Any, total_steps: int):
    """The configured optimizer with its learning-rate schedule and clipping."""
    import keras

    t = training
    warmup = min(t.warmup_steps, max(total_steps - 1, 0))
    decay_steps = t.decay_steps or max(total_steps - warmup, 1)
    if t.lr_schedule == "constant" and not warmup:
        lr: Any = t.learning_rate
    elif t.lr_schedule in ("constant", "cosine"):
        # CosineDecay with alpha=1 is flat: "constant" + warm-up uses the same schedule class.
        lr = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else t.learning_rate,
            decay_steps=decay_steps,
            alpha=1.0 if t.lr_schedule == "constant" else t.min_lr_ratio,
            warmup_target=t.learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    else:
        lr = keras.optimizers.schedules.ExponentialDecay(
            t.learning_rate, decay_steps=decay_steps, decay_rate=t.decay_rate
        )
    clip = {"clipnorm": t.clipnorm, "global_clipnorm": t.global_clipnorm}
    if t.optimizer == "adam":
        return keras.optimizers.Adam(lr, **clip)
    if t.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=t.weight_decay, **clip)
    return keras.optimizers.SGD(lr, momentum=t.momentum, **clip)


def count_batches(dataset) -> int:
    """Batches in one pass of `dataset` (iterates it once when the cardinality is unknown)."""
    import tensorflow as tf

    n = int(dataset.cardinality())
    if n == tf.data.INFINITE_CARDINALITY:
        raise ValueError("the training dataset is infinite: set training.steps_per_epoch")
    if n == tf.data.UNKNOWN_CARDINALITY:
        n = int(dataset.reduce(0, lambda count, _: count + 1))
    if n == 0:
        raise ValueError("the training dataset is empty")
    return n


def seed_everything(config: ExperimentConfig) -> None:
    """Seeds Python, NumPy, TF and Keras; `training.deterministic` -> TF op determinism."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(config.seed)
    if config.training.deterministic:
        tf.config.experimental.enable_op_determinism()


def _build(model, dataset) -> None:
    """Builds an unbuilt (subclassed) model on one batch so weights can be restored."""
    if not model.built:
        inputs = next(iter(dataset.take(1)))[0]
        model(inputs, training=False)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Run:
    """Where this process trains, and the backup it resumes from."""

    run_dir: Path
    work_dir: Path  # run_dir, or a non-chief worker's run_dir/workers/<index>
    is_chief: bool
    strategy: Any
    record: dict[str, Any] | None  # the backup record to resume; None: from scratch


class _Phase(NamedTuple):
    """One `fit` call of a run."""

    first: int  # its first epoch (0-based)
    last: int | None  # the epoch after which it ends; None: at training.epochs
    offset: int  # batches of the first epoch done before this fit
    skip: int  # batches of the training stream consumed before this fit


@dataclasses.dataclass
class _Callbacks:
    """The callbacks of every `fit`, and the ones the loop talks to between fits."""

    all: list[Any]
    state: cbs.FitState
    stateful: dict[str, Any]  # name -> callback whose state is backed up and restored
    backup: cbs.ResumableBackup
    end_phase: cbs.EndFitAfterEpoch


def train(
    task_cls: type,
    config: ExperimentConfig,
    run_dir: str | Path,
    overwrite: bool = False,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Trains `task_cls` with `config` in `run_dir` (creating, resuming or refusing it).

    Args:
        task_cls: the task class.
        config: the resolved experiment config.
        run_dir: the run directory (module docstring).
        overwrite: replace a previous run in `run_dir`.
        callbacks: further Keras callbacks, called after the loop's own (checkpoints, backup)
            in every `fit` of the run.

    Raises:
        RunDirError: the run directory holds something else (module docstring).
        TrainingDivergedError: the loss became NaN/inf (the message says where).
    """
    from shared.training import strategy as st

    t = config.training
    run = _open_run(config, Path(run_dir).absolute(), overwrite)
    seed_everything(config)
    st.set_precision(config.runtime)
    st.per_replica_batch_size(t.global_batch_size, run.strategy)
    task = task_cls(config, run.run_dir)
    task.prepare()
    train_ds, val_ds = task.datasets(t.global_batch_size)
    if val_ds is None and t.monitor.startswith("val_"):
        raise ValueError(
            f"training.monitor={t.monitor!r} needs a validation set, but the task "
            "returned none; monitor a training metric such as 'loss'"
        )
    steps_per_epoch = t.steps_per_epoch or count_batches(train_ds)
    model = _compiled_model(task, t, run, train_ds, steps_per_epoch)

    start_epoch, start_step = _start_point(run.record, steps_per_epoch)
    if run.record:
        _log.info(
            f"resuming {run.run_dir} from epoch {start_epoch + 1}, step {start_step} "
            f"(backup {run.record.get('weights') or 'none: restarting'})"
        )
    extra = [*task.callbacks(), *callbacks]
    kit = _make_callbacks(config, run, start_epoch, start_step, steps_per_epoch, extra)
    phases = plan_phases(start_epoch, start_step, steps_per_epoch, t.epochs)
    history, stopped_early = _fit_phases(model, task, t, val_ds, kit, phases, steps_per_epoch)

    epochs_done = kit.state.epoch + 1 if phases else t.epochs
    kit.backup.mark_finished(epochs_done)
    if stopped_early:
        _log.info(
            f"early stopping after epoch {epochs_done}: {t.monitor} did not improve for "
            f"{t.early_stopping_patience} epochs"
        )
    r0 = run.record or {}
    return TrainResult(
        run.run_dir, history, r0.get("epoch", 0), r0.get("step", 0), epochs_done, stopped_early
    )


def _open_run(config: ExperimentConfig, run_dir: Path, overwrite: bool) -> _Run:
    """Makes the strategy, applies the run-directory rule, creates the folders, saves the config."""
    from shared.training import strategy as st

    st.configure_threads(config.runtime)
    strategy = st.make_strategy(config.runtime)
    is_chief, index = st.worker_identity(strategy)
    work_dir = run_dir if is_chief else run_dir / "workers" / str(index)
    record = prepare_run_dir(run_dir, config, overwrite, work_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    if is_chief:
        save_config(config, run_dir / "config.yaml")
        for sub in ("artifacts", "checkpoints", "logs", "exports", "eval"):
            (run_dir / sub).mkdir(exist_ok=True)
    return _Run(run_dir, work_dir, is_chief, strategy, record)


def _compiled_model(task: Any, t: Any, run: _Run, train_ds: Any, steps_per_epoch: int) -> Any:
    """The task's model, compiled under the strategy, with the backup's weights if resuming."""
    with run.strategy.scope():
        model = task.build_model()
        model.compile(
            optimizer=make_optimizer(t, steps_per_epoch * t.epochs),
            loss=task.loss(),
            metrics=task.metrics(),
        )
        _build(model, train_ds)
        if t.init_from and not run.record:
            warm_start.initialise_from(model, t.init_from)
        if run.record and run.record.get("weights"):
            if model.optimizer is not None and not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
            model.load_weights(run.work_dir / "backup" / run.record["weights"])
    return model


def _start_point(record: dict[str, Any] | None, steps_per_epoch: int) -> tuple[int, int]:
    """(epoch, batches done in it) where training continues; a full epoch counts as done."""
    epoch, step = (record["epoch"], record["step"]) if record else (0, 0)
    return (epoch + 1, 0) if step >= steps_per_epoch else (epoch, step)


def plan_phases(start_epoch: int, start_step: int, steps_per_epoch: int, epochs: int) -> list:
    """The `fit` calls from (start_epoch, start_step) to the end of training.

    An interrupted epoch is finished by its own `fit` over the remaining steps, the later epochs
    by a second one; each skips the batches of the training stream consumed before it.
    """
    phases = []
    if start_step:
        skip = start_epoch * steps_per_epoch + start_step
        phases.append(_Phase(start_epoch, start_epoch, start_step, skip))
        start_epoch += 1
    if start_epoch < epochs:
        phases.append(_Phase(start_epoch, None, 0, start_epoch * steps_per_epoch))
    return phases


def _make_callbacks(
    config: ExperimentConfig,
    run: _Run,
    start_epoch: int,
    start_step: int,
    steps_per_epoch: int,
    extra: Sequence[Any],
) -> _Callbacks:
    """The loop's callbacks (state restored from the backup record), then `extra`."""
    import keras

    t = config.training
    state = cbs.FitState(epoch=start_epoch, step=start_step)
    checkpoints = cbs.ModelCheckpoints(
        run.work_dir / "checkpoints", t.monitor, t.monitor_mode, state
    )
    stateful: dict[str, Any] = {"checkpoints": checkpoints}
    end_phase = cbs.EndFitAfterEpoch()
    callbacks: list[Any] = [end_phase, cbs.NanGuard(state), checkpoints]
    if t.keep_epoch_checkpoints:
        callbacks.append(
            cbs.EpochCheckpoints(run.work_dir / "checkpoints", t.keep_epoch_checkpoints, state)
        )
    if t.early_stopping_patience:
        stateful["early_stopping"] = cbs.ResumableEarlyStopping(
            monitor=t.monitor,
            mode=cbs.resolve_mode(t.monitor, t.monitor_mode),
            patience=t.early_stopping_patience,
            verbose=1,
        )
        callbacks.append(stateful["early_stopping"])
    if run.is_chief:
        history_csv = str(run.run_dir / "history.csv")
        callbacks.append(keras.callbacks.CSVLogger(history_csv, append=run.record is not None))
        if t.tensorboard and importlib.util.find_spec("tensorboard") is None:
            _log.warning(
                "tensorboard is not installed: no TensorBoard logs (pip install tensorboard)"
            )
        elif t.tensorboard:
            callbacks.append(keras.callbacks.TensorBoard(str(run.run_dir / "logs")))
    backup = cbs.ResumableBackup(
        run.work_dir / "backup",
        t.backup_every_steps,
        state,
        stateful,
        extra={"fingerprint": config.fingerprint()},
    )
    backup.steps_per_epoch = steps_per_epoch
    callbacks += [backup, *extra]
    saved = (run.record or {}).get("callbacks", {})
    for key, cb in stateful.items():
        if key in saved:
            cb.set_state(saved[key])
    return _Callbacks(callbacks, state, stateful, backup, end_phase)


def _fit_phases(
    model: Any,
    task: Any,
    t: Any,
    val_ds: Any,
    kit: _Callbacks,
    phases: list[_Phase],
    steps_per_epoch: int,
) -> tuple[dict[str, list[float]], bool]:
    """Runs the phases' `fit` calls; returns (history, whether early stopping ended the run)."""
    import keras

    from shared.training.multiworker_fix import multi_worker_fit_fix

    verbose = cbs.verbosity(t.progress, sys.stdout.isatty())
    history: dict[str, list[float]] = {}
    # Keras warns when a validation set of unknown length (e.g. bucketed) ends: expected here,
    # and the training stream is infinite so it cannot run out.
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    with multi_worker_fit_fix():  # a no-op without a distribution strategy
        for phase in phases:
            kit.state.step_offset = kit.state.step = phase.offset
            kit.end_phase.last = phase.last
            # A fresh dataset per fit: a seeded shuffle's order depends on how many iterators
            # its dataset object has made, so only a new object replays the same stream.
            stream = task.datasets(t.global_batch_size)[0].repeat()
            result = model.fit(
                stream.skip(phase.skip) if phase.skip else stream,
                validation_data=val_ds,
                validation_steps=t.validation_steps,
                epochs=t.epochs,
                initial_epoch=phase.first,
                steps_per_epoch=steps_per_epoch - phase.offset,
                callbacks=kit.all,
                verbose=verbose,
                shuffle=False,  # the task's dataset is shuffled (seeded) already
            )
            for key, values in result.history.items():
                history.setdefault(key, []).extend(float(v) for v in values)
            if kit.state.diverged:
                raise cbs.TrainingDivergedError(kit.state.diverged)
            early = kit.stateful.get("early_stopping")
            if early is not None and early.stopped_epoch > 0:
                return history, True
            for cb in kit.stateful.values():  # carry state into the next fit's on_train_begin
                cb.set_state(cb.get_state())
            for cb in kit.all:
                if isinstance(cb, keras.callbacks.CSVLogger):
                    cb.append = True
    return history, False
