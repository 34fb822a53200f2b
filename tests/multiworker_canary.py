"""One worker of the tensorflow#72388 canary (run by tests/test_strategy.py, not by pytest).

Runs Keras `fit` under MultiWorkerMirroredStrategy WITHOUT `shared.training.multiworker_fix`
and prints one JSON line: {"ok": true} if fit worked, else {"ok": false, "error": "..."}.
TF_CONFIG comes from the environment.
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def main() -> None:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).random((32, 4), dtype=np.float32)
    y = (x.sum(axis=1) > 2).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    with strategy.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile("sgd", "mse")
    try:
        model.fit(ds, epochs=1, verbose=0)
        result = {"ok": True}
    except Exception as err:  # noqa: BLE001 - report whatever breaks
        result = {"ok": False, "error": f"{type(err).__name__}: {err}"[:500]}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
