"""Sentiment readers: SST-2 lines, rt-polarity pairs, CSV/TSV, TFDS (mocked), and bad inputs."""

from __future__ import annotations

import logging

import pytest

from shared.errors import DataError
from suites.sentiment.readers import (
    LabeledTexts,
    load_tfds,
    read_delimited,
    read_polarity_pair,
    read_sst2,
    split_seeded,
)


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
@pytest.mark.parametrize(
    ("name", "names"), [("imdb_reviews", ("neg", "pos")), ("glue/sst2", ("negative", "positive"))]
)
def test_tfds_reader_with_mock_data(name, names):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=7):
        data = load_tfds(name, "train")
    assert len(data) == 7 and data.label_names == names
    assert all(isinstance(t, str) for t in data.texts)
    assert set(data.labels) <= {0, 1}


def test_tfds_reader_rejects_unlabelled_examples():
    tfds = pytest.importorskip("tensorflow_datasets")
    import tensorflow as tf

    def as_dataset(self, *args, **kwargs):
        return tf.data.Dataset.from_tensor_slices(
            {
                "sentence": ["a", "b"],
                "label": tf.constant([1, -1], tf.int64),
                "idx": tf.constant([0, 1], tf.int32),
            }
        )

    with (
        tfds.testing.mock_data(as_dataset_fn=as_dataset),
        pytest.raises(DataError, match=r"example 1: label -1"),
    ):
        load_tfds("glue/sst2", "test")


# -- real data (skipped without ../shared/datasets) --------------------------------------------
def test_real_sst2_and_rt_polarity_counts(real_data):
    train = read_sst2(real_data / "sst2" / "stsa.binary.train")
    dev = read_sst2(real_data / "sst2" / "stsa.binary.dev")
    assert train.class_counts() == [3310, 3610] and dev.class_counts() == [428, 444]
    rt = read_polarity_pair(
        real_data / "rt-polarity" / "rt-polarity.pos", real_data / "rt-polarity" / "rt-polarity.neg"
    )
    assert rt.class_counts() == [4511, 4467]
