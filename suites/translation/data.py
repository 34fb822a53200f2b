"""Parallel text for the translation task: readers, the configured corpus, and tf.data batches.

Readers return `(source, target)` string pairs in the direction asked for and filter nothing:
Multi30k files, Tatoeba/Anki TSV (zip or plain), generic line-aligned files, TFDS, and two
generated corpora (`generate_pairs`: a toy language for tests; `numbers.py`: the demo's numbers,
dates and amounts). `Corpus` reads the pairs of a config's split; `clean_pairs` drops empty and
over-long pairs (and counts them); `make_dataset` turns subword ids into length-bucketed
teacher-forcing batches `({"source", "target_in"}, target_out)`: source + eos, bos + target,
target + eos.

Bad input raises `DataError` naming the file (and line): line-count mismatches name both files
and both counts, invalid UTF-8 names the file and line, a missing folder names `data.data_dir`.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from shared.data import pipeline
from shared.data.textfiles import read_pair_file_lines, read_text_lines
from shared.data.tokenizer import BOS_ID, EOS_ID
from shared.errors import ConfigError, DataError
from shared.log import get_logger
from suites.translation.config import RANDOM_SPLIT_FORMATS, DataConfig
from suites.translation.numbers import generate_number_pairs

log = get_logger(__name__)
Pair = tuple[str, str]
SPLITS = ("train", "validation", "test")

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


# -- the configured corpus ---------------------------------------------------------------------
class Corpus:
    """The raw pairs of the splits of one `DataConfig` (random splits are drawn once, cached).

    Args:
        config: the `data` section.
    """

    def __init__(self, config: DataConfig):
        self.config = config
        self._random_splits: dict[str, list[Pair]] | None = None

    def split_name(self, split: str) -> str:
        """The source's own name of `split` ("train", "validation", "test")."""
        d = self.config
        names = {"train": d.train_split, "validation": d.validation_split, "test": d.test_split}
        return names.get(split, split)

    def pairs(self, split: str) -> list[Pair]:
        """The uncleaned (source, target) pairs of `split` ("train", "validation", "test").

        The training split is the mixture: the source's own training pairs `data.upsample`
        times, then each `data.mixture` source's training pairs its `upsample` times.
        """
        d = self.config
        if split != "train" or (not d.mixture and d.upsample == 1):
            return self._source_pairs(split)
        pairs = resample(self._source_pairs("train"), d.upsample, d.split_seed)
        for index, extra in enumerate(d.mixture, start=1):
            other = dataclasses.replace(
                d,
                format=extra.format,
                data_dir=self._beside_main(extra.data_dir),
                tatoeba_file=extra.tatoeba_file,
                file_pattern=extra.file_pattern,
                train_split=extra.train_split,
                upsample=1.0,
                mixture=[],
            )
            extra_pairs = Corpus(other).pairs("train")
            pairs += resample(extra_pairs, extra.upsample, d.split_seed + index)
            log.info("data.mixture[%d]: %d training pairs", index - 1, len(extra_pairs))
        return pairs

    def _beside_main(self, folder: str | None) -> str | None:
        """A relative mixture folder is taken beside the main `data.data_dir`."""
        if folder is None or Path(folder).is_absolute() or self.config.data_dir is None:
            return folder
        return str(Path(self.config.data_dir).parent / folder)

    def _source_pairs(self, split: str) -> list[Pair]:
        d = self.config
        if d.format in RANDOM_SPLIT_FORMATS:
            if split not in SPLITS:
                raise ConfigError(f"data.format {d.format} has splits {SPLITS}, not {split!r}")
            return self._split_randomly()[split]
        if d.format == "tfds":
            if not d.tfds_name:
                raise ConfigError("data.tfds_name must name a TFDS dataset for data.format=tfds")
            return read_tfds_pairs(
                d.tfds_name, self.split_name(split), d.source, d.target, d.data_dir
            )
        root, name = self.data_dir(), self.split_name(split)
        if d.format == "multi30k":
            return read_multi30k(root, name, d.source, d.target)
        return read_parallel_files(
            root / d.file_pattern.format(split=name, lang=d.source),
            root / d.file_pattern.format(split=name, lang=d.target),
        )

    def data_dir(self) -> Path:
        """`data.data_dir` as a folder that exists.

        Raises:
            DataError: it is not set or not a folder.
        """
        d = self.config
        if d.data_dir is None:
            raise DataError(f"data.data_dir is required for data.format={d.format} (--data-dir)")
        path = Path(d.data_dir)
        if not path.is_dir():
            raise DataError(f"data.data_dir: {path} is not a directory")
        return path

    def _split_randomly(self) -> dict[str, list[Pair]]:
        if self._random_splits is None:
            d = self.config
            if d.format == "generated":
                pairs = generate_pairs(
                    d.generated_pairs,
                    d.generated_words,
                    d.generated_min_words,
                    d.generated_max_words,
                    d.split_seed,
                )
            elif d.format == "numbers":
                pairs = generate_number_pairs(d.generated_pairs, d.source, d.target, d.split_seed)
            else:
                pairs = read_tatoeba_pairs(self.data_dir() / d.tatoeba_file, d.source, d.target)
            self._random_splits = split_pairs(pairs, d.split_fractions, d.split_seed)
        return self._random_splits


def resample(pairs: list[Pair], factor: float, seed: int) -> list[Pair]:
    """`pairs` repeated `int(factor)` times plus a seeded sample of the fractional part.

    E.g. 2.0: every pair twice; 0.5: a random half (drawn with `seed`); 1.5: all, then a half.
    """
    whole = int(factor)
    extra = round((factor - whole) * len(pairs))
    return pairs * whole + random.Random(seed).sample(pairs, extra)


# -- subword ids -> batches --------------------------------------------------------------------
def _ragged(rows: list[list[int]]) -> tf.RaggedTensor:
    flat = np.fromiter((i for row in rows for i in row), np.int32)
    return tf.RaggedTensor.from_row_lengths(flat, [len(r) for r in rows])


def _to_example(source: tf.Tensor, target: tf.Tensor):
    eos, bos = tf.constant([EOS_ID], tf.int32), tf.constant([BOS_ID], tf.int32)
    inputs = {"source": tf.concat([source, eos], 0), "target_in": tf.concat([bos, target], 0)}
    return inputs, tf.concat([target, eos], 0)


def _length(inputs, target_out):
    return tf.maximum(tf.shape(inputs["source"])[0], tf.shape(target_out)[0])


def make_dataset(
    source_ids: list[list[int]],
    target_ids: list[list[int]],
    batch_size: int,
    num_buckets: int,
    seed: int | None = None,
    shuffle_buffer: int = 1,
) -> tf.data.Dataset:
    """Teacher-forcing batches from subword ids (no bos/eos), bucketed by length.

    Args:
        source_ids, target_ids: one id list per pair.
        batch_size: pairs per batch.
        num_buckets: length buckets.
        seed: shuffle (every epoch anew) with this seed; None: keep the order.
        shuffle_buffer: shuffle buffer size (with `seed`).
    """
    ds = tf.data.Dataset.from_tensor_slices((_ragged(source_ids), _ragged(target_ids)))
    ds = ds.map(_to_example, num_parallel_calls=tf.data.AUTOTUNE)
    if seed is None:
        ds = pipeline.bucket_by_length(ds, _length, batch_size, num_buckets=num_buckets)
    else:
        ds = pipeline.shuffle_and_bucket(
            ds, _length, batch_size, seed, shuffle_buffer, num_buckets=num_buckets
        )
    return pipeline.prefetch(ds)


# -- the generated toy language ----------------------------------------------------------------
_SYLLABLES = ["ka", "lo", "mi", "nu", "pe", "ra", "si", "tu", "ve", "wo", "ba", "di", "fo", "gu"]


def toy_lexicon(size: int) -> dict[str, str]:
    """A fixed source->target word map: source words are syllable pairs, targets their mirror."""
    words = [a + b for a in _SYLLABLES for b in _SYLLABLES if a != b][:size]
    return {w: w[::-1].capitalize() for w in words}


def generate_pairs(num: int, size: int, min_words: int, max_words: int, seed: int) -> list[Pair]:
    """Toy parallel corpus: target = source words transliterated, in reverse order."""
    lexicon = toy_lexicon(size)
    words = sorted(lexicon)
    rng = random.Random(seed)
    pairs = []
    for _ in range(num):
        sentence = [rng.choice(words) for _ in range(rng.randint(min_words, max_words))]
        pairs.append((" ".join(sentence), " ".join(lexicon[w] for w in reversed(sentence))))
    return pairs


# -- readers -----------------------------------------------------------------------------------
def read_lines(path: str | Path) -> list[str]:
    """Reads a UTF-8 text file (gzip-compressed if it ends in `.gz`) into lines without newlines.

    Raises:
        DataError: `path` does not exist, or a line is not valid UTF-8 (naming file and line).
    """
    try:
        return read_text_lines(path, "parallel text file")
    except FileNotFoundError as err:
        raise DataError(str(err)) from None
    except ValueError as err:
        raise DataError(str(err)) from None


def read_parallel_files(source_path: str | Path, target_path: str | Path) -> list[Pair]:
    """Reads two line-aligned files (line N of one translates line N of the other).

    Raises:
        DataError: the files have different numbers of lines (naming both files and counts).
    """
    source, target = read_lines(source_path), read_lines(target_path)
    if len(source) != len(target):
        raise DataError(
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
        DataError: a missing file, a line without a tab or invalid UTF-8 (naming file and line).
        ValueError: a direction without English.
    """
    if english not in (source, target):
        raise ValueError(
            f"Tatoeba pairs need {english!r} as source or target, got {source}->{target}"
        )
    try:
        name, lines = read_pair_file_lines(path, "Tatoeba file")
    except (FileNotFoundError, ValueError) as err:
        raise DataError(str(err)) from None
    pairs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            pairs.append(("", ""))  # kept so that clean_pairs counts it as empty
            continue
        columns = line.split("\t")
        if len(columns) < 2:
            raise DataError(f"{name}:{number}: expected 'English<TAB>translation', got {line!r}")
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


def encode_pairs(
    pairs: list[Pair], source_sp, target_sp, max_length: int, name: str
) -> tuple[list[list[int]], list[list[int]], CleanReport]:
    """Subword ids (no bos/eos) of the pairs `clean_pairs` keeps, measured in subwords.

    Args:
        pairs: raw (source, target) pairs.
        source_sp, target_sp: `sentencepiece.SentencePieceProcessor`s of the two sides.
        max_length: the limit per side, in subwords.
        name: what to call the pairs in the report.

    Returns:
        (source ids, target ids, the `CleanReport`).
    """
    stripped = [(s.strip(), t.strip()) for s, t in pairs]
    src_ids = source_sp.encode([s for s, _ in stripped])
    tgt_ids = target_sp.encode([t for _, t in stripped])
    src_len = {s: len(ids) for (s, _), ids in zip(stripped, src_ids, strict=True)}
    tgt_len = {t: len(ids) for (_, t), ids in zip(stripped, tgt_ids, strict=True)}
    _, report = clean_pairs(
        stripped,
        max_length,
        length=src_len.__getitem__,
        target_length=tgt_len.__getitem__,
        name=name,
    )
    chosen = report.kept_indices
    return [src_ids[i] for i in chosen], [tgt_ids[i] for i in chosen], report
