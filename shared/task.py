"""The contract between the spine (`shared/`) and a task package (`suites/<task>/`).

A task supplies data, a model, its evaluation and its serving module; the spine supplies
configuration, distribution, the training loop, checkpoints, resumption, the evaluation files,
the export writer, `predict`, `bench-export`, the demo and the CLI. Task packages are found
through the `lstm_suite.tasks` entry points (`pyproject.toml`), so adding a task never touches
the spine: write `suites/<task>/` with the same six files as the others and add one entry point.

Every suite has the same files with the same jobs:

    config.py    DataConfig and ModelConfig (dataclasses; every key commented)
    data.py      readers of the supported formats and the tf.data pipelines
    model.py     the Keras model (layers registered serializable)
    serving.py   the export's `ServingModule` (raw inputs in, answers out, all in the graph)
    task.py      the `Task` subclass: this contract and nothing else
    train.py     `python -m suites.<task>.train` == `lstm-suite train <task>`

Run directory layout (created by the spine):

    config.yaml            the resolved config
    artifacts/             task-made files: tokenizer models, vocabularies, feature statistics
    checkpoints/           best.keras (by the monitored metric) and last.keras
    backup/                resumption state
    logs/, history.csv     TensorBoard and one CSV row per epoch
    metrics.json           evaluation results, one key per split
    eval/<split>/          metrics.json, predictions.tsv and the task's plots
    exports/               SavedModels
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import keras
    import numpy as np
    import tensorflow as tf

    from shared.serving import LoadedExport, ServingModule

ENTRY_POINTS = "lstm_suite.tasks"
_REGISTRY: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: makes a task available under `cls.name` (also without an entry point)."""
    if not getattr(cls, "name", None):
        raise ValueError(f"{cls.__qualname__} must set a class attribute `name`")
    _REGISTRY[cls.name] = cls
    return cls


def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINTS)}


def available_tasks() -> list[str]:
    """Names of the installed tasks (entry points) and of any task registered in this process."""
    return sorted(set(_REGISTRY) | set(_entry_points()))


def get_task(name: str) -> type[Task]:
    """The task class called `name`, loading its entry point if needed.

    Raises:
        UsageError: no such task.
    """
    from shared.errors import UsageError

    if name not in _REGISTRY:
        point = _entry_points().get(name)
        if point is not None:
            register_task(point.load())
    if name not in _REGISTRY:
        raise UsageError(f"unknown task {name!r} (known: {', '.join(available_tasks())})")
    return _REGISTRY[name]


@dataclasses.dataclass
class Evaluation:
    """What `Task.evaluate` returns; the spine writes it to `run_dir/eval/<split>/`.

    Attributes:
        metrics: the figures (`metrics.json` of the split and of the run).
        ids: one identifier per example (a file name, an utterance id, a line number).
        references: the expected answer per example, as text.
        hypotheses: decoder name -> the answer per example (one column each in
            `predictions.tsv`; a task with one decoder uses one name, e.g. "predicted").
        columns: further per-example columns (e.g. "speaker", "probability").
        details: further JSON-serialisable results stored under "details" in the split's
            `metrics.json` (e.g. a confusion matrix, sacreBLEU signatures).
        plots: file name -> function writing that file (e.g. "confusion.png").
    """

    metrics: dict[str, float]
    ids: list[str] = dataclasses.field(default_factory=list)
    references: list[str] = dataclasses.field(default_factory=list)
    hypotheses: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    columns: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    plots: dict[str, Callable[[Path], None]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Demo:
    """What `lstm-suite demo` runs for a task, and what it asks the export.

    Attributes:
        config: the demo config, relative to the repository's `configs/` folder.
        metric: key of `Evaluation.metrics` shown in the demo table.
        label: how the table names that metric.
        inputs: (task instance, scratch folder) -> inputs for `predict`.
        default: run by `lstm-suite demo` without `--task`.
        order: position in the demo's table (ascending).
    """

    config: str
    metric: str
    label: str
    inputs: Callable[[Task, Path], list[str]]
    default: bool = True
    order: int = 0


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
    demo: ClassVar[Demo | None] = None

    def __init__(self, config: Any, run_dir: str | Path):
        self.config = config
        self.run_dir = Path(run_dir)
        self.artifacts_dir = self.run_dir / "artifacts"

    # -- data -------------------------------------------------------------------------------
    def prepare(self) -> None:  # noqa: B027 - optional hook, deliberately not abstract
        """Builds artifacts from the training data into `artifacts_dir` (idempotent).

        E.g. trains a SentencePiece model, computes feature statistics. Called before
        `build_model` in train, evaluate and export; must skip work already done.
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
        """Returns an uncompiled Keras model (built inside the strategy scope by the spine).

        Every custom layer, loss and metric must be registered serializable, so checkpoints load
        with `keras.saving.load_model` alone once the task's modules are imported.
        """

    def callbacks(self) -> list[Any]:
        """Keras callbacks the task adds to every `fit` (e.g. unfreezing layers after N epochs).

        They run after the spine's own (checkpoints, backup); the default adds none.
        """
        return []

    def loss(self) -> Any:
        """The loss given to `compile` (None when the model adds its own, e.g. CTC)."""
        return None

    def metrics(self) -> list[Any]:
        """Metrics given to `compile`."""
        return []

    # -- after training ---------------------------------------------------------------------
    @abc.abstractmethod
    def evaluate(self, model: keras.Model, split: str) -> Evaluation:
        """Scores `model` on `split` ("validation", "test"); the spine writes the files."""

    def evaluate_files(self, model: keras.Model, source: Path, reference: Path) -> Evaluation:
        """Scores `model` on any pair of line-aligned files (inputs, expected answers).

        Backs `lstm-suite evaluate --src FILE --ref FILE`; a task that cannot score files keeps
        this default, which refuses.
        """
        from shared.errors import UsageError

        raise UsageError(f"the {self.name} task cannot score files given with --src/--ref")

    def decode_inputs(self, model: keras.Model, inputs: list[str], decoder: str) -> Any:
        """Answers raw `inputs` with the checkpoint and a decoder that is not in the export.

        Backs `lstm-suite predict --run-dir DIR --decoder NAME`: returns a
        `shared.serving.Prediction` (one line per usable input, one message per failed one).
        A task whose decoders all live in its export keeps this default, which refuses.
        """
        from shared.errors import UsageError

        raise UsageError(
            f"the {self.name} task decodes in its export only: drop --decoder "
            "(predict --export DIR, or --run-dir DIR for its newest export)"
        )

    def combine(self, model: keras.Model, others: list[tuple[Task, keras.Model]]) -> Any:
        """This run's model and other runs' `(task, model)` pairs as one predictor (an ensemble).

        Backs `lstm-suite evaluate|export --with-run DIR`: what it returns is given to
        `evaluate` and `serving_module` in place of a model. A task that cannot combine runs
        keeps this default, which refuses.
        """
        from shared.errors import UsageError

        raise UsageError(f"the {self.name} task cannot combine runs (--with-run)")

    @abc.abstractmethod
    def serving_module(self, model: keras.Model) -> ServingModule:
        """The export: a `shared.serving.ServingModule` with `serving_default` on raw inputs."""

    # -- using an export (class methods: they need the export only) ------------------------
    @classmethod
    def parse_input(cls, text: str, export: LoadedExport) -> Any:
        """One command-line input -> one item of a request (default: the text itself).

        Raises:
            InputError: the input cannot be used (e.g. an unreadable audio file).
        """
        return text

    @classmethod
    def request(cls, items: list[Any], export: LoadedExport) -> dict[str, Any]:
        """Items -> the keyword arguments of the signature (default: `text` strings)."""
        import tensorflow as tf

        return {"text": tf.constant(items, tf.string)}

    @classmethod
    @abc.abstractmethod
    def format_outputs(
        cls, inputs: list[str], outputs: dict[str, np.ndarray], export: LoadedExport
    ) -> list[str]:
        """The signature's outputs -> one printable line per input."""

    @classmethod
    def item_seconds(cls, item: Any, export: LoadedExport) -> float | None:
        """Seconds of audio in an item (for a real-time factor); None for text tasks."""
        return None
