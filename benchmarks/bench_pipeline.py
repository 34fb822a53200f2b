"""Input-pipeline overhead: training steps fed by tf.data vs the same batches as in-memory tensors.

Two workloads:

* synthetic (default): a small PeepholeLSTM classifier on generated token sequences fed by the
  shared helpers (parse -> `shuffle_and_bucket`: cache, seeded shuffle, length buckets ->
  prefetch) - a harsh case: the step is short, so the pipeline's share is large;
* a task (`--config FILE [--data-dir DIR]`): the task's own training pipeline
  (`Task.datasets`) and model (`Task.build_model`, compiled with the task's loss), i.e. exactly
  what `lstm-suite train` runs; `--steps N` limits each epoch to its first N batches.

The fed epochs take each batch from the iterator inside the compiled step, as `keras fit` does;
the reference feeds the very same batches from a Python list of tensors already in memory, so
the difference per step is what the pipeline costs the training loop. Epochs of the two
alternate (the machine's load hits both alike); medians and fastest epochs are compared.

    python benchmarks/bench_pipeline.py [--examples 4096] [--repeats 5] [--units 128]
    python benchmarks/bench_pipeline.py --config configs/sentiment/sst2.yaml \
        --data-dir ../shared/datasets/sst2 --steps 40 --repeats 5

Goal: overhead <= 5% of the step time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

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
    ds = pipeline.shuffle_and_bucket(
        ds, lambda t, y: tf.shape(t)[0], batch_size, seed, len(texts), boundaries=[20, 30, 40, 50]
    )
    return pipeline.prefetch(ds)


def synthetic_model(vocab: int, units: int) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(vocab, 64, mask_zero=True),
            PeepholeLSTM(units),
            keras.layers.Dense(2),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def task_workload(args) -> tuple[keras.Model, tf.data.Dataset, str]:
    """The task's training dataset and compiled model, as `lstm-suite train` builds them."""
    from shared.config import load_config
    from shared.task import get_task

    config = load_config(args.config, data_dir=args.data_dir)
    task_cls = get_task(config.task)
    task = task_cls(config, Path(tempfile.mkdtemp(prefix="bench_pipeline_")))
    task.artifacts_dir.mkdir(parents=True, exist_ok=True)
    task.prepare()
    train_ds, _ = task.datasets(config.training.global_batch_size)
    if args.steps:
        train_ds = train_ds.take(args.steps)
    model = task.build_model()
    model.compile(
        optimizer=keras.optimizers.Adam(config.training.learning_rate),
        loss=task.loss(),
        metrics=task.metrics(),
    )
    label = f"{config.task} ({Path(args.config).name}), batch {config.training.global_batch_size}"
    return model, train_ds, label


def step_functions(model: keras.Model):
    """(step on given batch, step on the iterator's next batch), both compiled like keras fit."""

    @tf.function(reduce_retracing=True)
    def train_step(x, y):
        return model.train_step((x, y))["loss"]

    @tf.function(reduce_retracing=True)
    def iterator_step(iterator):  # as keras fit does it: the next batch is taken in the graph
        optional = iterator.get_next_as_optional()
        if optional.has_value():
            x, y = optional.get_value()
            return True, model.train_step((x, y))["loss"]
        return False, tf.constant(0.0)

    return train_step, iterator_step


def timed_iterator_epoch(ds, iterator_step) -> tuple[float, int]:
    start, steps = time.perf_counter(), 0
    iterator = iter(ds)
    last = None
    while True:
        more, loss = iterator_step(iterator)
        if not bool(more):
            break
        last = loss
        steps += 1
    float(last)
    return time.perf_counter() - start, steps


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
    parser.add_argument("--config", type=Path, help="a task config: bench its real pipeline")
    parser.add_argument("--data-dir", help="data.data_dir for --config")
    parser.add_argument("--steps", type=int, default=0, help="--config: batches per epoch")
    parser.add_argument("--examples", type=int, default=4096, help="synthetic: examples")
    parser.add_argument("--batch-size", type=int, default=64, help="synthetic: batch size")
    parser.add_argument("--units", type=int, default=128, help="synthetic: LSTM units")
    parser.add_argument("--vocab", type=int, default=2000, help="synthetic: vocabulary")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs of each kind")
    parser.add_argument("--threads", type=int, default=0, help="tf.data private threadpool size")
    args = parser.parse_args()

    if args.config:
        model, ds, label = task_workload(args)
    else:
        texts, labels = make_text(args.examples, args.vocab)
        ds = make_pipeline(texts, labels, args.batch_size, seed=0)
        model = synthetic_model(args.vocab, args.units)
        label = f"synthetic: {args.examples} examples, batch {args.batch_size}, units {args.units}"
    if args.threads:
        options = tf.data.Options()
        options.threading.private_threadpool_size = args.threads
        ds = ds.with_options(options)
    in_memory = [(tf.identity(x), tf.identity(y)) for x, y in ds]  # one pass: the same batches
    # The same tensors behind a trivial tf.data iterator: what keras fit does with arrays.
    replay = tf.data.Dataset.from_tensors(in_memory[0])
    for batch in in_memory[1:]:
        replay = replay.concatenate(tf.data.Dataset.from_tensors(batch))
    train_step, iterator_step = step_functions(model)

    timed_epoch(in_memory, train_step)  # warm-up: builds/traces every shape
    timed_iterator_epoch(ds, iterator_step)  # warm-up: fills caches, traces the iterator step
    timed_iterator_epoch(replay, iterator_step)

    memory_times, pipeline_times, replay_times = [], [], []
    for _ in range(args.repeats):
        seconds, steps = timed_epoch(in_memory, train_step)
        memory_times.append(seconds / steps)
        seconds, steps = timed_iterator_epoch(ds, iterator_step)
        pipeline_times.append(seconds / steps)
        seconds, _ = timed_iterator_epoch(replay, iterator_step)
        replay_times.append(seconds / steps)
    data_times = []
    for _ in range(args.repeats):  # the pipeline alone: an upper bound of what it can cost
        start, batches = time.perf_counter(), 0
        for _batch in ds:
            batches += 1
        data_times.append((time.perf_counter() - start) / batches)
    memory, fed = statistics.median(memory_times), statistics.median(pipeline_times)
    overhead = (fed - memory) / memory
    best_overhead = (min(pipeline_times) - min(memory_times)) / min(memory_times)
    print(f"{label}; steps/epoch={steps} repeats={args.repeats} threads={args.threads or 'tf'}")
    print(
        f"in-memory tensors : {1000 * memory:7.2f} ms/step  (epochs: "
        f"{', '.join(f'{1000 * t:.2f}' for t in memory_times)})"
    )
    print(
        f"tf.data pipeline  : {1000 * fed:7.2f} ms/step  (epochs: "
        f"{', '.join(f'{1000 * t:.2f}' for t in pipeline_times)})"
    )
    replay = statistics.median(replay_times)
    print(
        f"same, via iterator: {1000 * replay:7.2f} ms/step  (epochs: "
        f"{', '.join(f'{1000 * t:.2f}' for t in replay_times)})"
    )
    print(
        f"pipeline alone    : {1000 * statistics.median(data_times):7.2f} ms/batch "
        f"({100 * statistics.median(data_times) / memory:.1f}% of a step, before overlap)"
    )
    print(
        f"pipeline overhead : {100 * overhead:+.1f}% of the step time (medians), "
        f"{100 * best_overhead:+.1f}% (fastest epochs); goal <= 5%"
    )
    paired = statistics.median(
        (fed_t - mem_t) / mem_t for fed_t, mem_t in zip(pipeline_times, memory_times, strict=True)
    )
    print(
        f"paired per repeat : {100 * paired:+.1f}% (median over repeats of the fed epoch against "
        f"the in-memory epoch just before it: robust to the machine's drift); goal <= 5%"
    )
    print(
        f"  of which the pipeline's work (vs the same batches via an iterator): "
        f"{100 * (fed - replay) / memory:+.1f}% (medians), "
        f"{100 * (min(pipeline_times) - min(replay_times)) / min(memory_times):+.1f}% (fastest)"
    )


if __name__ == "__main__":
    main()
