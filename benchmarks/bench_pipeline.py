"""Input-pipeline overhead: training steps fed by the shared tf.data pipeline vs in-memory tensors.

The pipeline is the one the tasks use (parse text -> cache -> seeded shuffle -> bucket by length
-> prefetch). The reference feeds the very same batches from a Python list of tensors already in
memory, so the difference per step is what the pipeline costs the training loop. Epochs of the
two alternate (the machine's load hits both alike); the median and the fastest epoch of each are
compared (on a shared machine the fastest epochs are the least disturbed estimate).

    python benchmarks/bench_pipeline.py [--examples 4096] [--repeats 3] [--units 128]

Goal: overhead <= 5% of the step time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from shared.data import pipeline  # noqa: E402
from shared.layers import PeepholeLSTM  # noqa: E402


def make_text(examples: int, vocab: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(10, 61, size=examples)
    texts = [" ".join(map(str, rng.integers(1, vocab, size=n))) for n in lengths]
    return texts, rng.integers(0, 2, size=examples).astype(np.int32)


def make_pipeline(texts, labels, batch_size: int, seed: int) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((texts, labels))
    ds = ds.map(
        lambda t, y: (tf.strings.to_number(tf.strings.split(t), tf.int32), y),
        num_parallel_calls=pipeline.AUTOTUNE,
    )
    ds = pipeline.shuffle(pipeline.cache(ds), seed=seed, buffer_size=len(texts))
    ds = pipeline.bucket_by_length(
        ds, lambda t, y: tf.shape(t)[0], batch_size, boundaries=[20, 30, 40, 50]
    )
    return pipeline.prefetch(ds)


def build(vocab: int, units: int) -> tuple[keras.Model, object]:
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(vocab, 64, mask_zero=True),
            PeepholeLSTM(units),
            keras.layers.Dense(2),
        ]
    )
    optimizer = keras.optimizers.Adam(1e-3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(reduce_retracing=True)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    return model, train_step


def timed_epoch(batches, train_step) -> tuple[float, int]:
    start, steps = time.perf_counter(), 0
    loss = None
    for x, y in batches:
        loss = train_step(x, y)
        steps += 1
    float(loss)  # wait for the last step
    return time.perf_counter() - start, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs of each kind")
    args = parser.parse_args()

    texts, labels = make_text(args.examples, args.vocab)
    ds = make_pipeline(texts, labels, args.batch_size, seed=0)
    in_memory = [(tf.identity(x), tf.identity(y)) for x, y in ds]  # one pass: the same batches
    model, train_step = build(args.vocab, args.units)
    timed_epoch(in_memory, train_step)  # warm-up: traces every bucket shape
    timed_epoch(ds, train_step)  # warm-up: fills the cache

    memory_times, pipeline_times = [], []
    for _ in range(args.repeats):
        seconds, steps = timed_epoch(in_memory, train_step)
        memory_times.append(seconds / steps)
        seconds, steps = timed_epoch(ds, train_step)
        pipeline_times.append(seconds / steps)
    data_times = []
    for _ in range(args.repeats):  # the pipeline alone: an upper bound of what it can cost
        start, batches = time.perf_counter(), 0
        for _batch in ds:
            batches += 1
        data_times.append((time.perf_counter() - start) / batches)
    memory, fed = statistics.median(memory_times), statistics.median(pipeline_times)
    overhead = (fed - memory) / memory
    best_overhead = (min(pipeline_times) - min(memory_times)) / min(memory_times)
    print(
        f"examples={args.examples} batch={args.batch_size} units={args.units} "
        f"steps/epoch={steps} repeats={args.repeats}"
    )
    print(
        f"in-memory tensors : {1000 * memory:7.2f} ms/step  (epochs: "
        f"{', '.join(f'{1000 * t:.2f}' for t in memory_times)})"
    )
    print(
        f"tf.data pipeline  : {1000 * fed:7.2f} ms/step  (epochs: "
        f"{', '.join(f'{1000 * t:.2f}' for t in pipeline_times)})"
    )
    print(
        f"pipeline alone    : {1000 * statistics.median(data_times):7.2f} ms/batch "
        f"({100 * statistics.median(data_times) / memory:.1f}% of a step, before overlap)"
    )
    print(
        f"pipeline overhead : {100 * overhead:+.1f}% of the step time (medians), "
        f"{100 * best_overhead:+.1f}% (fastest epochs; robust on a busy machine); goal <= 5%"
    )


if __name__ == "__main__":
    main()
