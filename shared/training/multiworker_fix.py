"""THE workaround for tensorflow#72388 (keras#20585): Keras 3 `fit` on MultiWorkerMirroredStrategy.

With >1 worker, Keras 3.x (checked on 3.15 + TF 2.21) breaks `fit` in two places of
`keras/src/backend/tensorflow/trainer.py`:

1. `TensorFlowTrainer._maybe_symbolic_build` peeks one distributed batch to build the model and
   passes the `PerReplica` batch to `strategy.reduce("MEAN", batch, axis=None)`; in multi-worker
   mode that converts the PerReplica to a tensor and fails with
   "Attempt to convert a value (PerReplica:{...}) with an unsupported type ... to a Tensor".
   Only the *shapes* of the batch are needed, so we use the first local replica's value.
2. `reduce_per_replica(..., reduction="mean")` (used on the step's logs) calls
   `strategy.reduce("MEAN", v, axis=0)`: for the scalar losses/metrics in the logs axis 0 does not
   exist, and for vector metrics it would average the vector itself. The non-multi-worker branch
   averages across replicas only; we do the same with `axis=None`.

`tests/test_strategy.py::test_multi_worker_fit_*` runs an unpatched `fit` on two workers first and
FAILS with a message telling you to delete this module once upstream works without it.
Use it as a context manager around `fit`/`evaluate` (the training loop does so only for
multi-worker strategies); it restores Keras' originals on exit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import tensorflow as tf
from keras.src.backend.tensorflow import trainer as tf_trainer

UPSTREAM_ISSUE = "https://github.com/tensorflow/tensorflow/issues/72388"


def _local_first(value):
    if isinstance(value, tf.distribute.DistributedValues):
        return value.values[0]
    return value


def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    """Copy of Keras' method that builds from the first replica's batch instead of reducing it."""
    if self._distribute_strategy is None:
        return
    if iterator is not None:
        for _, _, it in iterator:
            data_batch = tf.nest.map_structure(_local_first, next(it))
            break
    with self.distribute_strategy.scope():
        self._symbolic_build(data_batch=data_batch)


def _make_reduce_per_replica(original):
    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("mean", "auto") and tf_trainer._collective_all_reduce_multi_worker(
            strategy
        ):
            return tf.nest.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None), values
            )
        return original(values, strategy, reduction)

    return reduce_per_replica


@contextlib.contextmanager
def multi_worker_fit_fix() -> Iterator[None]:
    """Patches Keras' TF trainer for multi-worker `fit` while the context is active."""
    original_reduce = tf_trainer.reduce_per_replica
    original_build = tf_trainer.TensorFlowTrainer._maybe_symbolic_build
    tf_trainer.reduce_per_replica = _make_reduce_per_replica(original_reduce)
    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build
    try:
        yield
    finally:
        tf_trainer.reduce_per_replica = original_reduce
        tf_trainer.TensorFlowTrainer._maybe_symbolic_build = original_build
