"""The sentiment data: the configured splits (readers.py, extra.py) and their tf.data pipelines.

Formats (`data.format`):
    sst2         `<label> <sentence>` lines: `train_file`, `validation_file`, `test_file`.
    rt_polarity  `positive_file` / `negative_file`, split with `split_seed` into train/validation/
                 test by `validation_fraction` / `test_fraction` (stratified); with `cv_folds`,
                 fold `cv_fold` of the stratified folds is the test split instead.
    csv          CSV/TSV with a header (`text_column`, `label_column`): the three *_file keys.
    tfds         `tfds_name` with `tfds_train_split` / `tfds_validation_split` / `tfds_test_split`
                 (prepared data only, never downloaded; `data_dir` is the TFDS data directory).
    synthetic    the generated negation set (`readers.make_negation_examples`), no files needed.
File names are relative to `data_dir` (absolute names are used as they are). `data.extra_train`
appends further labelled sources to the training split after the overlap filter (extra.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import tensorflow as tf

from shared.data.pipeline import bucket_by_length, shuffle_and_bucket
from shared.data.sources import resolve_under
from shared.data.tokenizer import SentencePieceTokenizer
from shared.errors import DataError
from suites.sentiment import extra, readers
from suites.sentiment.config import DataConfig, Normalization
from suites.sentiment.readers import LabeledTexts
from suites.sentiment.text import SubwordInputs

Splits = dict[str, LabeledTexts]
SPLIT_FILES = {"train": "train_file", "validation": "validation_file", "test": "test_file"}


def _path(config: DataConfig, key: str) -> Path:
    """The file named by `data.<key>`, relative to `data.data_dir`; must exist."""
    path = resolve_under(getattr(config, key), config.data_dir)
    if not path.is_file():
        raise DataError(
            f"data.{key}: {path} not found (data.data_dir={config.data_dir!r}; "
            f"set it in the config or with --data-dir)"
        )
    return path


def _read_files(config: DataConfig) -> Splits:
    """The sst2/csv splits named by `train_file`, `validation_file`, `test_file`."""
    names = tuple(config.label_names) or None
    splits: Splits = {}
    for split, key in SPLIT_FILES.items():
        if getattr(config, key) is None:
            continue
        if config.format == "sst2":
            splits[split] = readers.read_sst2(
                _path(config, key), names or readers.BINARY_LABELS, config.encoding_fallback
            )
        else:  # csv: later splits use the training file's label names
            known = splits["train"].label_names if "train" in splits else names
            splits[split] = readers.read_delimited(
                _path(config, key),
                config.text_column,
                config.label_column,
                known,
                config.delimiter,
            )
    return splits


def read_splits(config: DataConfig, seed: int) -> Splits:
    """The configured splits, without the extra training data."""
    if config.format == "synthetic":
        sizes = [
            config.synthetic_train_size,
            config.synthetic_eval_size,
            config.synthetic_eval_size,
        ]
        return {
            split: readers.make_negation_examples(size, seed + i)
            for i, (split, size) in enumerate(zip(SPLIT_FILES, sizes, strict=True))
        }
    if config.format == "rt_polarity":
        pair = readers.read_polarity_pair(
            _path(config, "positive_file"),
            _path(config, "negative_file"),
            config.encoding_fallback,
        )
        if config.cv_folds:
            if len(pair) < config.cv_folds:
                raise DataError(
                    f"data.cv_folds: {config.cv_folds} folds need at least as many snippets, "
                    f"got {len(pair)}"
                )
            return readers.split_folds(
                pair, config.cv_folds, config.cv_fold, config.validation_fraction, config.split_seed
            )
        fractions = {"validation": config.validation_fraction, "test": config.test_fraction}
        return readers.split_seeded(
            pair, {k: v for k, v in fractions.items() if v > 0}, config.split_seed
        )
    if config.format == "tfds":
        names = tuple(config.label_names) or None
        splits = {
            "train": config.tfds_train_split,
            "validation": config.tfds_validation_split,
            "test": config.tfds_test_split,
        }
        return {
            key: readers.load_tfds(config.tfds_name, split, config.data_dir, label_names=names)
            for key, split in splits.items()
            if split is not None
        }
    return _read_files(config)


def load_splits(config: DataConfig, seed: int) -> tuple[Splits, list[dict]]:
    """Reads {"train", "validation"?, "test"?} and appends `data.extra_train` to "train".

    Returns:
        The splits and, per `data.extra_train` entry, its counts (read, dropped, kept).
    """
    return extra.add_extra_train(
        read_splits(config, seed),
        config.extra_train,
        config.data_dir,
        config.extra_overlap_filter,
        config.extra_overlap_min_words,
        text_column=config.text_column,
        label_column=config.label_column,
        delimiter=config.delimiter,
        encoding_fallback=config.encoding_fallback,
    )


def make_dataset(
    data: LabeledTexts,
    tokenizer: SentencePieceTokenizer,
    batch_size: int,
    max_length: int,
    normalization: Normalization = "ptb",
    shuffle_seed: int | None = None,
    num_buckets: int = 0,
) -> tf.data.Dataset:
    """`make_inputs_dataset` on SentencePiece ids (`text.SubwordInputs`)."""
    inputs = SubwordInputs(tokenizer, max_length, normalization)
    return make_inputs_dataset(data, inputs, batch_size, shuffle_seed, num_buckets)


def make_inputs_dataset(
    data: LabeledTexts,
    inputs: Callable[[tf.Tensor], Any],
    batch_size: int,
    shuffle_seed: int | None = None,
    num_buckets: int = 0,
) -> tf.data.Dataset:
    """Batched `(model inputs, label)` pairs; shuffled each epoch with `shuffle_seed` unless None.

    `inputs` turns a `tf.string [batch]` into the model's inputs (ids `[batch, time]`, or a dict
    of such tensors keyed by input name whose "ids" gives the length), the same call the export
    makes. With `num_buckets == 0` texts are batched first and encoded per batch, so each batch is
    padded to its own longest text. With `num_buckets > 0` each text is encoded once and texts of
    similar length are batched together (boundaries at length quantiles): less padding, so faster
    recurrent layers; the inputs of each text are the same.
    """
    dataset = tf.data.Dataset.from_tensor_slices(
        (tf.constant(data.texts, tf.string), tf.constant(data.labels, tf.int32))
    )
    if num_buckets == 0:
        if shuffle_seed is not None:
            dataset = dataset.shuffle(len(data), seed=shuffle_seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size).map(
            lambda texts, labels: (inputs(texts), labels),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        return dataset.prefetch(tf.data.AUTOTUNE)
    dataset = dataset.map(
        lambda text, label: (
            tf.nest.map_structure(lambda t: t[0], inputs(text[tf.newaxis])),
            label,
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    length = lambda x, label: tf.shape(x["ids"] if isinstance(x, dict) else x)[0]  # noqa: E731
    if shuffle_seed is None:
        dataset = bucket_by_length(dataset, length, batch_size, num_buckets=num_buckets)
    else:
        dataset = shuffle_and_bucket(
            dataset, length, batch_size, shuffle_seed, len(data), num_buckets=num_buckets
        )
    return dataset.prefetch(tf.data.AUTOTUNE)
