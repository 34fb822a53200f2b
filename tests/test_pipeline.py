"""tf.data helpers: seeded shuffle, length bucketing, caches keyed by config."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest
import tensorflow as tf

from shared.data import pipeline


def ragged_dataset(lengths: list[int]) -> tf.data.Dataset:
    """Element i: (tokens 1..length, label i)."""
    rows = tf.ragged.constant([list(range(1, n + 1)) for n in lengths], dtype=tf.int32)
    return tf.data.Dataset.from_tensor_slices((rows, tf.range(len(lengths)))).map(
        lambda t, i: (t, i)
    )


def length_of(tokens, label):
    return tf.shape(tokens)[0]


def test_seeded_shuffle_is_reproducible_and_reshuffles_each_pass():
    def passes(seed):
        ds = pipeline.shuffle(tf.data.Dataset.range(100), seed=seed, buffer_size=100)
        return [list(ds.as_numpy_iterator()) for _ in range(2)]

    first, again, other = passes(3), passes(3), passes(4)
    assert first == again
    assert sorted(first[0]) == list(range(100))
    assert first[0] != first[1]
    assert first[0] != other[0]


def test_length_boundaries_split_into_equal_buckets():
    lengths = np.random.default_rng(0).integers(1, 101, size=1000).tolist()
    boundaries = pipeline.length_boundaries(ragged_dataset(lengths), length_of, num_buckets=4)
    assert len(boundaries) == 3 and boundaries == sorted(boundaries)
    counts = np.histogram(lengths, bins=[0, *boundaries, 10**6])[0]
    assert counts.min() >= 0.2 * len(lengths) and counts.max() <= 0.3 * len(lengths)
    assert pipeline.length_boundaries(ragged_dataset([5] * 10), length_of) == []


def test_bucket_by_length_keeps_every_element_and_pads_less():
    lengths = np.random.default_rng(1).integers(1, 41, size=300).tolist()
    ds = ragged_dataset(lengths)
    bucketed = pipeline.bucket_by_length(ds, length_of, batch_size=16, num_buckets=4)
    seen, padded_tokens = Counter(), 0
    boundaries = pipeline.length_boundaries(ds, length_of, num_buckets=4)
    for tokens, labels in bucketed.as_numpy_iterator():
        assert 1 <= len(labels) <= 16
        batch_lengths = [lengths[i] for i in labels]
        assert tokens.shape[1] == max(batch_lengths)  # padded to the batch's longest
        for row, n in zip(tokens, batch_lengths, strict=True):
            np.testing.assert_array_equal(row[:n], np.arange(1, n + 1))
            assert not row[n:].any()
        buckets = set(np.searchsorted(boundaries, batch_lengths, side="right"))
        assert len(buckets) == 1  # one bucket per batch
        seen.update(labels.tolist())
        padded_tokens += tokens.size
    assert seen == Counter(range(len(lengths)))
    naive = sum(16 * max(lengths[i : i + 16]) for i in range(0, len(lengths), 16))
    assert padded_tokens < 0.75 * naive


def test_bucket_by_length_validates_arguments():
    ds = ragged_dataset([1, 2, 3])
    with pytest.raises(ValueError, match="batch_size"):
        pipeline.bucket_by_length(ds, length_of, batch_size=0)
    with pytest.raises(ValueError, match="increasing"):
        pipeline.bucket_by_length(ds, length_of, batch_size=2, boundaries=[3, 2])


def test_file_cache_and_memory_cache(tmp_path):
    calls = []

    def expensive(x):
        calls.append(1)
        return x * 2

    def make(path):
        ds = tf.data.Dataset.range(5).map(lambda x: tf.py_function(expensive, [x], tf.int64))
        return pipeline.prefetch(pipeline.cache(ds, path))

    ds = make(tmp_path / "cache" / "train")
    assert list(ds.as_numpy_iterator()) == [0, 2, 4, 6, 8]
    assert list(ds.as_numpy_iterator()) == [0, 2, 4, 6, 8]
    assert len(calls) == 5  # second pass read the cache
    assert list(make(tmp_path / "cache" / "train").as_numpy_iterator()) == [0, 2, 4, 6, 8]
    assert len(calls) == 5  # a new pipeline reuses the file cache
    memory = make(None)
    list(memory.as_numpy_iterator()), list(memory.as_numpy_iterator())
    assert len(calls) == 10


@dataclasses.dataclass
class Features:
    sample_rate: int = 16000
    num_mels: int = 40


def test_config_hash_is_stable_and_sensitive():
    assert pipeline.config_hash(Features()) == pipeline.config_hash(
        {"num_mels": 40, "sample_rate": 16000}
    )
    assert pipeline.config_hash(Features()) != pipeline.config_hash(Features(num_mels=80))


def test_snapshot_cache_is_keyed_by_config(tmp_path):
    calls = []

    def features(x):
        calls.append(1)
        return tf.cast(x, tf.float32) / 2

    def make(key):
        ds = tf.data.Dataset.range(6).map(lambda x: tf.py_function(features, [x], tf.float32))
        return pipeline.snapshot_cache(ds, tmp_path, key)

    expected = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert sorted(make(Features()).as_numpy_iterator()) == expected
    assert len(calls) == 6
    assert sorted(make(Features()).as_numpy_iterator()) == expected
    assert len(calls) == 6  # same key: read from the snapshot
    assert sorted(make(Features(num_mels=80)).as_numpy_iterator()) == expected
    assert len(calls) == 12  # another key: recomputed into another folder
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert folders == sorted(
        f"features-{pipeline.config_hash(k)}" for k in (Features(), Features(num_mels=80))
    )


def test_shuffle_and_bucket_batches_every_element_once_per_pass_from_one_bucket():
    lengths = np.random.default_rng(2).integers(1, 41, size=300).tolist()
    ds = ragged_dataset(lengths)
    boundaries = pipeline.length_boundaries(ds, length_of, num_buckets=4)

    def passes(seed):
        batched = pipeline.shuffle_and_bucket(ds, length_of, 16, seed=seed, buffer_size=300)
        return [list(batched.as_numpy_iterator()) for _ in range(2)]

    first, again, other = passes(5), passes(5), passes(6)
    for batches in first:
        seen = Counter()
        for tokens, labels in batches:
            batch_lengths = [lengths[i] for i in labels]
            assert 1 <= len(labels) <= 16 and tokens.shape[1] == max(batch_lengths)
            for row, n in zip(tokens, batch_lengths, strict=True):
                np.testing.assert_array_equal(row[:n], np.arange(1, n + 1))
                assert not row[n:].any()
            assert len(set(np.searchsorted(boundaries, batch_lengths, side="right"))) == 1
            seen.update(labels.tolist())
        assert seen == Counter(range(len(lengths)))  # every element exactly once per pass

    def labels_of(batches):
        return [b[1].tolist() for b in batches]

    assert labels_of(first[0]) == labels_of(again[0]) and labels_of(first[1]) == labels_of(again[1])
    assert labels_of(first[0]) != labels_of(first[1])  # reshuffled each pass
    assert labels_of(first[0]) != labels_of(other[0])  # the seed matters


def test_shuffle_and_bucket_single_tensors_dicts_and_padding():
    rows = tf.ragged.constant([[1] * n for n in (3, 1, 2, 5, 4)], dtype=tf.int32)
    singles = tf.data.Dataset.from_tensor_slices(rows).map(lambda t: t)
    batched = pipeline.shuffle_and_bucket(
        singles, lambda t: tf.shape(t)[0], 5, seed=0, boundaries=[], padding_values=-1
    )
    (only,) = list(batched.as_numpy_iterator())
    assert only.shape == (5, 5) and sorted((only == 1).sum(axis=1).tolist()) == [1, 2, 3, 4, 5]
    assert set(np.unique(only)) == {1, -1}
    dicts = tf.data.Dataset.from_tensor_slices(rows).map(lambda t: ({"x": t}, tf.size(t)))
    batched = pipeline.shuffle_and_bucket(
        dicts, lambda x, n: n, 2, seed=0, boundaries=[3], padded_shapes=({"x": [6]}, [])
    )
    for x, n in batched.as_numpy_iterator():
        assert x["x"].shape[1] == 6 and len(set(n >= 3)) == 1
    with pytest.raises(ValueError, match="batch_size"):
        pipeline.shuffle_and_bucket(singles, lambda t: tf.shape(t)[0], 0, seed=0)
