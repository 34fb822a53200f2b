"""Unlabelled English text for LM pre-training, minus every line overlapping evaluation sentences.

Sources are `"<format>:<path>"` entries (paths relative to a data folder unless absolute,
`shared.data.sources.parse_format_entry`):

    sst2:<file>     SST-format `<label> <sentence>` lines (labels dropped)
    text:<file>     one text per line (`.gz` allowed)
    tatoeba:<zip>   a manythings.org/Tatoeba pair archive (`fra-eng.zip`, or its `<lang>.txt`):
                    the English column (`English<TAB>translation` per line)

`collect_texts` de-duplicates the texts (first occurrence wins, source order) and drops every
one that equals, contains or is part of an excluded sentence (`overlap.OverlapFilter`), so no
SST-2 dev/test text reaches pre-training.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from shared.data.sources import parse_format_entry
from shared.data.textfiles import read_pair_file_lines, read_text_lines
from suites.sentiment.data import DataFormatError, read_sst2
from suites.sentiment.overlap import OverlapFilter

SOURCE_FORMATS = ("sst2", "text", "tatoeba")


def read_lines(path: Path) -> list[str]:
    """Non-blank stripped lines of a UTF-8 text file (gzip-compressed if it ends in `.gz`)."""
    return [line.strip() for line in read_text_lines(path) if line.strip()]


def read_tatoeba_english(path: Path) -> list[str]:
    """English sentences (first tab column) of a Tatoeba/Anki pair file, plain or zipped."""
    name, lines = read_pair_file_lines(path, "Tatoeba file")
    texts = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        english, tab, _ = line.partition("\t")
        if not tab or not english.strip():
            raise DataFormatError(f"{name}:{number}: no 'English<TAB>...' pair")
        texts.append(english.strip())
    return texts


def read_source(fmt: str, path: Path) -> list[str]:
    """The texts of one source of format `fmt` (one of `SOURCE_FORMATS`)."""
    if fmt == "sst2":
        return list(read_sst2(path).texts)
    if fmt == "text":
        return read_lines(path)
    if fmt == "tatoeba":
        return read_tatoeba_english(path)
    raise ValueError(f"source format must be one of {SOURCE_FORMATS}, got {fmt!r}")


def parse_sources(entries: list[str], data_dir: str | Path | None) -> list[tuple[str, Path]]:
    """`"<format>:<path>"` entries -> (format, resolved path); errors name the bad entry."""
    return [parse_format_entry(e, SOURCE_FORMATS, data_dir, "--source") for e in entries]


def collect_texts(
    sources: list[tuple[str, Path]], exclude_sst2: list[Path]
) -> tuple[list[str], dict[str, int]]:
    """Unlabelled texts (deduplicated, source order) minus lines overlapping an excluded sentence.

    Returns the texts and per-source counts of kept lines, plus
    `dropped_for_containing_excluded_sentences`.
    """
    excluded = OverlapFilter(t for path in exclude_sst2 for t in read_sst2(path).texts)
    texts: dict[str, None] = {}
    stats: dict[str, int] = {}
    dropped = 0
    for fmt, path in sources:
        kept = 0
        for line in tqdm(read_source(fmt, path), desc=f"{fmt}:{path.name}", mininterval=5):
            if line in texts:
                continue
            if excluded.overlaps(line):
                dropped += 1
                continue
            texts[line] = None
            kept += 1
        stats[f"{fmt}:{path}"] = kept
    stats["dropped_for_containing_excluded_sentences"] = dropped
    return list(texts), stats
