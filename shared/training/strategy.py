"""Distribution strategy, cluster and precision set-up from `RuntimeConfig`.

    default       tf.distribute's default strategy (one device, no replication)
    one_device    OneDeviceStrategy on `runtime.devices[0]` (default: the first GPU, else CPU)
    mirrored      MirroredStrategy over `runtime.devices` (default: all GPUs of this machine)
    multi_worker  MultiWorkerMirroredStrategy; the cluster comes from `runtime.workers` +
                  `runtime.task_index`, else from the TF_CONFIG environment variable
    tpu           TPUStrategy on `runtime.tpu`

The batch size in the config is the GLOBAL batch (summed over replicas); `tf.distribute` splits
each global batch across replicas, so per-replica batch = global / num_replicas_in_sync.
"""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf


class StrategyError(RuntimeError):
    """The runtime section cannot be turned into a working strategy."""


def configure_threads(runtime: Any) -> None:
    """Applies `runtime.intra_op_threads` / `inter_op_threads` (before TF starts running ops)."""
    try:
        if runtime.intra_op_threads:
            tf.config.threading.set_intra_op_parallelism_threads(runtime.intra_op_threads)
        if runtime.inter_op_threads:
            tf.config.threading.set_inter_op_parallelism_threads(runtime.inter_op_threads)
    except RuntimeError:  # TF already initialised (e.g. in a notebook): keep its pools
        pass


def set_precision(runtime: Any) -> None:
    """Sets the global Keras dtype policy from `runtime.mixed_precision`."""
    import keras

    policy = "float32" if runtime.mixed_precision == "none" else runtime.mixed_precision
    keras.mixed_precision.set_global_policy(policy)


def cluster_tf_config(runtime: Any) -> dict[str, Any] | None:
    """The TF_CONFIG dict implied by `runtime.workers`/`task_index`, else the environment's."""
    if runtime.workers:
        return {
            "cluster": {"worker": list(runtime.workers)},
            "task": {"type": "worker", "index": runtime.task_index},
        }
    env = os.environ.get("TF_CONFIG")
    if not env:
        return None
    try:
        return json.loads(env)
    except json.JSONDecodeError as err:
        raise StrategyError(f"TF_CONFIG is not valid JSON: {err}") from err


_STRATEGIES: dict[tuple, tf.distribute.Strategy] = {}


def make_strategy(runtime: Any) -> tf.distribute.Strategy:
    """Creates the strategy named by `runtime.strategy` (see module docstring).

    Must be called before any other TF op runs for `multi_worker` and `tpu`. Strategies are
    cached per process and configuration: two MirroredStrategy objects over the same devices
    in one process can hand out clashing collective instance keys (a second `train` in a
    notebook or a test would fail with "Shape mismatch in the collective instance").

    Raises:
        StrategyError: missing cluster/TPU information or unknown devices.
    """
    if runtime.strategy == "default":
        return _new_strategy(runtime)
    key = (
        runtime.strategy,
        tuple(runtime.devices),
        tuple(runtime.workers),
        runtime.task_index,
        runtime.communication,
        runtime.tpu,
        os.environ.get("TF_CONFIG"),
    )
    if key not in _STRATEGIES:
        _STRATEGIES[key] = _new_strategy(runtime)
    return _STRATEGIES[key]


def _new_strategy(runtime: Any) -> tf.distribute.Strategy:
    name = runtime.strategy
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        device = runtime.devices[0] if runtime.devices else (gpus[0].name if gpus else "/cpu:0")
        return tf.distribute.OneDeviceStrategy(device)
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=list(runtime.devices) or None)
    if name == "multi_worker":
        tf_config = cluster_tf_config(runtime)
        if not tf_config or not tf_config.get("cluster"):
            raise StrategyError(
                "runtime.strategy=multi_worker needs a cluster: set runtime.workers and "
                "runtime.task_index, or the TF_CONFIG environment variable"
            )
        os.environ["TF_CONFIG"] = json.dumps(tf_config)
        implementation = {
            "auto": tf.distribute.experimental.CommunicationImplementation.AUTO,
            "ring": tf.distribute.experimental.CommunicationImplementation.RING,
            "nccl": tf.distribute.experimental.CommunicationImplementation.NCCL,
        }[runtime.communication]
        options = tf.distribute.experimental.CommunicationOptions(implementation=implementation)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=runtime.tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise StrategyError(f"runtime.strategy: unknown strategy {name!r}")


def per_replica_batch_size(global_batch_size: int, strategy: tf.distribute.Strategy) -> int:
    """Global batch / replicas; raises StrategyError if it does not divide evenly."""
    replicas = strategy.num_replicas_in_sync
    if global_batch_size % replicas:
        raise StrategyError(
            f"training.global_batch_size={global_batch_size} is not divisible by the "
            f"{replicas} replicas of the {type(strategy).__name__}"
        )
    return global_batch_size // replicas


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """True for a MultiWorkerMirroredStrategy spanning more than one worker."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and bool(
        strategy.extended._in_multi_worker_mode()  # noqa: SLF001 - no public accessor
    )


def worker_identity(strategy: tf.distribute.Strategy) -> tuple[bool, int]:
    """(is_chief, task index). The chief writes shared files; others write worker copies."""
    if not is_multi_worker(strategy):
        return True, 0
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id or 0
    cluster = resolver.cluster_spec().as_dict()
    is_chief = task_type == "chief" or (
        task_type == "worker" and task_id == 0 and "chief" not in cluster
    )
    return is_chief, int(task_id) + (1 if task_type == "worker" and "chief" in cluster else 0)
