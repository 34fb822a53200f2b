"""Every shipped YAML under configs/ loads and validates, and belongs to the folder's task."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))


def test_there_are_configs_for_every_suite():
    suites = {p.name for p in (REPO / "suites").iterdir() if (p / "task.py").is_file()}
    assert {p.parent.name for p in CONFIGS} == suites


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_shipped_config_loads_and_validates(path, tmp_path):
    # a real-data recipe takes its data folder from --data-dir: give it an empty one
    given = "data_dir: " in path.read_text() and "data_dir: null" not in path.read_text()
    data_dir = None if given else str(tmp_path)
    config = load_config(path, data_dir=data_dir, task=path.parent.name)
    assert config.task == path.parent.name
    assert config.training.epochs >= 1
    # the loaded values are the file's (a stray key would have raised; spot-check one value)
    assert config.seed >= 0


def test_a_shipped_config_still_rejects_a_bad_override():
    with pytest.raises(ConfigError, match="training.learning_rate"):
        load_config(
            CONFIGS[0], overrides=["training.learning_rate=-1"], task=CONFIGS[0].parent.name
        )
