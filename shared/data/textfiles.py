"""UTF-8 line readers shared by the suites: plain or gzip files, and manythings.org/Tatoeba zips.

Every reader names the file (and the zip member) and the 1-based line of a decoding error, so
bad input is reported as `<file>:<line>: ...` (`<zip>!<member>:<line>` inside an archive).
"""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Iterable
from pathlib import Path


def decode_lines(handle: Iterable[bytes], name: str) -> list[str]:
    """Decodes byte lines as UTF-8 and strips their line endings (`\\n`, `\\r\\n`).

    Raises:
        ValueError: on a line that is not valid UTF-8, naming `name` and the line number.
    """
    lines = []
    for number, raw in enumerate(handle, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(
                f"{name}:{number}: not valid UTF-8 ({err.reason} at byte {err.start})"
            ) from None
        lines.append(text.rstrip("\r\n"))
    return lines


def read_text_lines(path: str | Path, what: str = "text file") -> list[str]:
    """The lines of a UTF-8 text file (gzip-compressed if it ends in `.gz`), endings stripped.

    Args:
        path: the file.
        what: how the file is named in the not-found error (e.g. "parallel text file").

    Raises:
        FileNotFoundError: if `path` is not a file.
        ValueError: if a line is not valid UTF-8 (the message names the file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        return decode_lines(handle, str(path))


def read_pair_file_lines(path: str | Path, what: str = "pair file") -> tuple[str, list[str]]:
    """The lines of a tab-separated pair file, plain or the one pair file inside a zip.

    A manythings.org/Tatoeba `.zip` holds one `<lang>.txt` (or `.tsv`) plus notes whose names
    start with `_` (`_about.txt`), which are ignored.

    Args:
        path: a `.txt`/`.tsv` (or `.gz`) file or such a `.zip`.
        what: how the file is named in the not-found error.

    Returns:
        (name, lines): `name` is `path`, or `<path>!<member>` for a zip member, as used in the
        error messages of this module (callers use it to name bad lines the same way).

    Raises:
        FileNotFoundError: if `path` is not a file.
        ValueError: a zip without exactly one pair file, or a line that is not valid UTF-8.
    """
    path = Path(path)
    if path.suffix != ".zip":
        return str(path), read_text_lines(path, what)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    with zipfile.ZipFile(path) as archive:
        members = [
            m
            for m in archive.namelist()
            if m.endswith((".txt", ".tsv")) and not Path(m).name.startswith("_")
        ]
        if len(members) != 1:
            raise ValueError(f"{path}: expected one pair file in the zip, found {members}")
        name = f"{path}!{members[0]}"
        with archive.open(members[0]) as handle:
            return name, decode_lines(io.BufferedReader(handle), name)
