"""Sentiment data: readers (SST-2, rt-polarity, CSV/TSV, mocked TFDS), splits, tf.data."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest
import sentencepiece
import tensorflow as tf
import tensorflow_datasets as tfds

from shared.config import load_config
from shared.data.tokenizer import SentencePieceTokenizer, train_sentencepiece
from shared.errors import DataError
from suites.sentiment.config import DataConfig
from suites.sentiment.data import make_dataset, read_splits
from suites.sentiment.readers import (
    LabeledTexts,
    load_tfds,
    make_negation_examples,
    read_delimited,
    read_polarity_pair,
    read_sst2,
    split_folds,
    split_seeded,
)
from suites.sentiment.text import normalize_texts

REPO = Path(__file__).resolve().parents[1]


def write(path, content: str | bytes):
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


# -- SST-2 -------------------------------------------------------------------------------------
def test_sst2_reads_label_and_sentence(tmp_path):
    path = write(tmp_path / "train", "1 a gorgeous , witty film .\n0 do n't bother .\r\n\n1 x y\n")
    data = read_sst2(path)
    assert data.texts == ["a gorgeous , witty film .", "do n't bother .", "x y"]
    assert data.labels == [1, 0, 1]
    assert data.label_names == ("negative", "positive")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "file is empty"),
        ("\n \n", "file is empty"),
        ("1 fine\nno label here\n", r":2: expected '<label> <sentence>'"),
        ("1 fine\n0\n", r":2: label 0 has no sentence"),
        ("1 fine\n0 ok\n2 what\n", r":3: unknown label 2"),
        (b"1 fine\n0 caf\xe9 au lait\n", r":2: invalid UTF-8 at byte 6"),
    ],
)
def test_sst2_bad_input_names_file_and_line(tmp_path, content, message):
    path = write(tmp_path / "bad.txt", content)
    with pytest.raises(DataError, match=message) as err:
        read_sst2(path)
    assert str(path) in str(err.value)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(DataError, match="nope"):
        read_sst2(tmp_path / "nope")


def test_blank_lines_are_skipped_with_a_count(tmp_path, caplog):
    path = write(tmp_path / "t", "1 a\n\n\n0 b\n")
    with caplog.at_level(logging.WARNING):
        assert len(read_sst2(path)) == 2
    assert "skipped 2 blank line(s)" in caplog.text


# -- rt-polarity -------------------------------------------------------------------------------
def test_polarity_pair_labels_by_file_and_latin1_fallback(tmp_path, caplog):
    pos = write(tmp_path / "x.pos", "a charming film \nsimply great \n")
    neg = write(tmp_path / "x.neg", b"a clich\xe9d mess \n")  # Latin-1, as in the Cornell original
    with pytest.raises(DataError, match=r"x\.neg:1: invalid UTF-8"):
        read_polarity_pair(pos, neg)
    with caplog.at_level(logging.WARNING):
        data = read_polarity_pair(pos, neg, encoding_fallback="cp1252")
    assert "decoded 1 line(s) as cp1252" in caplog.text
    assert data.texts == ["a clichéd mess", "a charming film", "simply great"]
    assert data.labels == [0, 1, 1]


def test_polarity_pair_rejects_an_empty_file(tmp_path):
    pos = write(tmp_path / "p", "good\n")
    neg = write(tmp_path / "n", "\n")
    with pytest.raises(DataError, match="file is empty"):
        read_polarity_pair(pos, neg)


def test_split_seeded_is_stratified_disjoint_and_reproducible():
    data = LabeledTexts([f"t{i}" for i in range(100)], [i % 4 == 0 for i in range(100)], ("n", "p"))
    data = LabeledTexts(data.texts, [int(x) for x in data.labels], data.label_names)
    splits = split_seeded(data, {"validation": 0.1, "test": 0.2}, seed=3)
    assert [len(splits[k]) for k in ("train", "validation", "test")] == [70, 10, 20]
    assert splits["test"].class_counts() == [15, 5]  # 20% of 75 negatives and of 25 positives
    names = [set(s.texts) for s in splits.values()]
    assert set.union(*names) == set(data.texts) and sum(map(len, names)) == 100
    again = split_seeded(data, {"validation": 0.1, "test": 0.2}, seed=3)
    assert again["validation"].texts == splits["validation"].texts
    other = split_seeded(data, {"validation": 0.1, "test": 0.2}, seed=4)
    assert other["validation"].texts != splits["validation"].texts
    with pytest.raises(ValueError, match="fractions"):
        split_seeded(data, {"validation": 0.6, "test": 0.5}, seed=0)


def _fold_data(counts: list[int]) -> LabeledTexts:
    labels = [c for c, n in enumerate(counts) for _ in range(n)]
    return LabeledTexts(
        [f"t{i}" for i in range(len(labels))], labels, ("a", "b", "c")[: len(counts)]
    )


@pytest.mark.parametrize(("counts", "folds"), [([47, 31, 25], 10), ([12, 3], 5), ([7, 7], 2)])
def test_folds_cover_every_example_once_stratified(counts, folds):
    data = _fold_data(counts)
    tests = []
    for fold in range(folds):
        splits = split_folds(data, folds, fold, validation_fraction=0.1, seed=5)
        parts = [splits[k].texts for k in ("train", "validation", "test")]
        assert sorted(sum(parts, [])) == sorted(data.texts)  # disjoint, complete
        for split in splits.values():
            truth = {t: y for t, y in zip(data.texts, data.labels, strict=True)}
            assert split.labels == [truth[t] for t in split.texts]
        # the other folds' classes, 10% of each held out for validation (rounded)
        rest = np.bincount(
            splits["train"].labels + splits["validation"].labels, minlength=len(counts)
        )
        assert splits["validation"].class_counts() == [int(round(0.1 * n)) for n in rest]
        tests.append(splits["test"])
    seen = [t for split in tests for t in split.texts]
    assert sorted(seen) == sorted(data.texts)  # each example in exactly one test fold
    per_class = np.array([split.class_counts() for split in tests])  # [fold, class]
    low, high = np.floor(np.array(counts) / folds), np.ceil(np.array(counts) / folds)
    assert ((per_class >= low) & (per_class <= high)).all()  # stratified
    sizes = per_class.sum(axis=1)
    assert sizes.max() - sizes.min() <= 1
    again = split_folds(data, folds, 0, 0.1, seed=5)
    assert again["test"].texts == tests[0].texts
    assert split_folds(data, folds, 0, 0.1, seed=6)["test"].texts != tests[0].texts
    with pytest.raises(ValueError, match="fold must be in"):
        split_folds(data, folds, folds, 0.1, seed=5)


def test_configured_folds_from_rt_polarity_files(tmp_path):
    write(tmp_path / "rt.pos", "".join(f"good {i}\n" for i in range(23)))
    write(tmp_path / "rt.neg", "".join(f"bad {i}\n" for i in range(17)))
    config = DataConfig(
        format="rt_polarity",
        data_dir=str(tmp_path),
        positive_file="rt.pos",
        negative_file="rt.neg",
        validation_fraction=0.0,
        cv_folds=4,
    )
    tests = []
    for fold in range(4):
        splits = read_splits(dataclasses.replace(config, cv_fold=fold), seed=0)
        assert sorted(splits) == ["test", "train"]  # test_fraction is not used with folds
        assert len(splits["train"]) + len(splits["test"]) == 40
        assert not set(splits["train"].texts) & set(splits["test"].texts)
        tests += splits["test"].texts
    assert sorted(tests) == sorted(
        [f"good {i}" for i in range(23)] + [f"bad {i}" for i in range(17)]
    )
    with pytest.raises(DataError, match=r"data\.cv_folds: 50 folds need at least"):
        read_splits(dataclasses.replace(config, cv_folds=50), seed=0)


# -- CSV / TSV ---------------------------------------------------------------------------------
def test_csv_with_named_labels_quotes_and_inferred_names(tmp_path):
    path = write(
        tmp_path / "d.csv",
        'id,text,label\n1,"great, really",pos\n2,"multi\nline ""quote""",neg\n3,meh,neutral\n',
    )
    data = read_delimited(path)
    assert data.label_names == ("neg", "neutral", "pos")
    assert data.texts == ["great, really", 'multi\nline "quote"', "meh"]
    assert data.labels == [2, 0, 1]


def test_tsv_with_given_names_and_integer_labels(tmp_path):
    path = write(tmp_path / "d.tsv", "sentence\tstars\nok\t1\nbad\tlow\n")
    data = read_delimited(path, "sentence", "stars", label_names=["low", "high"])
    assert data.labels == [1, 0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "file is empty"),
        ("words,label\nhi,pos\n", "no column 'text'"),
        ("text,label\nhi,pos\nthere\n", r":3: expected 2 fields"),
        ("text,label\nhi,pos\nthere,\n", r":3: empty 'label'"),
        ("text,label\nhi,pos\nthere,meh\n", r":3: unknown label 'meh'"),
        (b"text,label\nhi,pos\n\xff,neg\n", r":3: invalid UTF-8"),
    ],
)
def test_delimited_bad_input(tmp_path, content, message):
    path = write(tmp_path / "bad.csv", content)
    with pytest.raises(DataError, match=message) as err:
        read_delimited(path, label_names=["neg", "pos"])
    assert str(path) in str(err.value)


# -- TFDS (offline, mocked) --------------------------------------------------------------------
def _mock_split(feature: str, content: dict[str, list[tuple[str, int]]]):
    """An `as_dataset_fn` answering each split name with its (text, label) rows."""

    def as_dataset(self, split, **kwargs):
        rows = content[split]
        return tf.data.Dataset.from_tensor_slices(
            {
                feature: [text for text, _ in rows],
                "label": tf.constant([label for _, label in rows], tf.int64),
                "idx": tf.range(len(rows)),
            }
        )

    return as_dataset


@pytest.mark.parametrize(
    ("name", "feature", "names"),
    [("imdb_reviews", "text", ("neg", "pos")), ("glue/sst2", "sentence", ("negative", "positive"))],
)
def test_tfds_reader_returns_the_examples_and_the_dataset_label_names(name, feature, names):
    rows = [("Ünïcödé, ünterwegs", 1), ("a dull film", 0), ("fine", 1)]
    with tfds.testing.mock_data(as_dataset_fn=_mock_split(feature, {"train": rows})):
        data = load_tfds(name, "train")
    assert list(zip(data.texts, data.labels, strict=True)) == rows
    assert data.label_names == names


def test_tfds_reader_rejects_unlabelled_examples():
    content = {"test": [("a", 1), ("b", -1)]}
    with (
        tfds.testing.mock_data(as_dataset_fn=_mock_split("sentence", content)),
        pytest.raises(DataError, match=r"example 1: label -1"),
    ):
        load_tfds("glue/sst2", "test")


def test_tfds_dataset_not_prepared_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"data\.tfds_name: tfds imdb_reviews\[train\]"):
        load_tfds("imdb_reviews", "train", data_dir=str(tmp_path))


def test_imdb_config_reads_its_three_tfds_splits_with_renamed_labels():
    config = load_config(REPO / "configs" / "sentiment" / "imdb.yaml").data
    content = {
        "train[:90%]": [("good movie", 1), ("bad movie", 0)],
        "train[90%:]": [("so so", 0)],
        "test": [("great", 1)],
    }
    with tfds.testing.mock_data(as_dataset_fn=_mock_split("text", content)):
        splits = read_splits(config, seed=0)
    assert {k: list(zip(v.texts, v.labels, strict=True)) for k, v in splits.items()} == {
        "train": content["train[:90%]"],
        "validation": content["train[90%:]"],
        "test": content["test"],
    }
    assert splits["train"].label_names == ("negative", "positive")  # renamed from neg/pos


# -- the configured splits ---------------------------------------------------------------------
def test_read_splits_for_each_file_format(tmp_path):
    write(tmp_path / "a.pos", "".join(f"good {i}\n" for i in range(20)))
    write(tmp_path / "a.neg", "".join(f"bad {i}\n" for i in range(30)))
    config = DataConfig(
        format="rt_polarity",
        data_dir=str(tmp_path),
        positive_file="a.pos",
        negative_file="a.neg",
        validation_fraction=0.2,
        test_fraction=0.0,
    )
    splits = read_splits(config, seed=0)
    assert sorted(splits) == ["train", "validation"]
    assert splits["validation"].class_counts() == [6, 4]
    assert sorted(splits["train"].texts + splits["validation"].texts) == sorted(
        [f"good {i}" for i in range(20)] + [f"bad {i}" for i in range(30)]
    )

    write(tmp_path / "t.tsv", "text\tlabel\nfine\tok\nawful\tbad\n")
    write(tmp_path / "v.tsv", "text\tlabel\nmeh\tbad\n")
    config = DataConfig(
        format="csv", data_dir=str(tmp_path), train_file="t.tsv", validation_file="v.tsv"
    )
    splits = read_splits(config, seed=0)
    assert splits["train"].label_names == ("bad", "ok") and splits["train"].labels == [1, 0]
    assert splits["validation"].texts == ["meh"] and splits["validation"].labels == [0]

    missing = dataclasses.replace(config, validation_file="missing")
    with pytest.raises(DataError, match=r"data\.validation_file: .*missing .*--data-dir"):
        read_splits(missing, seed=0)


# -- tf.data: the ids are what an independent SentencePiece processor gives -------------------
def _reference_ids(model_file, texts, max_length):
    """ids of `texts` by `sentencepiece` itself: normalised, truncated, 0-padded (>= 1 column)."""
    processor = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
    rows = [processor.encode(t)[:max_length] for t in normalize_texts(texts)]
    width = max([1, *map(len, rows)])
    return np.array([row + [0] * (width - len(row)) for row in rows], np.int32)


def test_dataset_ids_equal_an_independent_sentencepiece_and_buckets_keep_them(tmp_path):
    data = make_negation_examples(90, seed=0)
    model_file = train_sentencepiece(
        normalize_texts(data.texts), tmp_path / "sp.model", 40, hard_vocab_limit=False
    )
    tokenizer = SentencePieceTokenizer.from_file(model_file)

    def examples(dataset):
        out = []
        for ids, labels in dataset.as_numpy_iterator():
            assert ids.dtype == np.int32 and ids.shape[1] >= 1
            out += [(tuple(row[row != 0]), int(y)) for row, y in zip(ids, labels, strict=True)]
        return sorted(out)

    plain = make_dataset(data, tokenizer, 16, max_length=6)
    first_ids, first_labels = next(iter(plain))
    np.testing.assert_array_equal(first_ids, _reference_ids(model_file, data.texts[:16], 6))
    np.testing.assert_array_equal(first_labels, data.labels[:16])
    reference = _reference_ids(model_file, data.texts, 6)
    expected = sorted(
        (tuple(row[row != 0]), y) for row, y in zip(reference, data.labels, strict=True)
    )
    bucketed = make_dataset(data, tokenizer, 16, max_length=6, shuffle_seed=1, num_buckets=3)
    assert examples(plain) == examples(bucketed) == expected
    assert max(len(e[0]) for e in expected) == 6  # truncation took effect


# -- real data (skipped without ../shared/datasets) --------------------------------------------
@pytest.mark.realdata
def test_real_sst2_and_rt_polarity_counts(real_data):
    train = read_sst2(real_data / "sst2" / "stsa.binary.train")
    dev = read_sst2(real_data / "sst2" / "stsa.binary.dev")
    assert train.class_counts() == [3310, 3610] and dev.class_counts() == [428, 444]
    rt = read_polarity_pair(
        real_data / "rt-polarity" / "rt-polarity.pos", real_data / "rt-polarity" / "rt-polarity.neg"
    )
    assert rt.class_counts() == [4511, 4467]
