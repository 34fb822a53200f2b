"""Atomic writes: nothing the project writes is ever half-written.

Files go to a temporary sibling and are moved into
place with `os.replace` (atomic on POSIX within one filesystem); directories (SavedModels) are
built in a temporary sibling directory and renamed once complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yields a temporary path next to `path`; on success moves it onto `path` atomically.

    Args:
        path: the final file.
        suffix: ending the temporary name must have (e.g. ".keras", which `Model.save` requires).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # writers such as h5py/zipfile want to create the file themselves
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(path: str | Path, text: str) -> None:
    """Writes `text` to `path` atomically (fsync before the rename)."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Writes `obj` as indented JSON to `path` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_model_atomic(model: Any, path: str | Path) -> None:
    """`model.save(path)` (a `.keras` file) through a temporary file and `os.replace`."""
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)


def save_weights_atomic(model: Any, path: str | Path) -> None:
    """`model.save_weights(path)` (a `.weights.h5` file; includes optimizer state) atomically."""
    with atomic_path(path, suffix=".weights.h5") as tmp:
        model.save_weights(tmp)


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yields an empty temporary directory next to `path`; renames it to `path` on success.

    Raises:
        FileExistsError: `path` already exists (exports are never overwritten in place).
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} already exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.rename(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
