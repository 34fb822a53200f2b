"""One export machinery for every task: write a SavedModel, load it, ask it, time it.

A task supplies a `ServingModule` (its `tf.function`s on raw inputs and its assets) and three
class methods on its `Task` (`parse_input`, `request`, `format_outputs`); everything else is here:

    write_export(module, out_dir, task)   signatures + assets + `assets/task.txt`, atomic rename
    load_export(path)                     `tf.saved_model.load` alone (+ tensorflow_text's ops)
    predict(task_cls, path, inputs)       CLI inputs -> one line per input, failures reported
    bench_export(task_cls, path, inputs)  items/s per batch size (and real-time factor for audio)

An export is usable without this project: `tf.saved_model.load(path).signatures
["serving_default"](text=tf.constant([...]))` (an audio task: `waveform`, `waveform_length`).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from shared.errors import InputError, UsageError
from shared.files import atomic_directory

TASK_ASSET = "task.txt"


class ServingModule(tf.Module):
    """Base of every task's export module.

    Subclasses keep the model and whatever the graph needs as attributes, define `tf.function`s
    with input signatures, and list them in `signatures()` (`serving_default` is required).
    Text files the graph or a reader of the export needs are added with `add_asset` (in
    `__init__`, before any function is traced): they land in the export's `assets/` folder.

    Args:
        name: the module's name.
    """

    def __init__(self, name: str):
        super().__init__(name=name)
        self._staging = Path(tempfile.mkdtemp(prefix="lstm_suite_assets_"))
        self._assets: dict[str, tf.saved_model.Asset] = {}

    def add_asset(self, filename: str, text: str) -> tf.saved_model.Asset:
        """Writes `text` as `assets/<filename>` of the export; returns the tracked asset.

        The asset's `asset_path` is a string tensor usable in the graph (e.g. by
        `tf.lookup.TextFileInitializer`); it points into the export wherever that is moved.
        """
        path = self._staging / filename
        path.write_text(text, encoding="utf-8")
        asset = tf.saved_model.Asset(str(path))
        self._assets[filename] = asset
        return asset

    def signatures(self) -> dict[str, Any]:
        """Signature name -> `tf.function` with an input signature (default: `self.serve`)."""
        return {"serving_default": self.serve}  # type: ignore[attr-defined]

    def cleanup(self) -> None:
        """Deletes the staged asset files (the export has its own copies)."""
        shutil.rmtree(self._staging, ignore_errors=True)


def write_export(module: ServingModule, out_dir: str | Path, task: str) -> Path:
    """Saves `module` as a SavedModel at `out_dir`, built in a temporary sibling and renamed.

    Args:
        module: the task's serving module.
        out_dir: the export folder; must not exist (an export is never overwritten in place).
        task: the task name, stored as `assets/task.txt` so `predict` can check it.
    """
    out_dir = Path(out_dir)
    module.add_asset(TASK_ASSET, f"{task}\n")
    try:
        with atomic_directory(out_dir) as tmp:
            tf.saved_model.save(module, str(tmp), signatures=module.signatures())
    finally:
        module.cleanup()
    return out_dir


def latest_export(run_dir: str | Path) -> Path:
    """The newest complete export in `run_dir/exports` (temporary folders are ignored)."""
    folder = Path(run_dir) / "exports"
    exports = sorted(p for p in folder.glob("[!.]*") if p.is_dir())
    if not exports:
        raise UsageError(f"no export in {folder}: run `lstm-suite export` first")
    return exports[-1]


@dataclass
class LoadedExport:
    """A SavedModel loaded with `tf.saved_model.load`, and its asset files."""

    path: Path
    signatures: dict[str, Any]
    task: str | None = None
    _assets: dict[str, str] = field(default_factory=dict)

    def asset(self, filename: str) -> str:
        """The text of `assets/<filename>`.

        Raises:
            UsageError: the export has no such asset.
        """
        if filename not in self._assets:
            path = self.path / "assets" / filename
            if not path.is_file():
                raise UsageError(f"{self.path}: not an export of this task (no assets/{filename})")
            self._assets[filename] = path.read_text(encoding="utf-8")
        return self._assets[filename]

    def __call__(self, signature: str = "serving_default", **inputs: Any) -> dict[str, np.ndarray]:
        """Runs a signature; returns its outputs as NumPy arrays."""
        if signature not in self.signatures:
            raise UsageError(
                f"{self.path} has no signature {signature!r} (has: {', '.join(self.signatures)})"
            )
        outputs = self.signatures[signature](**inputs)
        return {k: v.numpy() for k, v in outputs.items()}


def load_export(path: str | Path, task: str | None = None) -> LoadedExport:
    """Loads an export (registering tensorflow_text's ops first).

    Args:
        path: the SavedModel folder.
        task: if given, the export must have been written for this task.

    Raises:
        UsageError: `path` is no SavedModel, or one of another task.
    """
    import tensorflow_text  # noqa: F401 - registers the SentencePiece ops before loading

    path = Path(path)
    if not (path / "saved_model.pb").is_file():
        raise UsageError(f"{path}: not a SavedModel (no saved_model.pb)")
    task_file = path / "assets" / TASK_ASSET
    written_for = task_file.read_text().strip() if task_file.is_file() else None
    if task and written_for and written_for != task:
        raise UsageError(f"{path} is a {written_for} export, not a {task} one")
    loaded = tf.saved_model.load(str(path))
    return LoadedExport(path, dict(loaded.signatures), written_for)


@dataclass
class Prediction:
    """What `predict` produced: one line per usable input, one message per failed input."""

    lines: list[str]
    errors: list[str]


def parse_all(
    parse: Callable[[str], Any], inputs: list[str]
) -> tuple[list[Any], list[str], list[str]]:
    """(parsed items, the inputs they came from, "input: reason" of each that raised InputError)."""
    items, kept, errors = [], [], []
    for text in inputs:
        try:
            items.append(parse(text))
            kept.append(text)
        except InputError as err:
            errors.append(f"{text}: {err}")
    return items, kept, errors


def _parse_all(task_cls: type, inputs: list[str], export: LoadedExport):
    return parse_all(lambda text: task_cls.parse_input(text, export), inputs)


def predict(
    task_cls: type,
    export_dir: str | Path,
    inputs: list[str],
    signature: str = "serving_default",
    batch_size: int = 64,
) -> Prediction:
    """Answers `inputs` with an export, `batch_size` inputs per call.

    Inputs that cannot be used (`Task.parse_input` raised `InputError`) are reported in
    `errors`, the others answered; the CLI exits non-zero when any failed.
    """
    export = load_export(export_dir, task_cls.name)
    items, kept, errors = _parse_all(task_cls, inputs, export)
    lines: list[str] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        outputs = export(signature, **task_cls.request(chunk, export))
        lines += task_cls.format_outputs(kept[start : start + batch_size], outputs, export)
    return Prediction(lines, errors)


def bench_export(
    task_cls: type,
    export_dir: str | Path,
    inputs: list[str],
    batch_sizes: tuple[int, ...] = (1, 32),
    signature: str = "serving_default",
    repeats: int = 3,
) -> list[dict[str, Any]]:
    """Times an export on real inputs: one row per batch size.

    Each row has `items_per_second` (median over `repeats` passes over all inputs, after one
    warm-up call per batch shape) and, for audio, `real_time_factor` (seconds of computing per
    second of audio; below 1 is faster than real time).
    """
    export = load_export(export_dir, task_cls.name)
    items, _, errors = _parse_all(task_cls, inputs, export)
    if errors:
        raise InputError("; ".join(errors))
    if not items:
        raise UsageError("bench-export needs at least one input")
    seconds = [task_cls.item_seconds(item, export) for item in items]
    rows = []
    for batch_size in batch_sizes:
        batches = [
            task_cls.request(items[i : i + batch_size], export)
            for i in range(0, len(items), batch_size)
        ]
        export(signature, **batches[0])  # trace / warm up
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            for batch in batches:
                export(signature, **batch)
            timings.append(time.perf_counter() - started)
        elapsed = statistics.median(timings)
        row = {
            "signature": signature,
            "batch_size": batch_size,
            "items": len(items),
            "items_per_second": len(items) / elapsed,
        }
        if all(s is not None for s in seconds):
            row["real_time_factor"] = elapsed / sum(seconds)
        rows.append(row)
    return rows
