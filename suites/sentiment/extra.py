"""Extra labelled training data (`data.extra_train`), filtered against the evaluation sentences.

Each entry of `data.extra_train` is `"<format>:<path>"` (a relative path is taken under
`data.data_dir`, so `rt_polarity:../rt-polarity` next to `--data-dir .../sst2` works):

    rt_polarity:<folder>   `rt-polarity.pos` and `rt-polarity.neg` in that folder
    sst2:<file>            `<label> <sentence>` lines
    csv:<file>             CSV/TSV with `data.text_column` / `data.label_column` / `data.delimiter`

The extra examples must use the training data's label names. Unless `data.extra_overlap_filter`
is false, every extra text that equals, contains or is contained in a validation or test
sentence is dropped first (`overlap.OverlapFilter`, short sentences matched exactly), so the
validation figure stays honest when the extra data and the evaluation data share a source (SST-2
dev sentences are rt-polarity snippets). The extra examples are appended
to the training split; the counts read/dropped/kept per entry are returned (the task logs them and
writes them to `artifacts/extra_train.json`).
"""

from __future__ import annotations

from pathlib import Path

from shared.data.sources import parse_format_entry
from shared.errors import DataError
from shared.log import get_logger
from suites.sentiment import readers
from suites.sentiment.config import EXTRA_FORMATS as FORMATS
from suites.sentiment.overlap import OverlapFilter

log = get_logger(__name__)


def parse_entry(entry: str, data_dir: str | None) -> tuple[str, Path]:
    """`"<format>:<path>"` -> (format, path resolved under `data_dir` if relative)."""
    return parse_format_entry(entry, FORMATS, data_dir, "data.extra_train")


def read_entry(
    fmt: str,
    path: Path,
    label_names: tuple[str, ...],
    text_column: str = "text",
    label_column: str = "label",
    delimiter: str | None = None,
    encoding_fallback: str | None = None,
) -> readers.LabeledTexts:
    """Reads one extra source; its label names must equal `label_names`."""
    if fmt == "rt_polarity":
        if not path.is_dir():
            raise DataError(f"data.extra_train: {path} is not a folder (rt_polarity)")
        data = readers.read_polarity_pair(
            path / "rt-polarity.pos", path / "rt-polarity.neg", encoding_fallback
        )
    elif not path.is_file():
        raise DataError(f"data.extra_train: {path} not found ({fmt} file)")
    elif fmt == "sst2":
        data = readers.read_sst2(path, label_names, encoding_fallback)
    elif fmt == "csv":
        data = readers.read_delimited(path, text_column, label_column, label_names, delimiter)
    else:
        raise ValueError(f"data.extra_train: unknown format {fmt!r} (known: {FORMATS})")
    if tuple(data.label_names) != tuple(label_names):
        raise DataError(
            f"data.extra_train: {path} has labels {list(data.label_names)}, the training data "
            f"{list(label_names)}"
        )
    return data


def add_extra_train(
    splits: dict[str, readers.LabeledTexts],
    entries: list[str],
    data_dir: str | None = None,
    overlap_filter: bool = True,
    min_words: int = 3,
    **read_options,
) -> tuple[dict[str, readers.LabeledTexts], list[dict]]:
    """Returns `splits` with the filtered extra examples appended to "train", and per-entry counts.

    Args:
        splits: {"train", "validation"?, "test"?}.
        entries: `data.extra_train`.
        data_dir: base folder of relative paths.
        overlap_filter: drop extra texts overlapping a validation/test sentence.
        min_words: see `OverlapFilter`.
        **read_options: `text_column`, `label_column`, `delimiter`, `encoding_fallback`.
    """
    if not entries:
        return splits, []
    train = splits["train"]
    protected = [t for name in ("validation", "test") if name in splits for t in splits[name].texts]
    check = OverlapFilter(protected, min_words) if overlap_filter else None
    texts, labels = list(train.texts), list(train.labels)
    stats = []
    for entry in entries:
        fmt, path = parse_entry(entry, data_dir)
        extra = read_entry(fmt, path, train.label_names, **read_options)
        kept = check.keep(extra.texts) if check else list(range(len(extra)))
        texts.extend(extra.texts[i] for i in kept)
        labels.extend(extra.labels[i] for i in kept)
        stats.append(
            {
                "entry": entry,
                "read": len(extra),
                "dropped_overlapping_evaluation": len(extra) - len(kept),
                "kept": len(kept),
                "protected_sentences": len(protected) if check else 0,
            }
        )
        log.warning(
            "data.extra_train %s: %d read, %d dropped (overlap with %d validation/test "
            "sentences), %d added",
            entry,
            len(extra),
            len(extra) - len(kept),
            len(protected) if check else 0,
            len(kept),
        )
    return {**splits, "train": readers.LabeledTexts(texts, labels, train.label_names)}, stats
