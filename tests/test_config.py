"""Config loading: typed sections, validation messages (file, line, key), overrides, paths."""

from __future__ import annotations

import dataclasses
import re
import textwrap
from pathlib import Path

import pytest
import yaml

from shared.config import (
    ConfigError,
    ExperimentConfig,
    Range,
    RuntimeConfig,
    TrainingConfig,
    at_least,
    fraction,
    in_range,
    load_config,
    parse_override,
    positive,
    save_config,
)
from shared.errors import UsageError
from shared.task import get_task

ToyDataConfig = get_task("toy").DataConfig
ToyModelConfig = get_task("toy").ModelConfig

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "toy" / "tiny.yaml"


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def line_of(path: Path, needle: str) -> int:
    """1-based line of the first line containing `needle` (independent of the loader)."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(needle)


def test_tiny_config_loads_into_typed_sections():
    config = load_config(TINY)
    raw = yaml.safe_load(TINY.read_text())
    assert isinstance(config.data, ToyDataConfig)
    assert isinstance(config.model, ToyModelConfig)
    assert isinstance(config.training, TrainingConfig)
    assert isinstance(config.runtime, RuntimeConfig)
    assert config.task == raw["task"] == "toy"
    assert config.training.epochs == raw["training"]["epochs"]
    assert config.data.num_train == raw["data"]["num_train"]
    # keys absent from the file take the dataclass defaults
    assert config.training.optimizer == raw["training"]["optimizer"]
    assert config.runtime.mixed_precision == RuntimeConfig().mixed_precision


def test_to_dict_from_dict_round_trip(tmp_path):
    config = load_config(TINY, overrides=["runtime.devices=['/cpu:0']"])
    again = ExperimentConfig.from_dict(config.to_dict())
    assert again == config
    saved = tmp_path / "config.yaml"
    save_config(config, saved)
    assert load_config(saved) == config
    assert again.fingerprint() == config.fingerprint()
    assert load_config(TINY).fingerprint() != config.fingerprint()


def test_misspelled_key_names_file_line_and_suggestion(tmp_path):
    path = write(
        tmp_path,
        """\
        task: toy
        training:
          epochs: 2
          learning_rte: 0.1
        """,
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert f"{path}:{line_of(path, 'learning_rte')}" in message
    assert "training.learning_rte" in message
    assert "did you mean 'training.learning_rate'" in message


def test_unknown_key_in_task_section(tmp_path):
    path = write(tmp_path, "task: toy\ndata:\n  num_trian: 3\n")
    with pytest.raises(ConfigError, match=r"exp.yaml:3: unknown key 'data.num_trian'.*num_train"):
        load_config(path)


def test_unknown_top_level_key(tmp_path):
    path = write(tmp_path, "task: toy\ntrainng: {}\n")
    with pytest.raises(ConfigError, match="did you mean 'training'"):
        load_config(path)


@pytest.mark.parametrize(
    ("snippet", "key", "expected"),
    [
        ("training:\n  epochs: three\n", "training.epochs", "expected int"),
        ("training:\n  epochs: true\n", "training.epochs", "expected int"),
        ("training:\n  deterministic: 1\n", "training.deterministic", "expected bool"),
        ("runtime:\n  devices: /gpu:0\n", "runtime.devices", "expected list[str]"),
        ("runtime:\n  devices: [1]\n", "runtime.devices[0]", "expected str"),
        ("training:\n  optimizer: rmsprop\n", "training.optimizer", "must be one of 'adam'"),
        ("runtime:\n  strategy: horovod\n", "runtime.strategy", "must be one of"),
        ("training: 3\n", "training", "expected a mapping"),
        ("training:\n  epochs: 0\n", "training.epochs", "must be >= 1, got 0"),
        ("training:\n  learning_rate: 0\n", "training.learning_rate", "must be > 0, got 0.0"),
        ("training:\n  learning_rate: .nan\n", "training.learning_rate", "finite number, got nan"),
        ("training:\n  clipnorm: -.inf\n", "training.clipnorm", "finite number, got -inf"),
        ("model:\n  dropout: .inf\n", "model.dropout", "must be a finite number, got inf"),
        ("seed: -1\n", "seed", "must be in [0, 4294967295], got -1"),
        ("data:\n  min_length: 9\n  max_length: 4\n", "data", "min_length <= max_length"),
    ],
)
def test_bad_values_name_the_key_and_line(tmp_path, snippet, key, expected):
    path = write(tmp_path, "task: toy\n" + snippet)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert key in message and expected in message
    assert f"{path}:{line_of(path, key.split('.')[-1].split('[')[0] + ':')}" in message


def test_types_are_coerced_where_lossless(tmp_path):
    path = write(tmp_path, "task: toy\ntraining:\n  learning_rate: 1\n  clipnorm: null\n")
    config = load_config(path)
    assert config.training.learning_rate == 1.0 and isinstance(config.training.learning_rate, float)
    assert config.training.clipnorm is None


def test_missing_task_is_reported(tmp_path):
    path = write(tmp_path, "seed: 1\n")
    with pytest.raises(ConfigError, match="missing required key 'task'"):
        load_config(path)


def test_missing_required_dataclass_field():
    @dataclasses.dataclass
    class NeedsVocab:
        vocab_size: int  # no default: required

    class Task:
        name = "needy"
        DataConfig = NeedsVocab
        ModelConfig = ToyModelConfig

    with pytest.raises(ConfigError, match=r"missing required key 'data.vocab_size' \(int\)"):
        ExperimentConfig.from_dict({"task": "needy"}, task_cls=Task, source="x.yaml")


def test_task_mismatch_between_file_and_command_line():
    class Other:
        name = "other"
        DataConfig = ToyDataConfig
        ModelConfig = ToyModelConfig

    with pytest.raises(ConfigError, match="for 'toy', not 'other'"):
        ExperimentConfig.from_dict({"task": "toy"}, task_cls=Other)


def test_overrides_are_yaml_parsed_and_validated():
    config = load_config(
        TINY,
        overrides=[
            "training.epochs=5",
            "runtime.devices=[a, b]",
            "training.clipnorm=null",
            "model.units=3",
        ],
    )
    assert config.training.epochs == 5
    assert config.runtime.devices == ["a", "b"]
    assert config.training.clipnorm is None
    assert config.model.units == 3
    with pytest.raises(ConfigError, match=r"--set training.epocs=5: unknown .*'training.epochs"):
        load_config(TINY, overrides=["training.epocs=5"])
    with pytest.raises(ConfigError, match=r"--set training.epochs=many: training.epochs: expected"):
        load_config(TINY, overrides=["training.epochs=many"])


@pytest.mark.parametrize("text", ["training.epochs", "=3", "a..b=1", ""])
def test_malformed_override(text):
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override(text)


def test_data_dir_resolution(tmp_path, monkeypatch):
    sub = tmp_path / "configs"
    sub.mkdir()
    path = write(sub, "task: toy\ndata:\n  data_dir: ../datasets/toy\n")
    assert load_config(path).data.data_dir == str((tmp_path / "datasets" / "toy").resolve())
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    from_cli = load_config(path, data_dir="data")
    assert from_cli.data.data_dir == str(elsewhere.resolve() / "data")
    from_set = load_config(path, overrides=["data.data_dir=x"])
    assert from_set.data.data_dir == str(elsewhere.resolve() / "x")
    absolute = load_config(path, data_dir=str(tmp_path))
    assert absolute.data.data_dir == str(tmp_path)


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.yaml")
    bad = write(tmp_path, "task: [toy\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    listy = write(tmp_path, "- a\n- b\n", "list.yaml")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(listy)


def test_cluster_keys_are_checked(tmp_path):
    path = write(tmp_path, "task: toy\nruntime:\n  workers: [a:1, b:2]\n")
    with pytest.raises(ConfigError, match="runtime.task_index: required"):
        load_config(path)
    with pytest.raises(ConfigError, match="not an index"):
        load_config(path, overrides=["runtime.task_index=2"])


def test_exponent_floats_without_a_dot(tmp_path):
    # PyYAML follows YAML 1.1, where 1e-4 is a string; float keys accept it anyway.
    path = write(tmp_path, "task: toy\ntraining:\n  learning_rate: 1e-4\n  monitor: 1e-4\n")
    config = load_config(path)
    assert config.training.learning_rate == 1e-4
    assert config.training.monitor == "1e-4"  # a str key keeps the string


# --------------------------------------------------------------------------------------------
# Declared ranges
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rule", "inside", "outside", "text"),
    [
        (at_least(1), [1, 2, 10**9], [0, -1], ">= 1"),
        (positive(), [1e-12, 3], [0, 0.0, -1e-12], "> 0"),
        (fraction(), [0, 0.0, 0.5, 0.999], [1, 1.0, -0.001], "in [0, 1)"),
        (in_range(0, 1, low_open=True), [1e-9, 1], [0, 1.0001], "in (0, 1]"),
        (in_range(None, 5), [-(10**9), 5], [5.5], "<= 5"),
    ],
)
def test_range_rules(rule, inside, outside, text):
    (check,) = rule.values()
    assert isinstance(check, Range)
    assert check.describe() == text
    assert all(check.contains(v) for v in inside)
    assert not any(check.contains(v) for v in outside)


@dataclasses.dataclass
class RangedModel:
    """A task section that declares ranges (what a suite's ModelConfig does)."""

    units: int = dataclasses.field(default=16, metadata=at_least(1))
    dropout: float = dataclasses.field(default=0.0, metadata=fraction())
    widths: list[int] = dataclasses.field(default_factory=lambda: [4], metadata=at_least(1))
    scale: float | None = dataclasses.field(default=None, metadata=positive())
    offset: float = 0.0  # no rule: any finite float


class RangedTask:
    name = "ranged"
    DataConfig = ToyDataConfig
    ModelConfig = RangedModel


def load_ranged(tmp_path: Path, model_yaml: str, overrides: list[str] | None = None):
    path = write(tmp_path, "task: ranged\nseed: 1\nmodel:\n" + textwrap.indent(model_yaml, "  "))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("shared.task.get_task", lambda name: RangedTask)
        return path, load_config(path, overrides=overrides)


@pytest.mark.parametrize(
    ("model_yaml", "key", "expected"),
    [
        ("dropout: 1.5\n", "model.dropout", "must be in [0, 1), got 1.5"),
        ("dropout: -0.1\n", "model.dropout", "must be in [0, 1), got -0.1"),
        ("units: 0\n", "model.units", "must be >= 1, got 0"),
        ("widths: [3, 0]\n", "model.widths[1]", "must be >= 1, got 0"),
        ("scale: 0\n", "model.scale", "must be > 0, got 0.0"),
        ("offset: .nan\n", "model.offset", "must be a finite number, got nan"),
    ],
)
def test_task_section_ranges_name_file_line_and_key(tmp_path, model_yaml, key, expected):
    with pytest.raises(ConfigError) as err:
        load_ranged(tmp_path, model_yaml)
    path = tmp_path / "exp.yaml"
    field_name = key.split(".")[-1].split("[")[0]
    assert str(err.value) == f"{path}:{line_of(path, field_name + ':')}: {key}: {expected}"
    assert isinstance(err.value, UsageError)  # the CLI's exit 2


def test_task_section_values_inside_the_ranges_load(tmp_path):
    _, config = load_ranged(tmp_path, "units: 1\ndropout: 0.0\nwidths: [1, 2]\nscale: null\n")
    assert (config.model.units, config.model.dropout, config.model.widths) == (1, 0.0, [1, 2])
    assert config.model.scale is None  # None passes any rule (an optional field)


def test_task_section_range_violation_from_an_override(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_ranged(tmp_path, "units: 4\n", overrides=["model.dropout=1.5"])
    assert str(err.value) == "--set model.dropout=1.5: model.dropout: must be in [0, 1), got 1.5"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("seed=-1", "seed: must be in [0, 4294967295], got -1"),
        ("seed=4294967296", "seed: must be in [0, 4294967295], got 4294967296"),
        ("training.learning_rate=.nan", "training.learning_rate: must be a finite number, got nan"),
        ("training.learning_rate=-1e-3", "training.learning_rate: must be > 0, got -0.001"),
        ("training.learning_rate=.inf", "training.learning_rate: must be a finite number, got inf"),
        ("training.epochs=0", "training.epochs: must be >= 1, got 0"),
        ("training.global_batch_size=0", "training.global_batch_size: must be >= 1, got 0"),
        ("training.steps_per_epoch=0", "training.steps_per_epoch: must be >= 1, got 0"),
        ("training.validation_steps=-2", "training.validation_steps: must be >= 1, got -2"),
        ("training.warmup_steps=-1", "training.warmup_steps: must be >= 0, got -1"),
        ("training.decay_steps=0", "training.decay_steps: must be >= 1, got 0"),
        ("training.decay_rate=0", "training.decay_rate: must be in (0, 1], got 0.0"),
        ("training.decay_rate=1.5", "training.decay_rate: must be in (0, 1], got 1.5"),
        ("training.min_lr_ratio=1.1", "training.min_lr_ratio: must be in [0, 1], got 1.1"),
        ("training.weight_decay=-0.1", "training.weight_decay: must be >= 0, got -0.1"),
        ("training.momentum=1", "training.momentum: must be in [0, 1), got 1.0"),
        ("training.clipnorm=0", "training.clipnorm: must be > 0, got 0.0"),
        ("training.global_clipnorm=-1", "training.global_clipnorm: must be > 0, got -1.0"),
        ("training.early_stopping_patience=0", "training.early_stopping_patience: must be >= 1"),
        ("training.backup_every_steps=0", "training.backup_every_steps: must be >= 1, got 0"),
        ("runtime.task_index=-1", "runtime.task_index: must be >= 0, got -1"),
        ("runtime.intra_op_threads=-1", "runtime.intra_op_threads: must be >= 0, got -1"),
        ("runtime.inter_op_threads=-1", "runtime.inter_op_threads: must be >= 0, got -1"),
        ("model.dropout=.nan", "model.dropout: must be a finite number, got nan"),
    ],
)
def test_spine_ranges_via_overrides_name_the_override(override, expected):
    with pytest.raises(ConfigError) as err:
        load_config(TINY, overrides=[override])
    assert str(err.value).startswith(f"--set {override}: {expected}")


@pytest.mark.parametrize(
    "override",
    [
        "seed=0",
        "seed=4294967295",
        "training.epochs=1",
        "training.warmup_steps=0",
        "training.decay_rate=1",
        "training.min_lr_ratio=1",
        "training.momentum=0.99",
        "training.weight_decay=0",
        "training.backup_every_steps=null",
        "runtime.intra_op_threads=0",
    ],
)
def test_spine_range_boundaries_are_accepted(override):
    key, value = parse_override(override)
    section, _, name = key.rpartition(".")
    config = load_config(TINY, overrides=[override])
    got = getattr(getattr(config, section) if section else config, name)
    assert got == value


def test_from_dict_checks_ranges_too():
    with pytest.raises(ConfigError, match=r"^<dict>: seed: must be in \[0, 4294967295\], got -1"):
        ExperimentConfig.from_dict({"task": "toy", "seed": -1})


# --------------------------------------------------------------------------------------------
# Composition: `base:`
# --------------------------------------------------------------------------------------------
def test_base_chain_deep_merges_and_overrides_apply_last(tmp_path):
    (tmp_path / "bases").mkdir()
    write(
        tmp_path / "bases",
        """\
        task: toy
        seed: 3
        training:
          epochs: 4
          optimizer: sgd
          momentum: 0.5
        model:
          units: 12
        runtime:
          devices: [a, b]
        """,
        "root.yaml",
    )
    write(tmp_path / "bases", "base: root.yaml\ntraining:\n  epochs: 6\n", "middle.yaml")
    leaf = write(
        tmp_path,
        "base: bases/middle.yaml\ntraining:\n  momentum: 0.9\nruntime:\n  devices: [c]\n",
        "leaf.yaml",
    )
    config = load_config(leaf, overrides=["training.epochs=8"])
    assert config.seed == 3  # root only
    assert config.model.units == 12  # root only, a nested key kept by the merge
    assert config.training.optimizer == "sgd"  # root, beside keys set further down
    assert config.training.momentum == 0.9  # leaf over root
    assert config.runtime.devices == ["c"]  # a list replaces, it does not merge
    assert config.training.epochs == 8  # --set over middle over root
    assert load_config(leaf).training.epochs == 6  # middle over root
    flat = write(
        tmp_path,
        """\
        task: toy
        seed: 3
        training: {epochs: 6, optimizer: sgd, momentum: 0.9}
        model: {units: 12}
        runtime: {devices: [c]}
        """,
        "flat.yaml",
    )
    assert load_config(leaf) == load_config(flat)


def test_errors_name_the_file_and_line_where_the_key_was_written(tmp_path):
    base = write(tmp_path, "task: toy\ntraining:\n  epochs: 2\n  learning_rate: -1\n", "base.yaml")
    child = write(tmp_path, "base: base.yaml\n\ntraining:\n  epochs: 0\n", "child.yaml")
    with pytest.raises(ConfigError) as err:
        load_config(child)
    assert (
        str(err.value)
        == f"{child}:{line_of(child, 'epochs')}: training.epochs: must be >= 1, got 0"
    )
    with pytest.raises(ConfigError) as err:
        load_config(child, overrides=["training.epochs=1"])
    where = f"{base}:{line_of(base, 'learning_rate')}"
    assert str(err.value) == f"{where}: training.learning_rate: must be > 0, got -1.0"
    typo = write(tmp_path, "base: base.yaml\nmodel:\n  unitz: 3\n", "typo.yaml")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(typo))}:3: unknown key 'model.unitz'"):
        load_config(typo)


def test_data_dir_of_a_base_is_relative_to_the_base(tmp_path):
    (tmp_path / "common").mkdir()
    write(tmp_path / "common", "task: toy\ndata:\n  data_dir: data\n", "base.yaml")
    child = write(tmp_path, "base: common/base.yaml\n", "child.yaml")
    assert load_config(child).data.data_dir == str((tmp_path / "common" / "data").resolve())
    mine = write(tmp_path, "base: common/base.yaml\ndata:\n  data_dir: mine\n", "mine.yaml")
    assert load_config(mine).data.data_dir == str((tmp_path / "mine").resolve())


def test_base_cycle_names_the_files(tmp_path):
    a = write(tmp_path, "base: b.yaml\ntask: toy\n", "a.yaml")
    b = write(tmp_path, "base: a.yaml\n", "b.yaml")
    with pytest.raises(ConfigError, match="cycle") as err:
        load_config(a)
    assert f"{a.resolve()} -> {b.resolve()} -> {a.resolve()}" in str(err.value)
    selfish = write(tmp_path, "base: self.yaml\n", "self.yaml")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(selfish)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("base: missing.yaml\ntask: toy\n", "base: no such config file"),
        ("base: [a.yaml]\ntask: toy\n", "base: expected the path of a config file"),
        ("base: broken.yaml\n", "broken.yaml: not valid YAML"),
    ],
)
def test_bad_base_is_reported_at_its_line(tmp_path, text, expected):
    write(tmp_path, "task: [toy\n", "broken.yaml")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=re.escape(expected)) as err:
        load_config(path)
    if "broken" not in text:
        assert str(err.value).startswith(f"{path}:1: ")
