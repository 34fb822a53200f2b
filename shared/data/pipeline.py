"""tf.data helpers shared by the task pipelines.

Typical training pipeline (bucketing lives in the input pipeline, not in the model):

    ds = examples                       # (features, label) elements, after expensive maps
    ds = shuffle_and_bucket(ds, length_fn, batch_size, seed=config.seed)
    ds = prefetch(ds)

`shuffle_and_bucket` computes each element's length bucket once and caches it with the element,
so an epoch only shuffles and batches (4x cheaper per batch than `bucket_by_length` after a
shuffle, which calls `length_fn` for every element of every epoch). `bucket_by_length` batches
evaluation streams in order. Boundaries come from the length quantiles (`quantile_boundaries`
of known lengths, `length_boundaries` of a dataset's) unless given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


def prefetch(ds: tf.data.Dataset) -> tf.data.Dataset:
    """`prefetch(AUTOTUNE)`: overlap input processing with the training step."""
    return ds.prefetch(AUTOTUNE)


def _lengths(ds: tf.data.Dataset, length_fn: Callable, max_elements: int | None) -> np.ndarray:
    if max_elements is not None:
        ds = ds.take(max_elements)
    lengths = ds.map(lambda *e: tf.cast(length_fn(*e), tf.int64), num_parallel_calls=AUTOTUNE)
    return np.fromiter(lengths.as_numpy_iterator(), dtype=np.int64)


def quantile_boundaries(lengths: np.ndarray, num_buckets: int = 8) -> list[int]:
    """Bucket boundaries at the quantiles of `lengths` (buckets of about equal size).

    Returns sorted unique boundaries for `bucket_by_length` (`len < b[0]`, `b[0] <= len < b[1]`,
    ...); an empty list when all lengths are equal.
    """
    if num_buckets < 1:
        raise ValueError(f"num_buckets must be >= 1, got {num_buckets}")
    lengths = np.asarray(lengths)
    if lengths.size == 0:
        raise ValueError("cannot compute length boundaries of an empty dataset")
    qs = np.quantile(lengths, np.linspace(0, 1, num_buckets + 1)[1:-1], method="higher")
    lo, hi = int(lengths.min()), int(lengths.max())
    return sorted({int(q) for q in qs if lo < q <= hi})


def length_boundaries(
    ds: tf.data.Dataset,
    length_fn: Callable,
    num_buckets: int = 8,
    max_elements: int | None = 20_000,
) -> list[int]:
    """`quantile_boundaries` of the lengths of (up to `max_elements` of) `ds`."""
    if num_buckets < 1:
        raise ValueError(f"num_buckets must be >= 1, got {num_buckets}")
    return quantile_boundaries(_lengths(ds, length_fn, max_elements), num_buckets)


def _checked_boundaries(
    ds: tf.data.Dataset,
    length_fn: Callable,
    batch_size: int,
    boundaries: list[int] | None,
    num_buckets: int,
) -> list[int]:
    """Validated bucket boundaries (from the data's length quantiles when None)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if boundaries is None:
        boundaries = length_boundaries(ds, length_fn, num_buckets)
    if list(boundaries) != sorted(set(boundaries)) or any(b < 1 for b in boundaries):
        raise ValueError(f"boundaries must be increasing positive ints, got {boundaries}")
    return list(boundaries)


def bucket_by_length(
    ds: tf.data.Dataset,
    length_fn: Callable,
    batch_size: int,
    boundaries: list[int] | None = None,
    num_buckets: int = 8,
    padded_shapes: Any = None,
    padding_values: Any = None,
    drop_remainder: bool = False,
    pad_to_bucket_boundary: bool = False,
) -> tf.data.Dataset:
    """Batches elements of similar length together (less padding) with `padded_batch`.

    Args:
        ds: unbatched elements (any nested structure).
        length_fn: element -> scalar length (called with the element's components).
        batch_size: examples per batch (the global batch size).
        boundaries: bucket boundaries; None: `length_boundaries(ds, length_fn, num_buckets)`.
        num_buckets: number of buckets when boundaries come from the data.
        padded_shapes / padding_values: as in `Dataset.padded_batch` (default: pad every
            variable dimension to the longest in the batch, with zeros).
        drop_remainder: drop each bucket's last partial batch (static batch dimension).
        pad_to_bucket_boundary: pad to the bucket's upper boundary instead of the batch max
            (fewer distinct shapes; lengths must be < the last boundary).
    """
    boundaries = _checked_boundaries(ds, length_fn, batch_size, boundaries, num_buckets)

    def element_length(*element):
        return tf.cast(length_fn(*element), tf.int32)

    return ds.bucket_by_sequence_length(
        element_length_func=element_length,
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padded_shapes=padded_shapes,
        padding_values=padding_values,
        pad_to_bucket_boundary=pad_to_bucket_boundary,
        drop_remainder=drop_remainder,
    )


def shuffle_and_bucket(
    ds: tf.data.Dataset,
    length_fn: Callable,
    batch_size: int,
    seed: int,
    buffer_size: int = 10_000,
    boundaries: list[int] | None = None,
    num_buckets: int = 8,
    padded_shapes: Any = None,
    padding_values: Any = None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Training batches: cache -> seeded shuffle each pass -> batches from one length bucket each.

    The same batches as `cache`, `shuffle` and `bucket_by_length` in a row, but the bucket of
    every element is computed once, before the cache, and travels with it: each pass then only
    shuffles and groups by a stored key (tf.data short-circuits the trivial key function), so the
    per-epoch cost does not grow with `length_fn`.

    Args:
        ds: unbatched elements (any nested structure), finite; cached in memory here.
        length_fn: element -> scalar length (called once per element).
        batch_size: examples per batch (the global batch size).
        seed: shuffle seed; every pass is reshuffled (a pass's order depends on seed and pass).
        buffer_size: shuffle buffer (>= the number of elements: a full shuffle).
        boundaries / num_buckets / padded_shapes / padding_values / drop_remainder: as in
            `bucket_by_length`.
    """
    boundaries = _checked_boundaries(ds, length_fn, batch_size, boundaries, num_buckets)
    edges = tf.constant(boundaries or [0], tf.int32)  # [0]: one bucket (lengths are >= 0)

    def with_key(*element):
        length = tf.reshape(tf.cast(length_fn(*element), tf.int32), [1])
        return tf.cast(tf.searchsorted(edges, length, side="right")[0], tf.int64), element

    keyed = ds.map(with_key, num_parallel_calls=AUTOTUNE, deterministic=True).cache()
    keyed = keyed.shuffle(buffer_size, seed=seed, reshuffle_each_iteration=True)
    # A tuple element arrives as positional arguments; anything else as one argument.
    is_tuple = isinstance(ds.element_spec, tuple)

    def per_key(value: Any, key_value: Any) -> Any:
        if value is None:
            return None
        return (key_value, value if is_tuple else (value,))

    shapes = per_key(padded_shapes, tf.TensorShape([]))
    values = per_key(padding_values, tf.constant(0, tf.int64))

    def batch_window(key, window):
        return window.padded_batch(
            batch_size, padded_shapes=shapes, padding_values=values, drop_remainder=drop_remainder
        )

    batched = keyed.group_by_window(
        key_func=lambda key, element: key, reduce_func=batch_window, window_size=batch_size
    )
    return batched.map(
        lambda key, element: element if is_tuple else element[0], num_parallel_calls=AUTOTUNE
    )
