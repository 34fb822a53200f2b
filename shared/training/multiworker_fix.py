"""THE workaround for tensorflow#72388 (keras#20585): Keras 3 `fit` under tf.distribute strategies.

Keras 3.x (checked on 3.15 + TF 2.21) breaks or perturbs `fit` in two places of
`keras/src/backend/tensorflow/trainer.py`:

1. `TensorFlowTrainer._maybe_symbolic_build` pulls one batch from `fit`'s iterator to build the
   model (under any strategy). With >1 worker it then passes the `PerReplica` batch to
   `strategy.reduce("MEAN", batch, axis=None)`, which fails with "Attempt to convert a value
   (PerReplica:{...}) with an unsupported type ... to a Tensor" (tensorflow#72388). Under every
   strategy, the extra iterator also advances the dataset's seeded shuffle, so a mirrored run
   trains on another data order than a single-device run with the same seed. Only shapes and
   dtypes are needed: we build from the dataset's `element_spec` and never touch the data.
2. `reduce_per_replica(..., reduction="mean")` (used on the step's logs) calls
   `strategy.reduce("MEAN", v, axis=0)` in multi-worker mode: for the scalar losses/metrics in
   the logs axis 0 does not exist, and for vector metrics it would average the vector itself.
   The single-worker branch averages across replicas only; we do the same with `axis=None`.

Canaries in `tests/test_strategy.py` run the unpatched paths (two workers; mirrored on two CPU
devices) and FAIL with a message telling you to delete this module once upstream is fixed.
Use it as a context manager around `fit`/`evaluate`; it restores Keras' originals on exit and is
a no-op without a distribution strategy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import tensorflow as tf
from keras.src.backend.tensorflow import trainer as tf_trainer

UPSTREAM_ISSUE = "https://github.com/tensorflow/tensorflow/issues/72388"


def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    """Keras' method, building from the dataset's element_spec instead of pulling a batch."""
    if self._distribute_strategy is None:
        return
    if iterator is not None:
        data_batch = iterator.data_adapter.get_tf_dataset().element_spec
    with self.distribute_strategy.scope():
        self._symbolic_build(data_batch=data_batch)


def _make_reduce_per_replica(original):
    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("mean", "auto") and tf_trainer._collective_all_reduce_multi_worker(
            strategy
        ):
            return tf.nest.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    return reduce_per_replica


@contextlib.contextmanager
def multi_worker_fit_fix() -> Iterator[None]:
    """Patches Keras' TF trainer for distributed `fit` while the context is active."""
    original_reduce = tf_trainer.reduce_per_replica
    original_build = tf_trainer.TensorFlowTrainer._maybe_symbolic_build
    tf_trainer.reduce_per_replica = _make_reduce_per_replica(original_reduce)
    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build
    try:
        yield
    finally:
        tf_trainer.reduce_per_replica = original_reduce
        tf_trainer.TensorFlowTrainer._maybe_symbolic_build = original_build
