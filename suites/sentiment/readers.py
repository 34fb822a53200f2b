"""Readers of labelled text: SST-2 lines, rt-polarity pairs, CSV/TSV, TFDS, a generated set.

Every reader returns a `LabeledTexts` (parallel lists of texts and integer labels plus the label
names, index = class id). Rules shared by the file readers:

- Files are decoded as strict UTF-8, one line at a time. A line that is not valid UTF-8 is an error
  naming file, line and byte column, unless `encoding_fallback` is given (e.g. "cp1252" for the
  original Cornell rt-polarity release): such a line is then decoded with the fallback and the
  number of lines so decoded is logged.
- A trailing "\\r" (CRLF files) and surrounding whitespace are stripped from each text.
- Blank lines are skipped and their number is logged; a file with no examples is an error.
- Bad input raises `DataError` naming the file and the 1-based line (and the config key).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from shared.errors import DataError
from shared.log import get_logger

log = get_logger(__name__)

BINARY_LABELS = ("negative", "positive")


@dataclasses.dataclass(frozen=True)
class LabeledTexts:
    """Parallel texts and integer labels.

    Attributes:
        texts: the raw texts.
        labels: class ids, `0 <= label < len(label_names)`.
        label_names: class names; index = class id.
    """

    texts: list[str]
    labels: list[int]
    label_names: tuple[str, ...]

    def __post_init__(self):
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int]) -> LabeledTexts:
        """The examples at `indices`, in that order."""
        return LabeledTexts(
            [self.texts[i] for i in indices], [self.labels[i] for i in indices], self.label_names
        )

    def class_counts(self) -> list[int]:
        """Number of examples per class id."""
        return np.bincount(self.labels, minlength=len(self.label_names)).tolist()


def _decode_lines(path: Path, encoding_fallback: str | None) -> Iterator[tuple[int, str]]:
    """Yields (1-based line number, stripped text) of the non-blank lines of `path`."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path}: file is empty")
    blank = fallback = 0
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as err:
            if encoding_fallback is None:
                raise DataError(
                    f"{path}:{number}: invalid UTF-8 at byte {err.start + 1} of the line "
                    f"({line[err.start : err.start + 4]!r}); set data.encoding_fallback "
                    f"(e.g. 'cp1252') to decode such lines with another encoding"
                ) from None
            text = line.decode(encoding_fallback, errors="strict")
            fallback += 1
        text = text.strip()
        if not text:
            # The final split after a trailing newline is not a line of the file.
            if number <= raw.count(b"\n"):
                blank += 1
            continue
        yield number, text
    if blank:
        log.warning("%s: skipped %d blank line(s)", path, blank)
    if fallback:
        log.warning("%s: decoded %d line(s) as %s (not UTF-8)", path, fallback, encoding_fallback)


def _nonempty(data: LabeledTexts, path: Path) -> LabeledTexts:
    if not data.texts:
        raise DataError(f"{path}: no examples")
    return data


def read_sst2(
    path: str | Path,
    label_names: Sequence[str] = BINARY_LABELS,
    encoding_fallback: str | None = None,
) -> LabeledTexts:
    """Reads SST-style lines `<label> <sentence>` (label = class id, split on the first space).

    Args:
        path: the file, e.g. `stsa.binary.train`.
        label_names: class names; the integer labels must index into it.
        encoding_fallback: see the module docstring.

    Raises:
        DataError: empty file, a line without label or sentence, a label that is not a
            class id, undecodable bytes.
    """
    path = Path(path)
    texts, labels = [], []
    for number, line in _decode_lines(path, encoding_fallback):
        head, _, sentence = line.partition(" ")
        if not head.lstrip("-").isdigit():
            raise DataError(
                f"{path}:{number}: expected '<label> <sentence>' with an integer label, "
                f"got {line[:60]!r}"
            )
        label = int(head)
        if not 0 <= label < len(label_names):
            raise DataError(
                f"{path}:{number}: unknown label {label} (expected 0..{len(label_names) - 1} "
                f"for {list(label_names)})"
            )
        sentence = sentence.strip()
        if not sentence:
            raise DataError(f"{path}:{number}: label {label} has no sentence")
        texts.append(sentence)
        labels.append(label)
    return _nonempty(LabeledTexts(texts, labels, tuple(label_names)), path)


def read_polarity_pair(
    positive_path: str | Path,
    negative_path: str | Path,
    encoding_fallback: str | None = None,
) -> LabeledTexts:
    """Reads rt-polarity style files: one text per line, the label given by the file.

    Returns negatives first (label 0 "negative"), then positives (label 1 "positive"), each in
    file order; use `split_seeded` to shuffle into splits.
    """
    texts, labels = [], []
    for label, path in ((0, Path(negative_path)), (1, Path(positive_path))):
        before = len(texts)
        for _, line in _decode_lines(path, encoding_fallback):
            texts.append(line)
            labels.append(label)
        if len(texts) == before:
            raise DataError(f"{path}: no examples")
    return LabeledTexts(texts, labels, BINARY_LABELS)


def split_seeded(
    data: LabeledTexts, fractions: dict[str, float], seed: int
) -> dict[str, LabeledTexts]:
    """Splits `data` into a stratified, seeded, disjoint "train" split and the named others.

    Args:
        data: the examples.
        fractions: split name -> fraction of each class, e.g. {"validation": 0.1, "test": 0.1};
            "train" gets the rest.
        seed: permutation seed; the same seed and data give the same splits.

    Returns:
        {"train": ..., **{name: ...}} with examples in shuffled order.
    """
    if any(f < 0 for f in fractions.values()) or sum(fractions.values()) >= 1:
        raise ValueError(f"split fractions must be >= 0 and sum to < 1, got {fractions}")
    rng = np.random.default_rng(seed)
    labels = np.asarray(data.labels)
    parts: dict[str, list[int]] = {name: [] for name in ["train", *fractions]}
    for label in range(len(data.label_names)):
        members = rng.permutation(np.flatnonzero(labels == label))
        start = 0
        for name, fraction in fractions.items():
            count = int(round(fraction * len(members)))
            parts[name].extend(members[start : start + count].tolist())
            start += count
        parts["train"].extend(members[start:].tolist())
    return {name: data.subset(rng.permutation(ids).tolist()) for name, ids in parts.items()}


def fold_numbers(labels: Sequence[int], folds: int, seed: int) -> np.ndarray:
    """The cross-validation fold of each example: stratified, seeded, sizes within one.

    Each class is shuffled with `seed` and dealt to the folds in turn, continuing where the
    previous class stopped, so every fold holds floor or ceil of each class's count / `folds`.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    fold = np.empty(len(labels), dtype=np.int64)
    dealt = 0
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        fold[members] = (dealt + np.arange(len(members))) % folds
        dealt += len(members)
    return fold


def split_folds(
    data: LabeledTexts, folds: int, fold: int, validation_fraction: float, seed: int
) -> dict[str, LabeledTexts]:
    """Fold `fold` of `folds` as "test"; the other folds give "train" and "validation".

    Args:
        data: the examples.
        folds: number of folds (`fold_numbers` with `seed`).
        fold: the test fold, `0 <= fold < folds`.
        validation_fraction: share of each class of the other folds held out for validation.
        seed: seed of the folds and of the validation split.

    Returns:
        {"train", "validation" (if validation_fraction > 0), "test"}, disjoint; over the folds,
        the test splits cover every example exactly once.
    """
    if not 0 <= fold < folds:
        raise ValueError(f"fold must be in [0, {folds}), got {fold}")
    numbers = fold_numbers(data.labels, folds, seed)
    rng = np.random.default_rng(seed)
    test = rng.permutation(np.flatnonzero(numbers == fold)).tolist()
    rest = data.subset(np.flatnonzero(numbers != fold).tolist())
    fractions = {"validation": validation_fraction} if validation_fraction > 0 else {}
    return {**split_seeded(rest, fractions, seed), "test": data.subset(test)}


def read_delimited(
    path: str | Path,
    text_column: str = "text",
    label_column: str = "label",
    label_names: Sequence[str] | None = None,
    delimiter: str | None = None,
) -> LabeledTexts:
    """Reads a CSV/TSV file with a header row holding `text_column` and `label_column`.

    A label cell is matched against `label_names` first; failing that, an integer cell in range is
    taken as a class id. With `label_names=None` the names are the sorted distinct label cells of
    this file (pass the training file's names when reading other splits).

    Args:
        path: the file; quoting follows the `csv` module (RFC 4180).
        text_column: header of the text column.
        label_column: header of the label column.
        label_names: class names, or None to infer them.
        delimiter: field separator; None = tab for `.tsv`/`.tab` files, else comma.
    """
    path = Path(path)
    if delimiter is None:
        delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    # Decode line by line first so an undecodable byte is reported with its line number.
    for _ in _decode_lines(path, None):
        pass
    content = path.read_bytes().decode("utf-8-sig")  # tolerate a byte-order mark (Excel)
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
    header = next(reader)
    for column in (text_column, label_column):
        if column not in header:
            raise DataError(
                f"{path}:{reader.line_num}: header {header} has no column {column!r} "
                f"(set data.text_column / data.label_column)"
            )
    text_at, label_at = header.index(text_column), header.index(label_column)
    rows = []
    for row in reader:
        number = reader.line_num  # last physical line of the (possibly multi-line) record
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise DataError(
                f"{path}:{number}: expected {len(header)} fields {header}, got {len(row)}"
            )
        text, label = row[text_at].strip(), row[label_at].strip()
        if not label:
            raise DataError(f"{path}:{number}: empty {label_column!r}")
        rows.append((number, text, label))
    names = tuple(label_names) if label_names is not None else tuple(sorted({r[2] for r in rows}))
    index = {name: i for i, name in enumerate(names)}
    texts, labels = [], []
    for number, text, label in rows:
        if label in index:
            labels.append(index[label])
        elif label.lstrip("-").isdigit() and 0 <= int(label) < len(names):
            labels.append(int(label))
        else:
            raise DataError(f"{path}:{number}: unknown label {label!r} (known: {list(names)})")
        texts.append(text)
    return _nonempty(LabeledTexts(texts, labels, names), path)


def load_tfds(
    name: str,
    split: str,
    data_dir: str | None = None,
    text_key: str | None = None,
    label_names: Sequence[str] | None = None,
) -> LabeledTexts:
    """Loads a prepared TFDS dataset (no download) as `LabeledTexts`.

    Args:
        name: TFDS name, e.g. "imdb_reviews" or "glue/sst2".
        split: TFDS split, e.g. "train", "validation", "test[:10%]".
        data_dir: TFDS data directory (None = TFDS default, ~/tensorflow_datasets).
        text_key: feature holding the text; None = "text" or "sentence", whichever exists.
        label_names: class names; None = the names of the dataset's "label" ClassLabel feature.

    Raises:
        DataError: a label outside the classes (e.g. -1 in the unlabelled GLUE test split).
    """
    import tensorflow_datasets as tfds

    try:
        dataset, info = tfds.load(
            name, split=split, data_dir=data_dir, download=False, with_info=True
        )
    except (AssertionError, ValueError) as err:  # not prepared / unknown name or split
        first = str(err).strip().splitlines()[0]
        raise DataError(
            f"data.tfds_name: tfds {name}[{split}] in data_dir={data_dir!r}: {first} "
            "(prepare it once with network access; see configs/sentiment/imdb.yaml)"
        ) from None
    features = info.features
    if text_key is None:
        text_key = next((k for k in ("text", "sentence") if k in features), None)
        if text_key is None:
            raise DataError(f"tfds {name}: no 'text'/'sentence' feature in {list(features)}")
    if label_names is None:
        label_names = features["label"].names
    texts, labels = [], []
    for position, example in enumerate(tfds.as_numpy(dataset)):
        label = int(example["label"])
        if not 0 <= label < len(label_names):
            raise DataError(
                f"tfds {name}[{split}] example {position}: label {label} outside "
                f"{list(label_names)} (unlabelled split?)"
            )
        texts.append(example[text_key].decode("utf-8"))
        labels.append(label)
    if not texts:
        raise DataError(f"tfds {name}[{split}]: no examples")
    return LabeledTexts(texts, labels, tuple(label_names))


_POSITIVE_WORDS = ("good", "great", "fine", "lovely", "superb", "charming", "clever", "moving")
_NEGATIVE_WORDS = ("bad", "awful", "dull", "boring", "clumsy", "tedious", "bland", "weak")
_SUBJECTS = ("the film", "this movie", "the plot", "the acting", "the story", "the script")


def make_negation_examples(count: int, seed: int) -> LabeledTexts:
    """A generated set that only word order can solve (for tests and the tiny config).

    Each text holds one positive and one negative adjective and exactly one "not", e.g.
    "the plot was not dull but clumsy"; the label is positive iff "not" precedes the negative
    adjective. Both labels share the same bag of words, so a bag-of-words model scores 50%.
    """
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(count):
        good = _POSITIVE_WORDS[rng.integers(len(_POSITIVE_WORDS))]
        bad = _NEGATIVE_WORDS[rng.integers(len(_NEGATIVE_WORDS))]
        first, second = (good, bad) if rng.random() < 0.5 else (bad, good)
        negate_first = bool(rng.random() < 0.5)
        negated = first if negate_first else second
        a = f"not {first}" if negate_first else first
        b = second if negate_first else f"not {second}"
        subject = _SUBJECTS[rng.integers(len(_SUBJECTS))]
        texts.append(f"{subject} was {a} and {b}")
        labels.append(int(negated == bad))
    return LabeledTexts(texts, labels, BINARY_LABELS)
