"""Pretrained word vectors from text files: GloVe and word2vec/fastText, plain or gzip.

Two text formats are read, one vector per line, values separated by spaces:

    glove      `word v1 ... vD` on every line, no header (Stanford GloVe)
    word2vec   a first line `N D` (count and dimension), then `word v1 ... vD` (word2vec's text
               output, fastText's `.vec` files)

`format="auto"` takes a first line of exactly two integers as a word2vec header. Gzip is recognised
by its magic bytes, whatever the file is called. The file is streamed line by line and only the
rows asked for are kept, in one float32 array allocated up front, so a 2 GB file needs memory for
the kept rows only: either the words of a given set (`words=`) or the first `limit` rows (vector
files list the most frequent words first), or both (a word is kept if it is in `words` or among
the first `limit` rows).

Rules: the dimension is the header's (word2vec) or the first row's (GloVe); a word containing
spaces (GloVe 840B has a few) is everything before the last D fields; the first occurrence of a
duplicated word wins (later ones are counted and logged); a malformed row (too few fields, a value
that is not a finite number) or an empty file raises `DataError` naming the file and line.

>>> vectors = read_vectors("glove.6B.50d.txt.gz", limit=100_000)
>>> vectors.matrix.shape, vectors.index["good"]
((100000, 50), 219)
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np

from shared.errors import DataError
from shared.log import get_logger

log = get_logger(__name__)

VectorFormat = Literal["auto", "glove", "word2vec"]
FORMATS = ("auto", "glove", "word2vec")
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class WordVectors:
    """Words and their vectors, in file order.

    Attributes:
        words: the kept words, in the order of the file.
        matrix: float32 `[len(words), dim]`; row i is the vector of `words[i]`.
        index: word -> row.
        rows_read: data rows read from the file (kept or not).
    """

    words: list[str]
    matrix: np.ndarray
    rows_read: int = 0
    index: dict[str, int] = field(init=False)

    def __post_init__(self):
        self.index = {w: i for i, w in enumerate(self.words)}

    @property
    def dim(self) -> int:
        """The vector dimension."""
        return int(self.matrix.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def get(self, word: str) -> np.ndarray | None:
        """The vector of `word`, or None when the file has none."""
        row = self.index.get(word)
        return None if row is None else self.matrix[row]


def open_maybe_gzip(path: Path) -> BinaryIO:
    """Opens `path` for binary reading, decompressing it if it starts with gzip's magic bytes."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == _GZIP_MAGIC:
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it


def _header(first: str) -> tuple[int, int] | None:
    """(count, dim) if `first` is a word2vec header line `N D`, else None."""
    parts = first.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return None


def _decoded(handle: BinaryIO, name: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its ending) for each non-blank line."""
    for number, raw in enumerate(handle, start=1):
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as err:
            raise DataError(
                f"{name}:{number}: not valid UTF-8 ({err.reason} at byte {err.start})"
            ) from None
        if line.strip():
            yield number, line


def _parse_row(line: str, dim: int, where: str) -> tuple[str, np.ndarray]:
    """Splits `word v1 ... vD` (the word may contain spaces) into the word and its vector."""
    parts = line.rstrip().split(" ")
    if len(parts) < dim + 1:
        raise DataError(
            f"{where}: expected a word and {dim} values, found {len(parts) - 1} values "
            f"(dimension mismatch or a malformed row)"
        )
    word = " ".join(parts[:-dim])
    try:
        vector = np.asarray(parts[-dim:], dtype=np.float32)
    except ValueError:
        bad = next(p for p in parts[-dim:] if not _is_float(p))
        raise DataError(
            f"{where}: value {bad[:30]!r} of word {word[:40]!r} is not a number"
        ) from None
    if not word.strip():
        raise DataError(f"{where}: a row without a word ({len(parts)} fields for dimension {dim})")
    if not np.isfinite(vector).all():
        raise DataError(f"{where}: word {word[:40]!r} has a value that is not finite")
    return word, vector


def _word_of(line: str, dim: int, where: str) -> str:
    """The word of a row; only the field count is checked (values are parsed for kept rows)."""
    stripped = line.rstrip()
    spaces = stripped.count(" ")
    if spaces < dim:
        raise DataError(
            f"{where}: expected a word and {dim} values, found {spaces} values "
            f"(dimension mismatch or a malformed row)"
        )
    if spaces == dim:
        return stripped[: stripped.find(" ")]
    word = stripped.rsplit(" ", dim)[0]
    if _is_float(word.rsplit(" ", 1)[-1]):
        raise DataError(f"{where}: expected {dim} values, found {spaces} (dimension mismatch)")
    return word


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class _Rows:
    """A growing float32 array of vectors: preallocated to a known size, doubled otherwise."""

    def __init__(self, capacity: int, dim: int):
        self.array = np.empty((max(capacity, 1), dim), np.float32)
        self.words: list[str] = []

    def add(self, word: str, vector: np.ndarray) -> None:
        row = len(self.words)
        if row == len(self.array):
            self.array = np.resize(self.array, (2 * len(self.array), self.array.shape[1]))
        self.array[row] = vector
        self.words.append(word)

    def result(self, rows_read: int) -> WordVectors:
        return WordVectors(self.words, self.array[: len(self.words)].copy(), rows_read)


def read_vectors(
    path: str | Path,
    format: VectorFormat = "auto",
    words: Iterable[str] | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> WordVectors:
    """Reads the vectors of a GloVe or word2vec/fastText text file (plain or gzip), streaming.

    Args:
        path: the vector file.
        format: "glove" (no header), "word2vec" (a `N D` header line) or "auto" (a first line
            of exactly two integers is a header).
        words: keep the vectors of these words (None: no word-set filter).
        limit: keep the first `limit` rows of the file (None: no row limit). With `words` as
            well, a row is kept if it passes either; with neither, every row is kept.
        progress: show a progress bar (on stderr).

    Returns:
        The kept words and vectors, in file order; the first occurrence of a word wins.

    Raises:
        DataError: missing or empty file, malformed row, dimension mismatch, invalid UTF-8
            (naming the file and the line).
    """
    path = Path(path)
    if format not in FORMATS:
        raise DataError(
            f"{path}: vector format must be one of {', '.join(FORMATS)}, got {format!r}"
        )
    if not path.is_file():
        raise DataError(f"vector file not found: {path}")
    if limit is not None and limit < 0:
        raise DataError(f"{path}: the row limit must be >= 0, got {limit}")
    wanted = None if words is None else set(words)
    with open_maybe_gzip(path) as handle:
        return _read_rows(_decoded(handle, str(path)), str(path), format, wanted, limit, progress)


def _read_rows(
    lines: Iterator[tuple[int, str]],
    name: str,
    format: VectorFormat,
    wanted: set[str] | None,
    limit: int | None,
    progress: bool,
) -> WordVectors:
    """The reading loop of `read_vectors` over decoded, numbered, non-blank lines."""
    from tqdm import tqdm

    first = next(lines, None)
    if first is None:
        raise DataError(f"{name}: the vector file is empty")
    header = _header(first[1]) if format != "glove" else None
    if format == "word2vec" and header is None:
        raise DataError(f"{name}:{first[0]}: expected a word2vec header 'count dim', got a row")
    if header is None:
        dim = len(first[1].rstrip().split(" ")) - 1
        if dim < 1:
            raise DataError(f"{name}:{first[0]}: a row needs a word and at least one value")
        rows: Iterable[tuple[int, str]] = _chain(first, lines)
    else:
        dim = header[1]
        rows = lines
    total = header[0] if header else None
    capacity = _capacity(wanted, limit, total)
    kept = _Rows(capacity if capacity is not None else 65_536, dim)
    seen: set[str] = set()
    missing = set(wanted) if wanted else set()
    read = duplicates = 0
    bar = tqdm(
        total=total,
        desc=f"vectors {Path(name).name}",
        unit=" rows",
        disable=not progress,
        mininterval=1,
        leave=False,
    )
    with bar:
        for number, line in rows:
            word = _word_of(line, dim, f"{name}:{number}")
            read += 1
            bar.update(1)
            if word in seen:
                duplicates += 1
                continue
            seen.add(word)
            keep_all = wanted is None and limit is None
            if keep_all or (limit is not None and read <= limit) or word in missing:
                kept.add(word, _parse_row(line, dim, f"{name}:{number}")[1])
                missing.discard(word)
            if limit is not None and read >= limit and not missing:
                break
    if read == 0:
        raise DataError(f"{name}: the vector file has a header but no vectors")
    if header and read < header[0] and (limit is None or read < limit) and wanted is None:
        log.warning("%s: the header announces %d vectors, the file has %d", name, header[0], read)
    if duplicates:
        log.warning(
            "%s: %d duplicated words ignored (the first vector of a word wins)", name, duplicates
        )
    return kept.result(read)


def _chain(first: tuple[int, str], rest: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    yield first
    yield from rest


def _capacity(wanted: set[str] | None, limit: int | None, total: int | None) -> int | None:
    """Rows to allocate up front: at most the words asked for plus the row limit."""
    bounds = [b for b in (total,) if b is not None]
    if wanted is not None or limit is not None:
        bounds.append((len(wanted) if wanted else 0) + (limit or 0))
    return min(bounds) if bounds else None
