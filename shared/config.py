"""Experiment configuration: YAML files -> typed, validated dataclasses.

An experiment config has six top-level keys, mirroring TF Model Garden's task + trainer + runtime:

    task: NAME             # which task package (shared.task.get_task)
    seed: 42               # seeds Python, NumPy, TF and Keras, and the task's shuffling
    data: {...}            # the task's DataConfig
    model: {...}           # the task's ModelConfig
    training: {...}        # TrainingConfig (below)
    runtime: {...}         # RuntimeConfig (below)

`load_config` validates everything on load: unknown keys (with the closest valid key suggested),
wrong types, missing required values, values outside a `Literal[...]`, non-finite floats (NaN,
inf: never valid) and values outside a field's declared range all raise `ConfigError` whose
message names the file and line (or the `--set` override) and the dotted key, e.g.
`configs/x.yaml:12: model.dropout: must be in [0, 1), got 1.5`.

Any config dataclass (spine or task section) states a field's valid range in its metadata with
`at_least`, `positive`, `fraction` or `in_range`; `None` always passes (an optional field), and a
list field's rule applies to each item:

    units: int = field(default=16, metadata=at_least(1))
    dropout: float = field(default=0.0, metadata=fraction())  # 0 <= x < 1
    learning_rate: float = field(default=1e-3, metadata=positive())

Composition: a file may start with `base: other.yaml` (a path relative to that file; the base may
name its own base). The file's keys are deep-merged over the base's (mappings key by key, any
other value replaces), `--set` overrides apply last, and every error still names the file and
line where the offending key was written. A cycle of bases is an error naming the files.

Paths: a relative `data.data_dir` written in a YAML file is resolved against the directory of
that file (of the base, if the key comes from a base); one given with `--data-dir` or
`--set data.data_dir=...` is resolved against the current working directory (as a shell user
expects). The saved `run_dir/config.yaml` holds the absolute path.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from shared.errors import ConfigError

__all__ = [
    "ConfigError",
    "ExperimentConfig",
    "Range",
    "RuntimeConfig",
    "TrainingConfig",
    "at_least",
    "diff_configs",
    "fraction",
    "in_range",
    "load_config",
    "parse_override",
    "positive",
    "save_config",
    "to_dict",
]

MISSING = dataclasses.MISSING
_YAML11_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
RANGE = "lstm_suite.range"  # the field-metadata key of a `Range`


# --------------------------------------------------------------------------------------------
# Declared ranges
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Range:
    """An interval of valid values; a bound of None is unbounded, `*_open` excludes the bound."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: float) -> bool:
        """True if `value` lies in the interval."""
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def describe(self) -> str:
        """`">= 1"`, `"> 0"` or `"in [0, 1)"`: what a valid value is."""
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {self.high}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"in {left}{self.low}, {self.high}{right}"


def in_range(
    low: float | None, high: float | None, *, low_open: bool = False, high_open: bool = False
) -> dict[str, Range]:
    """Field metadata: `low <= x <= high` (a bound of None: unbounded; `*_open`: excluded)."""
    return {RANGE: Range(low, high, low_open, high_open)}


def at_least(low: float) -> dict[str, Range]:
    """Field metadata: `x >= low`."""
    return in_range(low, None)


def positive() -> dict[str, Range]:
    """Field metadata: `x > 0`."""
    return in_range(0, None, low_open=True)


def fraction() -> dict[str, Range]:
    """Field metadata: `0 <= x < 1` (a rate such as dropout)."""
    return in_range(0, 1, high_open=True)


def _check_field(value: Any, f: dataclasses.Field, key: str, where: _Where) -> None:
    """Finite floats everywhere, and the field's declared `Range` (each item of a list)."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_field(item, f, f"{key}[{i}]", where)
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where(key)}: {key}: must be a finite number, got {value}")
    rule = f.metadata.get(RANGE)
    if rule is None or value is None or isinstance(value, bool):
        return
    if isinstance(value, (int, float)) and not rule.contains(value):
        raise ConfigError(f"{where(key)}: {key}: must be {rule.describe()}, got {value}")


SEED_RANGE = in_range(0, 2**32 - 1)


# --------------------------------------------------------------------------------------------
# Spine sections
# --------------------------------------------------------------------------------------------
@dataclass
class TrainingConfig:
    """How to fit: optimisation, schedule, checkpoints, stopping, determinism."""

    epochs: int = field(default=10, metadata=at_least(1))  # number of passes over the training set
    global_batch_size: int = field(
        default=32, metadata=at_least(1)
    )  # examples per step summed over all replicas
    steps_per_epoch: int | None = field(
        default=None, metadata=at_least(1)
    )  # None: one pass over the training set
    validation_steps: int | None = field(
        default=None, metadata=at_least(1)
    )  # None: the whole validation set
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    learning_rate: float = field(default=1e-3, metadata=positive())  # peak learning rate
    lr_schedule: Literal["constant", "cosine", "exponential"] = "constant"
    warmup_steps: int = field(
        default=0, metadata=at_least(0)
    )  # linear warm-up from 0 (constant and cosine schedules only)
    decay_steps: int | None = field(
        default=None, metadata=at_least(1)
    )  # cosine/exponential; None: all steps after warm-up
    decay_rate: float = field(
        default=0.5, metadata=in_range(0, 1, low_open=True)
    )  # exponential: factor applied every `decay_steps`
    min_lr_ratio: float = field(
        default=0.0, metadata=in_range(0, 1)
    )  # cosine: final learning rate as a fraction of the peak
    weight_decay: float = field(default=0.0, metadata=at_least(0))  # adamw (decoupled) weight decay
    momentum: float = field(default=0.0, metadata=fraction())  # sgd momentum
    clipnorm: float | None = field(
        default=None, metadata=positive()
    )  # clip each gradient tensor's norm
    global_clipnorm: float | None = field(
        default=None, metadata=positive()
    )  # clip the global norm of all gradients
    monitor: str = "val_loss"  # metric for best checkpoint / early stopping, e.g. val_accuracy
    monitor_mode: Literal["auto", "min", "max"] = "auto"  # auto: max for acc/auc/bleu, else min
    early_stopping_patience: int | None = field(
        default=None, metadata=at_least(1)
    )  # epochs without improvement; None: off
    backup_every_steps: int | None = field(
        default=100, metadata=at_least(1)
    )  # also back up mid-epoch every N steps; None: epochs
    keep_epoch_checkpoints: int = field(
        default=0, metadata=at_least(0)
    )  # keep the last N epochs' checkpoints (epoch-E.keras) for `lstm-suite average`; 0: off
    init_from: str | None = None  # fine-tuning: a run directory (its best checkpoint) or a
    # .keras file (relative: to the current directory); each layer whose variables all match
    # the source's (same path and shape) starts from its values, the others (e.g. an output
    # layer over another vocabulary) keep their initialisation
    deterministic: bool = False  # tf.config.experimental.enable_op_determinism (slower)
    progress: Literal["auto", "bar", "epoch", "none"] = "auto"  # auto: bar on a TTY
    tensorboard: bool = True  # write TensorBoard logs to run_dir/logs


@dataclass
class RuntimeConfig:
    """Where to run: distribution strategy, devices, cluster, precision, threads."""

    strategy: Literal["default", "one_device", "mirrored", "multi_worker", "tpu"] = "default"
    devices: list[str] = field(default_factory=list)  # e.g. ["/gpu:0", "/gpu:1"]; []: all
    workers: list[str] = field(default_factory=list)  # multi_worker "host:port"s; []: TF_CONFIG
    task_index: int | None = field(
        default=None, metadata=at_least(0)
    )  # this worker's index in `workers` (with `workers`)
    communication: Literal["auto", "ring", "nccl"] = "auto"  # multi_worker collectives
    tpu: str | None = None  # TPU name or grpc:// address; None: local / from the environment
    mixed_precision: Literal["none", "mixed_float16", "mixed_bfloat16"] = "none"
    intra_op_threads: int | None = field(
        default=None, metadata=at_least(0)
    )  # TF thread pools; None: TF's default
    inter_op_threads: int | None = field(default=None, metadata=at_least(0))  # TF inter-op threads


@dataclass
class ExperimentConfig:
    """One experiment. `data`/`model` are instances of the task's DataConfig/ModelConfig."""

    task: str  # the task's name (lstm-suite --help lists the installed ones)
    seed: int = field(default=42, metadata=SEED_RANGE)  # NumPy takes 0 <= seed < 2**32
    data: Any = None
    model: Any = None
    training: TrainingConfig = field(default_factory=TrainingConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON-serialisable)."""
        return to_dict(self)

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], task_cls: type | None = None, source: str = "<dict>"
    ) -> ExperimentConfig:
        """Builds and validates a config from a nested dict (see `load_config`)."""
        return _build_experiment(data, task_cls, source, {})

    def fingerprint(self) -> str:
        """A short stable hash of the whole config."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------------
def to_dict(obj: Any) -> Any:
    """Dataclass instances (nested) -> plain dicts and lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


class _Where:
    """Maps dotted keys to "file:line" (from YAML node marks) or to a --set override."""

    def __init__(self, source: str, lines: dict[str, str], overrides: dict[str, str]):
        self.source, self.lines, self.overrides = source, lines, overrides

    def __call__(self, key: str) -> str:
        if key in self.overrides:
            return self.overrides[key]
        probe = key
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[: probe.rindex("[")] if probe.endswith("]") else probe.rpartition(".")[0]
        return self.source


def _yaml_lines(node: yaml.Node | None, source: str, prefix: str = "") -> dict[str, str]:
    """{dotted key: "file:line"} for every mapping key in the YAML tree `node`."""
    lines: dict[str, str] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}{key_node.value}"
            lines[key] = f"{source}:{key_node.start_mark.line + 1}"
            lines.update(_yaml_lines(value_node, source, key + "."))
    return lines


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"list[{_type_name(typing.get_args(tp)[0])}]"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str, where: _Where) -> Any:
    """Checks/coerces `value` to the annotation `tp`; raises ConfigError naming `key`."""

    def fail(msg: str | None = None) -> typing.NoReturn:
        msg = msg or f"expected {_type_name(tp)}, got {type(value).__name__} {value!r}"
        raise ConfigError(f"{where(key)}: {key}: {msg}")

    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value not in typing.get_args(tp):
            fail(f"must be one of {_type_name(tp)}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            fail()
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key, where)
            except ConfigError:
                continue
        fail()
    if origin is list:
        if not isinstance(value, list):
            fail()
        (item_tp,) = typing.get_args(tp)
        return [_convert(v, item_tp, f"{key}[{i}]", where) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            fail()
        _, val_tp = typing.get_args(tp)
        return {str(k): _convert(v, val_tp, f"{key}.{k}", where) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            fail(f"expected a mapping of {tp.__name__} keys, got {value!r}")
        return _build_dataclass(tp, value, key, where)
    if tp is bool:
        if not isinstance(value, bool):
            fail()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail()
        return value
    if tp is float:
        if isinstance(value, str) and _YAML11_FLOAT.fullmatch(value.strip()):
            return float(value)  # PyYAML (YAML 1.1) reads "1e-4" (no dot) as a string
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail()
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            fail()
        return value
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    fail()


def _build_dataclass(cls: type, values: dict[str, Any], prefix: str, where: _Where) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    dotted = f"{prefix}." if prefix else ""
    for name in values:
        if name not in fields:
            close = difflib.get_close_matches(str(name), list(fields), n=1, cutoff=0.6)
            hint = f" (did you mean {dotted + close[0]!r}?)" if close else ""
            valid = ", ".join(fields)
            raise ConfigError(
                f"{where(dotted + str(name))}: unknown key {dotted + str(name)!r}{hint}; "
                f"valid keys{' of ' + prefix if prefix else ''}: {valid}"
            )
    kwargs = {}
    for name, f in fields.items():
        key = dotted + name
        if name in values:
            kwargs[name] = _convert(values[name], hints[name], key, where)
        elif dataclasses.is_dataclass(hints[name]):  # absent section: its defaults, checked
            kwargs[name] = _convert({}, hints[name], key, where)
        elif f.default is MISSING and f.default_factory is MISSING:
            raise ConfigError(
                f"{where(prefix) if prefix else where.source}: "
                f"missing required key {key!r} ({_type_name(hints[name])})"
            )
        if name in kwargs:
            _check_field(kwargs[name], f, key, where)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:  # __post_init__ validation of a task's dataclass
        raise ConfigError(f"{where(prefix) if prefix else where.source}: {prefix}: {err}") from err


def _build_experiment(
    raw: Any,
    task_cls: type | None,
    source: str,
    lines: dict[str, str],
    overrides: dict[str, str] | None = None,
) -> ExperimentConfig:
    where = _Where(source, lines, overrides or {})
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: the config must be a mapping with keys task, seed, data, "
            f"model, training, runtime; got {type(raw).__name__}"
        )
    raw = dict(raw)
    if task_cls is None:
        if not isinstance(raw.get("task"), str):
            raise ConfigError(f"{where('task')}: missing required key 'task' (a task name)")
        from shared.task import get_task

        try:
            task_cls = get_task(raw["task"])
        except ValueError as err:
            raise ConfigError(f"{where('task')}: task: {err}") from err
    raw.setdefault("task", task_cls.name)
    if raw["task"] != task_cls.name:
        raise ConfigError(
            f"{where('task')}: task: the file is for {raw['task']!r}, not {task_cls.name!r}"
        )
    # Task-specific sections get the task's own dataclasses.
    spec = dataclasses.make_dataclass(
        "ExperimentConfig",
        [
            ("task", str),
            ("seed", int, field(default=42, metadata=SEED_RANGE)),
            ("data", task_cls.DataConfig, field(default_factory=task_cls.DataConfig)),
            ("model", task_cls.ModelConfig, field(default_factory=task_cls.ModelConfig)),
            ("training", TrainingConfig, field(default_factory=TrainingConfig)),
            ("runtime", RuntimeConfig, field(default_factory=RuntimeConfig)),
        ],
    )
    built = _build_dataclass(spec, raw, "", where)
    config = ExperimentConfig(**{f.name: getattr(built, f.name) for f in dataclasses.fields(spec)})
    _check_values(config, where)
    return config


def _check_values(config: ExperimentConfig, where: _Where) -> None:
    """Checks across spine keys (single-key ranges are declared on the fields)."""
    t, r = config.training, config.runtime
    if t.warmup_steps and t.lr_schedule == "exponential":
        raise ConfigError(
            f"{where('training.warmup_steps')}: training.warmup_steps: warm-up "
            "is supported with lr_schedule constant or cosine, not exponential"
        )
    if t.clipnorm is not None and t.global_clipnorm is not None:
        raise ConfigError(
            f"{where('training.clipnorm')}: training.clipnorm: set either clipnorm "
            "or global_clipnorm, not both (the other to null)"
        )
    if r.workers and r.task_index is None:
        raise ConfigError(
            f"{where('runtime.task_index')}: runtime.task_index: required when "
            "runtime.workers is set (this worker's index in the list)"
        )
    if r.task_index is not None and not 0 <= r.task_index < max(len(r.workers), 1):
        raise ConfigError(
            f"{where('runtime.task_index')}: runtime.task_index: "
            f"{r.task_index} is not an index into runtime.workers"
        )


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def _set_dotted(raw: dict[str, Any], dotted: str, value: Any, text: str) -> None:
    parts = dotted.split(".")
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {text}: {'.'.join(parts[: i + 1])} is not a section")
        node = child
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """`"training.epochs=3"` -> ("training.epochs", 3); the value is parsed as YAML."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not p for p in key.split(".")):
        raise ConfigError(
            f"--set {text}: expected KEY=VALUE with a dotted KEY, e.g. --set training.epochs=3"
        )
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {text}: the value is not valid YAML: {err}") from err
    return key, parsed


def load_config(
    path: str | Path,
    overrides: list[str] | None = None,
    data_dir: str | None = None,
    task: str | None = None,
) -> ExperimentConfig:
    """Loads, overrides and validates an experiment config.

    Args:
        path: the YAML file; its `base:` key (if any) names a config, relative to this file,
            whose keys this file's keys are deep-merged over (chains allowed).
        overrides: `"dotted.key=value"` strings (values parsed as YAML), applied in order.
        data_dir: sets `data.data_dir` (resolved against the working directory).
        task: the task name given on the command line; must match the file's `task:` if present.

    Raises:
        ConfigError: a file is missing or not YAML, the bases form a cycle, or the merged
            config fails validation.
    """
    path = Path(path)
    raw, lines = _read_layers(path, ())
    set_keys: dict[str, str] = {}
    for text_override in overrides or []:
        key, value = parse_override(text_override)
        if key == "data.data_dir" and isinstance(value, str):
            value = _absolute(value, Path.cwd())
        _set_dotted(raw, key, value, text_override)
        set_keys[key] = f"--set {text_override}"
    if data_dir is not None:
        _set_dotted(raw, "data.data_dir", _absolute(data_dir, Path.cwd()), "data.data_dir")
        set_keys["data.data_dir"] = f"--data-dir {data_dir}"

    task_cls = None
    if task is not None:
        from shared.task import get_task

        task_cls = get_task(task)
    return _build_experiment(raw, task_cls, str(path), lines, set_keys)


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """One config file -> (its mapping, {dotted key: "file:line"})."""
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config file: {err.strerror}") from err
    try:
        node = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a mapping, got {type(raw).__name__}")
    # A relative data_dir written in a file is relative to that file.
    file_data = raw.get("data")
    if isinstance(file_data, dict) and isinstance(file_data.get("data_dir"), str):
        file_data["data_dir"] = _absolute(file_data["data_dir"], path.resolve().parent)
    return raw, _yaml_lines(node, str(path))


def _read_layers(path: Path, chain: tuple[Path, ...]) -> tuple[dict[str, Any], dict[str, str]]:
    """`path` merged over its `base:` chain -> (mapping, {dotted key: "file:line"})."""
    resolved = path.resolve()
    if resolved in chain:
        cycle = " -> ".join(str(p) for p in (*chain, resolved))
        raise ConfigError(f"{path}: base: the configs form a cycle: {cycle}")
    raw, lines = _read_yaml(path)
    if "base" not in raw:
        return raw, lines
    base = raw.pop("base")
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(
            f"{lines['base']}: base: expected the path of a config file, got {base!r}"
        )
    base_path = path.parent / os.path.expanduser(base)
    if not base_path.is_file():
        raise ConfigError(f"{lines['base']}: base: no such config file: {base_path}")
    base_raw, base_lines = _read_layers(base_path, (*chain, resolved))
    del lines["base"]
    return _deep_merge(base_raw, raw), {**base_lines, **lines}


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over`'s keys over `base`'s; mappings merge key by key, any other value replaces."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _absolute(value: str, base: Path) -> str:
    expanded = Path(os.path.expanduser(value))
    return str(expanded if expanded.is_absolute() else (base / expanded).resolve())


def save_config(config: ExperimentConfig, path: str | Path) -> None:
    """Writes the resolved config as YAML, atomically."""
    from shared.files import atomic_write_text

    atomic_write_text(Path(path), yaml.safe_dump(config.to_dict(), sort_keys=False))


def diff_configs(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    keys = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            keys += diff_configs(va, vb, f"{prefix}{k}.")
        elif va != vb:
            keys.append(f"{prefix}{k}")
    return keys
