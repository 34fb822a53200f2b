"""training.init_from: a run starts from another run's trained weights (fine-tuning)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from toy_fast import FAST as TOY_FAST
from toy_fast import TINY

from shared.config import load_config
from shared.errors import ConfigError
from shared.runs import load_checkpoint
from shared.task import get_task
from shared.training import loop
from shared.training.warm_start import initialise_from
from suites.toy.model import build_classifier

FAST = [*TOY_FAST, "training.backup_every_steps=null", "training.epochs=1"]


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("warm") / "source"
    loop.train(get_task("toy"), load_config(TINY, overrides=FAST), run_dir)
    return run_dir


def _values(model: keras.Model) -> dict[str, np.ndarray]:
    return {v.path: keras.ops.convert_to_numpy(v) for v in model.trainable_variables}


class _FirstWeights(keras.callbacks.Callback):
    """The model's trainable values when training begins (after any initialisation)."""

    def on_train_begin(self, logs=None):
        self.values = self.values if hasattr(self, "values") else _values(self.model)


def test_a_fine_tuning_run_starts_from_the_source_weights(source_run, tmp_path):
    config = load_config(TINY, overrides=[*FAST, f"training.init_from={source_run}"])
    first = _FirstWeights()
    loop.train(get_task("toy"), config, tmp_path / "tuned", callbacks=[first])
    source = _values(load_checkpoint(source_run))
    assert first.values.keys() == source.keys()
    for path, value in source.items():
        np.testing.assert_array_equal(first.values[path], value, err_msg=path)
    # Without init_from the same config starts elsewhere (the check above can fail).
    fresh = _FirstWeights()
    loop.train(get_task("toy"), load_config(TINY, overrides=FAST), tmp_path / "fresh",
               callbacks=[fresh])  # fmt: skip
    assert not np.array_equal(fresh.values["logits/kernel"], source["logits/kernel"])


def test_only_variables_of_the_same_path_and_shape_are_copied(source_run):
    config = load_config(TINY, overrides=FAST)
    model = build_classifier(config.model.embedding_dim, config.model.units + 4, 0.0)
    model(np.ones((1, 3), "int32"))
    before = _values(model)
    copied, kept = initialise_from(model, source_run)
    # The LSTM is wider than the source's, and so is the logits kernel (its bias, of the same
    # shape, is not copied alone: a layer is copied whole or not at all).
    assert copied == ["embedding/embeddings"]
    assert set(kept) == set(before) - {"embedding/embeddings"}
    source = _values(load_checkpoint(source_run))
    after = _values(model)
    np.testing.assert_array_equal(after["embedding/embeddings"], source["embedding/embeddings"])
    for path in kept:
        np.testing.assert_array_equal(after[path], before[path], err_msg=path)


def test_a_missing_or_unrelated_source_is_a_config_error(source_run, tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="other")])
    with pytest.raises(ConfigError, match="training.init_from: .* is neither"):
        initialise_from(model, tmp_path / "nothing")
    with pytest.raises(ConfigError, match="shares no trainable variable"):
        initialise_from(model, source_run)
