"""tf.data helpers: length-quantile boundaries, length bucketing, shuffled bucketing."""

from __future__ import annotations

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


def test_length_boundaries_split_into_equal_buckets():
    lengths = np.random.default_rng(0).integers(1, 101, size=1000).tolist()
    boundaries = pipeline.length_boundaries(ragged_dataset(lengths), length_of, num_buckets=4)
    assert len(boundaries) == 3 and boundaries == sorted(boundaries)
    counts = np.histogram(lengths, bins=[0, *boundaries, 10**6])[0]
    assert counts.min() >= 0.2 * len(lengths) and counts.max() <= 0.3 * len(lengths)
    assert pipeline.length_boundaries(ragged_dataset([5] * 10), length_of) == []
    # the dataset's boundaries are those of its lengths, by NumPy's "higher" quantiles
    qs = np.quantile(lengths, [0.25, 0.5, 0.75], method="higher").astype(int).tolist()
    assert pipeline.quantile_boundaries(np.array(lengths), 4) == boundaries == sorted(set(qs))
    with pytest.raises(ValueError, match="num_buckets"):
        pipeline.quantile_boundaries(np.array(lengths), 0)
    with pytest.raises(ValueError, match="empty"):
        pipeline.quantile_boundaries(np.array([], int), 4)


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
