"""Readers for parallel text: Multi30k files, Tatoeba/Anki TSV, generic line-aligned files, TFDS.

Every reader returns a list of `(source, target)` string pairs in the direction asked for; none of
them filters anything (see `clean_pairs`). Bad input raises `ValueError` naming the file (and line):
line-count mismatches name both files and both counts, invalid UTF-8 names the file and line.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from shared.data.textfiles import read_pair_file_lines, read_text_lines

Pair = tuple[str, str]

# Split names accepted for Multi30k, mapped to the file prefix of the raw release.
MULTI30K_SPLITS = {
    "train": "train",
    "val": "val",
    "validation": "val",
    "test": "test_2016_flickr",
    "test2016": "test_2016_flickr",
    "test_2016_flickr": "test_2016_flickr",
    "test_2017_flickr": "test_2017_flickr",
    "test_2017_mscoco": "test_2017_mscoco",
    "test_2018_flickr": "test_2018_flickr",
}


def read_lines(path: str | Path) -> list[str]:
    """Reads a UTF-8 text file (gzip-compressed if it ends in `.gz`) into lines without newlines.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if a line is not valid UTF-8 (the message names the file and line).
    """
    return read_text_lines(path, "parallel text file")


def read_parallel_files(source_path: str | Path, target_path: str | Path) -> list[Pair]:
    """Reads two line-aligned files (line N of one translates line N of the other).

    Raises:
        ValueError: if the files have different numbers of lines (naming both files and counts).
    """
    source, target = read_lines(source_path), read_lines(target_path)
    if len(source) != len(target):
        raise ValueError(
            f"parallel files are not line-aligned: {source_path} has {len(source)} lines but "
            f"{target_path} has {len(target)}"
        )
    return list(zip(source, target, strict=True))


def multi30k_files(data_dir: str | Path, split: str, source: str, target: str) -> tuple[Path, Path]:
    """The `<split>.<lang>.gz` (or uncompressed `<split>.<lang>`) files of a Multi30k split.

    `data_dir` may be the folder holding the files or its parent with a `raw/` subfolder.
    """
    if split not in MULTI30K_SPLITS:
        raise ValueError(f"unknown Multi30k split {split!r}; known: {sorted(MULTI30K_SPLITS)}")
    root = Path(data_dir)
    if (root / "raw").is_dir():
        root = root / "raw"
    prefix = MULTI30K_SPLITS[split]
    paths = []
    for lang in (source, target):
        gz, plain = root / f"{prefix}.{lang}.gz", root / f"{prefix}.{lang}"
        paths.append(plain if plain.is_file() and not gz.is_file() else gz)
    return paths[0], paths[1]


def read_multi30k(data_dir: str | Path, split: str, source: str, target: str) -> list[Pair]:
    """Reads a Multi30k split (e.g. "train", "val", "test2016") in the direction source->target."""
    return read_parallel_files(*multi30k_files(data_dir, split, source, target))


def read_tatoeba_pairs(
    path: str | Path, source: str, target: str, english: str = "en"
) -> list[Pair]:
    """Reads a Tatoeba/Anki TSV (`English<TAB>Other[<TAB>attribution]`), plain or inside a zip.

    Args:
        path: a `.txt`/`.tsv` file, or a manythings.org `.zip` holding one (`_about.txt` ignored).
        source, target: language codes; one of them must be `english` (the first column).
        english: the code that names the first column.

    Raises:
        ValueError: on a line without a tab, invalid UTF-8, or a direction without English.
    """
    if english not in (source, target):
        raise ValueError(
            f"Tatoeba pairs need {english!r} as source or target, got {source}->{target}"
        )
    name, lines = read_pair_file_lines(path, "Tatoeba file")
    pairs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            pairs.append(("", ""))  # kept so that clean_pairs counts it as empty
            continue
        columns = line.split("\t")
        if len(columns) < 2:
            raise ValueError(f"{name}:{number}: expected 'English<TAB>translation', got {line!r}")
        eng, other = columns[0], columns[1]
        pairs.append((eng, other) if source == english else (other, eng))
    return pairs


def split_pairs(pairs: list[Pair], fractions: list[float], seed: int) -> dict[str, list[Pair]]:
    """Shuffles `pairs` with `seed` and cuts them into train/validation/test by `fractions`.

    Args:
        fractions: three non-negative numbers summing to 1 (train, validation, test).
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(
            f"split fractions must be 3 non-negative numbers summing to 1: {fractions}"
        )
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    n_train = round(fractions[0] * len(pairs))
    n_val = round(fractions[1] * len(pairs))
    cuts = {
        "train": order[:n_train],
        "validation": order[n_train : n_train + n_val],
        "test": order[n_train + n_val :],
    }
    return {name: [pairs[i] for i in idx] for name, idx in cuts.items()}


def read_tfds_pairs(
    name: str, split: str, source: str, target: str, data_dir: str | None = None
) -> list[Pair]:
    """Reads a TFDS translation dataset (e.g. `ted_hrlr_translate/pt_to_en`) without downloading.

    The examples must be dicts with one string feature per language code.
    """
    import tensorflow_datasets as tfds

    dataset = tfds.load(name, split=split, data_dir=data_dir, download=False)
    keys = set(dataset.element_spec)
    if not {source, target} <= keys:
        raise ValueError(
            f"TFDS {name!r} has features {sorted(keys)}, not {source!r} and {target!r}"
        )
    return [
        (ex[source].decode("utf-8"), ex[target].decode("utf-8")) for ex in tfds.as_numpy(dataset)
    ]


@dataclass
class CleanReport:
    """What `clean_pairs` removed, for logging."""

    name: str
    total: int = 0
    empty: int = 0
    too_long: int = 0
    examples: list[int] = field(default_factory=list)  # indices of the first removed pairs
    kept_indices: list[int] = field(default_factory=list, repr=False)  # indices of kept pairs

    @property
    def kept(self) -> int:
        return self.total - self.empty - self.too_long

    def __str__(self) -> str:
        return (
            f"{self.name}: kept {self.kept} of {self.total} pairs "
            f"(removed {self.empty} with an empty side, {self.too_long} over the length limit)"
        )


def clean_pairs(
    pairs: list[Pair],
    max_length: int | None,
    length: Callable[[str], int] = lambda s: len(s.split()),
    name: str = "pairs",
    target_length: Callable[[str], int] | None = None,
) -> tuple[list[Pair], CleanReport]:
    """Drops pairs with an empty side or a side longer than `max_length` (measured by `length`).

    Args:
        pairs: `(source, target)` strings; surrounding whitespace is stripped.
        max_length: the limit per side, in units of `length` (None: no limit).
        length: measures a (stripped) source sentence, e.g. words (default) or subwords.
        name: what to call the pairs in the report.
        target_length: measures a target sentence (default: `length`).

    Returns:
        The kept (stripped) pairs and a `CleanReport`.
    """
    report = CleanReport(name=name, total=len(pairs))
    target_length = target_length or length
    kept = []
    for index, (src, tgt) in enumerate(pairs):
        src, tgt = src.strip(), tgt.strip()
        if not src or not tgt:
            report.empty += 1
        elif max_length is not None and max(length(src), target_length(tgt)) > max_length:
            report.too_long += 1
        else:
            kept.append((src, tgt))
            report.kept_indices.append(index)
            continue
        if len(report.examples) < 5:
            report.examples.append(index)
    return kept, report
