"""Using a trained run directory: load its checkpoint, evaluate it, export it."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

from shared.errors import UsageError
from shared.files import atomic_write_json, atomic_write_text
from shared.log import get_logger

log = get_logger(__name__)


def load_checkpoint(run_dir: str | Path, which: str = "best") -> Any:
    """Loads `run_dir/checkpoints/<which>.keras` (best falls back to last).

    `which` is best, last, average (written by `lstm-suite average`) or an epoch-<E> file.

    The task's modules must be imported (they register its layers as serializable).
    """
    import keras

    path = Path(run_dir) / "checkpoints" / f"{which}.keras"
    if which == "best" and not path.exists():
        path = path.with_name("last.keras")
    if not path.exists() and which == "average":
        raise UsageError(f"no checkpoint {path}: write it first (lstm-suite average ...)")
    if not path.exists():
        raise UsageError(f"no checkpoint {path}: train first (lstm-suite train ...)")
    return keras.saving.load_model(path, compile=False)  # no optimizer state: exports stay small


def read_history(run_dir: str | Path) -> dict[str, list[float]]:
    """The run's `history.csv` as {metric: one value per epoch}, every attempt of a resumed run.

    `loop.train` returns the history of its own call only; this is the whole run's, e.g. for a
    plot after a resume.
    """
    path = Path(run_dir) / "history.csv"
    if not path.exists():
        raise UsageError(f"no {path}: train first (lstm-suite train ...)")
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    keys = [key for key in (rows[0] if rows else {}) if key != "epoch"]
    return {key: [float(row[key]) for row in rows] for key in keys}


def _task(task_cls: type, config: Any, run_dir: Path):
    from shared.training.loop import seed_everything

    seed_everything(config)
    task = task_cls(config, run_dir)
    task.prepare()
    return task


def _predictor(
    task_cls: type,
    config: Any,
    run_dir: Path,
    checkpoint: str,
    with_runs: tuple[str | Path, ...] = (),
) -> tuple[Any, Any]:
    """The run's task and its checkpoint, combined with the `with_runs` (`Task.combine`).

    Each other run is read as it was trained (its own `config.yaml`, artifacts and the same
    `checkpoint` name) and must be a run of the same task. A `with_runs` entry may also name one
    checkpoint file of a run (`RUN/checkpoints/epoch-5.keras`), e.g. to combine a run's epochs.
    """
    from shared.config import load_config

    task = _task(task_cls, config, run_dir)
    model = load_checkpoint(run_dir, checkpoint)
    if not with_runs:
        return task, model
    others = []
    for other in map(Path, with_runs):
        other, which = _run_and_checkpoint(other, checkpoint)
        path = other / "config.yaml"
        if not path.is_file():
            raise UsageError(f"--with-run {other}: no config.yaml (not a trained run)")
        other_config = load_config(path, task=task_cls.name)
        others.append((_task(task_cls, other_config, other), load_checkpoint(other, which)))
    return task, task.combine(model, others)


def _run_and_checkpoint(path: Path, checkpoint: str) -> tuple[Path, str]:
    """(run directory, checkpoint name) of a `--with-run` value: a run, or a checkpoint file."""
    if path.suffix != ".keras":
        return path, checkpoint
    if not path.is_file() or path.parent.name != "checkpoints":
        raise UsageError(f"--with-run {path}: not a checkpoint file of a run (RUN/checkpoints/)")
    return path.parent.parent, path.stem


def predictions_tsv(result: Any) -> str:
    """The rows of an `Evaluation`: id, reference, extra columns, one column per decoder."""
    header = ["id", "reference", *result.columns, *result.hypotheses]
    columns = [result.ids, result.references, *result.columns.values(), *result.hypotheses.values()]
    if any(len(c) != len(result.ids) for c in columns):
        raise ValueError("every column of an Evaluation needs one entry per id")
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(zip(*columns, strict=True))
    return out.getvalue()


def write_evaluation(run_dir: str | Path, split: str, result: Any) -> dict[str, float]:
    """Writes `eval/<split>/` (metrics.json, predictions.tsv, plots); returns the metrics."""
    folder = Path(run_dir) / "eval" / split
    folder.mkdir(parents=True, exist_ok=True)
    metrics = {k: float(v) for k, v in result.metrics.items()}
    atomic_write_json(folder / "metrics.json", {**metrics, "details": result.details})
    if result.ids:
        atomic_write_text(folder / "predictions.tsv", predictions_tsv(result))
    for name, write in result.plots.items():
        write(folder / name)
    return metrics


def evaluate(
    task_cls: type,
    config: Any,
    run_dir: str | Path,
    splits: tuple[str, ...] = ("validation",),
    checkpoint: str = "best",
    with_runs: tuple[str | Path, ...] = (),
    name: str | None = None,
) -> dict[str, dict[str, float]]:
    """Scores a checkpoint on `splits`; writes `eval/<split>/` and merges `metrics.json`.

    With `with_runs` the checkpoint is combined with those runs' (`Task.combine`) and the
    figures go to `eval/ensemble/<split>/` (key `ensemble/<split>`), with the members listed
    in its `members.json`. `name` replaces that folder and key for a single split, e.g. to
    keep the scores of a test split read with other `data` settings apart.
    """
    if name is not None and len(splits) != 1:
        raise UsageError("--name names the folder of one split: give exactly one --split")
    run_dir = Path(run_dir)
    task, model = _predictor(task_cls, config, run_dir, checkpoint, with_runs)
    metrics_file = run_dir / "metrics.json"
    results = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    folders = {split: f"ensemble/{split}" if with_runs else split for split in splits}
    if name is not None:
        folders = {splits[0]: name}
    for split, folder in folders.items():
        results[folder] = write_evaluation(run_dir, folder, task.evaluate(model, split))
        if with_runs:
            members = [str(run_dir), *map(str, with_runs)]
            atomic_write_json(
                run_dir / "eval" / folder / "members.json",
                {"runs": members, "checkpoint": checkpoint},
            )
        log.info("%s %s: %s", task_cls.name, folder, _summary(results[folder]))
    atomic_write_json(metrics_file, results)
    return {folder: results[folder] for folder in folders.values()}


def evaluate_files(
    task_cls: type,
    config: Any,
    run_dir: str | Path,
    source: str | Path,
    reference: str | Path,
    name: str | None = None,
    checkpoint: str = "best",
) -> dict[str, float]:
    """Scores a checkpoint on a pair of line-aligned files; writes `eval/<name>/`.

    `name` defaults to the reference file's name; the figures are also merged into
    `metrics.json` under that name.
    """
    run_dir = Path(run_dir)
    source, reference = Path(source), Path(reference)
    for path in (source, reference):
        if not path.is_file():
            raise UsageError(f"{path}: no such file")
    name = name or reference.name
    task = _task(task_cls, config, run_dir)
    model = load_checkpoint(run_dir, checkpoint)
    metrics = write_evaluation(run_dir, name, task.evaluate_files(model, source, reference))
    metrics_file = run_dir / "metrics.json"
    results = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    results[name] = metrics
    atomic_write_json(metrics_file, results)
    log.info("%s %s: %s", task_cls.name, name, _summary(metrics))
    return metrics


def _summary(metrics: dict[str, float], limit: int = 6) -> str:
    shown = [f"{k} {v:.4g}" for k, v in list(metrics.items())[:limit]]
    return ", ".join(shown) + (", ..." if len(metrics) > limit else "")


def decode_inputs(
    task_cls: type,
    config: Any,
    run_dir: str | Path,
    inputs: list[str],
    decoder: str,
    checkpoint: str = "best",
) -> Any:
    """Answers raw inputs with a checkpoint and one of the task's Python decoders.

    For decoders the export does not hold (`Task.decode_inputs`), e.g. ones with a language
    model in Python.
    """
    task, model = _predictor(task_cls, config, Path(run_dir), checkpoint)
    return task.decode_inputs(model, inputs, decoder)


def export(
    task_cls: type,
    config: Any,
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    checkpoint: str = "best",
    with_runs: tuple[str | Path, ...] = (),
) -> Path:
    """Exports a checkpoint as a SavedModel (default `run_dir/exports/<UTC time>`).

    With `with_runs` the export holds the checkpoint combined with those runs'
    (`Task.combine`, e.g. averaged probabilities).
    """
    from shared.serving import write_export

    run_dir = Path(run_dir)
    task, model = _predictor(task_cls, config, run_dir, checkpoint, with_runs)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    out = Path(out_dir) if out_dir else run_dir / "exports" / stamp
    return write_export(task.serving_module(model), out, task_cls.name)
