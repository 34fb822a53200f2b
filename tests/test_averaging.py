"""Checkpoint averaging: the epoch checkpoints (kept, pruned, resumed) and `lstm-suite average`."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from launcher import CrashAtStep, SimulatedCrashError
from toy_fast import FAST as TOY_FAST
from toy_fast import TINY

from shared import cli
from shared.averaging import average_arrays, average_checkpoints
from shared.config import load_config
from shared.errors import ConfigError, UsageError
from shared.files import save_model_atomic
from shared.runs import load_checkpoint
from shared.task import get_task
from shared.training import loop

FAST = [*TOY_FAST, "training.backup_every_steps=null"]


def config(*overrides: str):
    return load_config(TINY, overrides=[*FAST, *overrides])


@keras.saving.register_keras_serializable(package="test_averaging")
class Counter(keras.layers.Layer):
    """Identity with an integer variable (like an optimizer's or a layer's step counter)."""

    def build(self, input_shape):
        self.count = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False, name="count"
        )

    def call(self, x):
        return x


def small_model(seed: int) -> keras.Model:
    """Dense + Counter + Dense with weights (and the counter) set from `seed`."""
    inputs = keras.Input((3,))
    x = keras.layers.Dense(4, name="dense")(inputs)
    x = Counter(name="counter")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(x))
    rng = np.random.default_rng(seed)
    for v in model.weights:
        if np.issubdtype(np.dtype(v.dtype), np.floating):
            v.assign(rng.normal(size=v.shape).astype(v.dtype))
        else:
            v.assign(np.full(v.shape, seed, dtype=v.dtype))
    return model


def numpy_weights(model: keras.Model) -> list[np.ndarray]:
    return [np.asarray(keras.ops.convert_to_numpy(v)) for v in model.weights]


def test_average_checkpoints_is_the_numpy_mean_of_the_newest_n(tmp_path):
    folder = tmp_path / "checkpoints"
    saved = {}
    for epoch in (1, 2, 3, 10):  # 10 sorts after 3 by number, not by name
        model = small_model(seed=epoch)
        save_model_atomic(model, folder / f"epoch-{epoch}.keras")
        saved[epoch] = numpy_weights(model)
    assert any(not np.issubdtype(w.dtype, np.floating) for w in saved[1])  # the counter

    out = average_checkpoints(tmp_path, last=3)
    assert out == folder / "average.keras"
    averaged = numpy_weights(keras.saving.load_model(out))
    for i, value in enumerate(averaged):
        if np.issubdtype(value.dtype, np.floating):
            expected = np.mean([saved[e][i] for e in (2, 3, 10)], axis=0)
            np.testing.assert_allclose(value, expected, rtol=1e-6, atol=1e-7)
        else:
            np.testing.assert_array_equal(value, saved[10][i])

    every = numpy_weights(keras.saving.load_model(average_checkpoints(tmp_path, name="all4")))
    np.testing.assert_allclose(
        every[0], np.mean([saved[e][0] for e in saved], axis=0), rtol=1e-6, atol=1e-7
    )


def test_average_arrays_rejects_different_models():
    with pytest.raises(ValueError, match="different variables"):
        average_arrays([[np.zeros(3, np.float32)], [np.zeros(4, np.float32)]])
    with pytest.raises(ValueError, match="no checkpoints"):
        average_arrays([])


@pytest.mark.parametrize(
    ("last", "name", "message"),
    [
        (5, "average", "holds only 2 epoch checkpoints"),
        (0, "average", "must be at least 1"),
        (None, "best", "the training loop's"),
        (None, "epoch-3", "the training loop's"),
        (None, "../x", "a checkpoint name is"),
    ],
)
def test_average_checkpoints_bad_requests(tmp_path, last, name, message):
    for epoch in (1, 2):
        save_model_atomic(small_model(epoch), tmp_path / "checkpoints" / f"epoch-{epoch}.keras")
    with pytest.raises(UsageError, match=message):
        average_checkpoints(tmp_path, last=last, name=name)


def test_average_without_epoch_checkpoints_names_the_key(tmp_path):
    with pytest.raises(UsageError, match="training.keep_epoch_checkpoints"):
        average_checkpoints(tmp_path)


def test_keep_epoch_checkpoints_is_range_checked():
    with pytest.raises(ConfigError, match="training.keep_epoch_checkpoints"):
        config("training.keep_epoch_checkpoints=-1")


def epoch_files(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").glob("epoch-*.keras"))


def test_pruning_keeps_the_newest_n_and_they_survive_a_resume(tmp_path):
    toy = get_task("toy")
    cfg = config("training.epochs=4", "training.keep_epoch_checkpoints=2")
    whole = tmp_path / "whole"
    loop.train(toy, cfg, whole)
    assert epoch_files(whole) == ["epoch-3.keras", "epoch-4.keras"]
    last = numpy_weights(load_checkpoint(whole, "last"))
    for a, b in zip(numpy_weights(load_checkpoint(whole, "epoch-4")), last, strict=True):
        np.testing.assert_array_equal(a, b)  # epoch-4 is the final model

    cfg = config("training.epochs=4", "training.keep_epoch_checkpoints=4")
    broken = tmp_path / "broken"
    with pytest.raises(SimulatedCrashError):  # 4 steps per epoch: in epoch 3
        loop.train(toy, cfg, broken, callbacks=[CrashAtStep(10)])
    assert epoch_files(broken) == ["epoch-1.keras", "epoch-2.keras"]
    before = {n: (broken / "checkpoints" / n).read_bytes() for n in epoch_files(broken)}
    resumed = loop.train(toy, cfg, broken)
    assert resumed.initial_epoch == 2
    assert epoch_files(broken) == [f"epoch-{e}.keras" for e in (1, 2, 3, 4)]
    for name, content in before.items():  # the first attempt's files, untouched
        assert (broken / "checkpoints" / name).read_bytes() == content


def test_cli_average_then_evaluate_and_export_it(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["--run-dir", str(run)]
    overrides = [*FAST, "training.epochs=3", "training.keep_epoch_checkpoints=3"]
    train = ["train", "toy", "--config", str(TINY), *args]
    assert cli.main([*train, *[a for o in overrides for a in ("--set", o)]]) == 0
    capsys.readouterr()
    assert cli.main(["average", "toy", *args, "--last", "2"]) == 0
    written = Path(capsys.readouterr().out.strip())
    assert written == run / "checkpoints" / "average.keras"
    mean = numpy_weights(keras.saving.load_model(written))
    epochs = [numpy_weights(load_checkpoint(run, f"epoch-{e}")) for e in (2, 3)]
    for i, value in enumerate(mean):
        if np.issubdtype(value.dtype, np.floating):
            expected = (epochs[0][i].astype(np.float64) + epochs[1][i]) / 2
            np.testing.assert_allclose(value, expected, rtol=1e-6, atol=1e-7)

    assert cli.main(["evaluate", "toy", *args, "--split", "test", "--checkpoint", "average"]) == 0
    out = tmp_path / "export"
    assert cli.main(["export", "toy", *args, "--out", str(out), "--checkpoint", "average"]) == 0
    assert (out / "saved_model.pb").exists()

    assert cli.main(["average", "toy", *args, "--last", "9"]) == 2
    assert "holds only 3 epoch checkpoints" in capsys.readouterr().err
