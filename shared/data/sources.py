"""Config values that name data: paths relative to `data.data_dir`, `"<format>:<path>"` entries."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def resolve_under(path: str | Path, data_dir: str | Path | None) -> Path:
    """`path` itself when absolute or without a `data_dir`, else taken under `data_dir`.

    When `data_dir` names a file (e.g. a manifest TSV), its folder is the base.
    """
    path = Path(path)
    if path.is_absolute() or data_dir is None:
        return path
    base = Path(data_dir)
    return (base.parent if base.is_file() else base) / path


def parse_format_entry(
    entry: str, formats: Sequence[str], data_dir: str | Path | None, key: str
) -> tuple[str, Path]:
    """`"<format>:<path>"` -> (format, path resolved by `resolve_under`); errors name `key`."""
    fmt, sep, path = entry.partition(":")
    if not sep or fmt not in formats or not path:
        raise ValueError(
            f"{key}: {entry!r} must be '<format>:<path>' with format one of {tuple(formats)}"
        )
    return fmt, resolve_under(path, data_dir)
