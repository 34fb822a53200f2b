"""The shape of the project: the spine knows no suite, and every suite has the same files."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from shared.task import available_tasks, get_task

REPO = Path(__file__).resolve().parents[1]
SHARED = sorted((REPO / "shared").rglob("*.py"))
SUITE_FILES = ("config.py", "data.py", "model.py", "serving.py", "task.py", "train.py")
SUITES = sorted(p.name for p in (REPO / "suites").iterdir() if (p / "__init__.py").is_file())


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_the_spine_imports_nothing_from_the_suites():
    offenders = [
        f"{path.relative_to(REPO)}: {name}"
        for path in SHARED
        for name in _imports(path)
        if name == "suites" or name.startswith("suites.")
    ]
    assert not offenders, offenders


def test_no_task_name_appears_in_the_spine():
    names = "|".join(available_tasks())
    pattern = re.compile(rf"\b({names})\b", re.IGNORECASE)
    offenders = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in SHARED
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, "\n".join(offenders)


def test_every_installed_task_is_a_suite():
    assert sorted(available_tasks()) == SUITES


@pytest.mark.parametrize("suite", SUITES)
def test_every_suite_has_the_same_files(suite):
    folder = REPO / "suites" / suite
    missing = [name for name in SUITE_FILES if not (folder / name).is_file()]
    assert not missing, f"suites/{suite} lacks {missing}"
    shims = [n for n in ("evaluate.py", "export.py", "predict.py") if (folder / n).exists()]
    assert not shims, f"suites/{suite}: per-suite CLI shims {shims} (the spine's CLI does this)"
    train = (folder / "train.py").read_text()
    assert f'run_task_script("{suite}")' in train


@pytest.mark.parametrize("suite", SUITES)
def test_every_suite_task_keeps_to_the_contract(suite):
    task = get_task(suite)
    assert task.name == suite
    assert task.__module__ == f"suites.{suite}.task"
    assert not hasattr(task, "custom_objects"), "layers are registered serializable instead"
    assert task.DataConfig.__module__ == task.ModelConfig.__module__ == f"suites.{suite}.config"
