"""The contract between the training spine (`shared/`) and a task package (`suites/<task>/`).

A task supplies data, a model, metrics, evaluation and export; the spine supplies configuration,
distribution, the training loop, checkpoints, resumption and the CLI. A task package registers its
`Task` subclass in `suites/<task>/task.py` with `@register_task`; the CLI imports
`suites.<name>.task` on demand, so adding a task never touches the spine.

Run directory layout (created by the spine, used by tasks):

    run_dir/config.yaml        the resolved config
    run_dir/artifacts/         task-made files: tokenizer models, vocabularies, feature statistics
    run_dir/checkpoints/       best.keras (by the monitored metric) and last.keras
    run_dir/backup/            BackupAndRestore state for resuming a killed run
    run_dir/logs/              TensorBoard
    run_dir/history.csv        one row per epoch
    run_dir/metrics.json       evaluation results, one key per split
    run_dir/eval/              hypotheses, confusion matrices, plots written by `evaluate`
    run_dir/exports/           SavedModels
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

_REGISTRY: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: makes a task available to the CLI under `cls.name`."""
    if not getattr(cls, "name", None):
        raise ValueError(f"{cls.__qualname__} must set a class attribute `name`")
    _REGISTRY[cls.name] = cls
    return cls


def available_tasks() -> list[str]:
    """Names of the tasks shipped in `suites/` and `shared/tasks/` (plus any registered)."""
    import pkgutil

    import shared.tasks
    import suites

    names = set(_REGISTRY)
    for package in (suites, shared.tasks):
        names.update(m.name for m in pkgutil.iter_modules(package.__path__) if m.name != "__init__")
    return sorted(names)


def get_task(name: str) -> type[Task]:
    """Returns the task class registered as `name`, importing `suites.<name>.task` if needed."""
    import importlib

    if name not in _REGISTRY:
        for module in (f"suites.{name}.task", f"shared.tasks.{name}"):
            try:
                importlib.import_module(module)
                break
            except ModuleNotFoundError as err:
                if err.name not in (module, module.rsplit(".", 1)[0]):
                    raise
    if name not in _REGISTRY:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(available_tasks())})")
    return _REGISTRY[name]


class Task(abc.ABC):
    """One learning task. Subclasses set `name`, `DataConfig` and `ModelConfig` (dataclasses).

    Args:
        config: the resolved experiment config (`shared.config.ExperimentConfig`); `config.data` is
            an instance of `DataConfig` and `config.model` of `ModelConfig`.
        run_dir: the run directory (see module docstring).
    """

    name: ClassVar[str]
    DataConfig: ClassVar[type]
    ModelConfig: ClassVar[type]

    def __init__(self, config: Any, run_dir: str | Path):
        self.config = config
        self.run_dir = Path(run_dir)
        self.artifacts_dir = self.run_dir / "artifacts"

    # -- data -------------------------------------------------------------------------------
    def prepare(self) -> None:  # noqa: B027 - optional hook, deliberately not abstract
        """Builds artifacts from the training data into `artifacts_dir` (idempotent).

        E.g. trains a SentencePiece model, computes feature statistics, caches features.
        Called once before `build_model` in train/evaluate/export; must skip work already done.
        The default does nothing.
        """

    @abc.abstractmethod
    def datasets(self, global_batch_size: int) -> tuple[tf.data.Dataset, tf.data.Dataset | None]:
        """Returns (train, validation) datasets of batched `(inputs, targets)` for `Model.fit`.

        The training set is shuffled with `config.seed`; batches hold `global_batch_size` items
        (the spine divides by the number of replicas itself).
        """

    # -- model ------------------------------------------------------------------------------
    @abc.abstractmethod
    def build_model(self) -> keras.Model:
        """Returns an uncompiled Keras model (built inside the strategy scope by the spine)."""

    def loss(self) -> Any:
        """The loss given to `compile` (None when the model adds its own, e.g. CTC)."""
        return None

    def metrics(self) -> list[Any]:
        """Metrics given to `compile`."""
        return []

    def custom_objects(self) -> dict[str, Any]:
        """Extra objects needed to load a saved `.keras` model of this task."""
        return {}

    # -- after training ---------------------------------------------------------------------
    @abc.abstractmethod
    def evaluate(self, model: keras.Model, split: str) -> dict[str, float]:
        """Scores `model` on `split` ("validation", "test"); may write files to run_dir/eval."""

    @abc.abstractmethod
    def export(self, model: keras.Model, out_dir: Path) -> None:
        """Writes a SavedModel with a `serving_default` signature on raw inputs to `out_dir`.

        The spine passes a temporary directory and renames it into place once this returns.
        """

    @classmethod
    @abc.abstractmethod
    def predict(cls, export_dir: Path, inputs: list[str]) -> list[str]:
        """Loads the export with `tf.saved_model.load` alone; one printable line per input."""
