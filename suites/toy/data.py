"""Generated toy data: does a 0/1 string have more ones in its first half than in its second?

Tokens are 1 (for "0") and 2 (for "1"); 0 pads.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from shared.data import pipeline

SPLITS = ("train", "validation", "test")


def generate(num: int, min_length: int, max_length: int, seed: int):
    """(tokens [num, max_length] int32 zero-padded, lengths [num], labels [num]) from `seed`."""
    rng = np.random.default_rng(seed)
    lengths = 2 * rng.integers(min_length // 2 or 1, max_length // 2 + 1, size=num)
    lengths = np.clip(lengths, min_length, max_length)
    tokens = np.zeros((num, max_length), np.int32)
    labels = np.zeros(num, np.int32)
    for i, n in enumerate(lengths):
        bits = rng.integers(0, 2, size=n)
        tokens[i, :n] = bits + 1
        labels[i] = int(bits[: n // 2].sum() > bits[n // 2 :].sum())
    return tokens, lengths.astype(np.int32), labels


def split_arrays(config, split: str):
    """The generated (tokens, lengths, labels) of `split` ("train", "validation", "test")."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} ({', '.join(SPLITS)})")
    size = {"train": config.num_train, "validation": config.num_validation}.get(
        split, config.num_test
    )
    seed = config.data_seed * 3 + SPLITS.index(split)
    return generate(size, config.min_length, config.max_length, seed)


def boundaries(config) -> list[int]:
    """Length-bucket boundaries spread evenly between the shortest and longest sequence."""
    lo, hi = config.min_length, config.max_length
    edges = np.linspace(lo, hi, config.num_buckets + 1)[1:-1]
    return sorted({int(b) for b in edges if lo < b <= hi})


def dataset(config, split: str, batch_size: int, seed: int | None = None) -> tf.data.Dataset:
    """Batches of `(tokens, label)` bucketed by length; shuffled when `seed` is given."""
    tokens, lengths, labels = split_arrays(config, split)
    ds = tf.data.Dataset.from_tensor_slices((tokens, lengths, labels))
    ds = ds.map(lambda t, n, y: (t[:n], y))
    length = lambda t, y: tf.shape(t)[0]  # noqa: E731
    if seed is None:
        ds = pipeline.bucket_by_length(ds, length, batch_size, boundaries=boundaries(config))
    else:
        ds = pipeline.shuffle_and_bucket(
            ds,
            length,
            batch_size,
            seed=seed,
            buffer_size=config.shuffle_buffer,
            boundaries=boundaries(config),
        )
    return pipeline.prefetch(ds)
