"""The generated config reference: comments -> rows, every task key documented, README in sync."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from shared import cli
from shared.config_reference import reference_markdown, reference_rows, task_table
from shared.task import available_tasks

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


@dataclass
class _Inner:
    depth: int = 2  # how deep


@dataclass
class _Sample:
    size: int = 8  # how many | at most
    # a comment above the field
    # on two lines
    mode: Literal["a", "b"] = "a"
    names: list[str] = field(default_factory=lambda: ["x"])  # names
    inner: _Inner = field(default_factory=_Inner)
    bare: float = 0.5


def test_rows_from_comments_literals_and_nesting():
    assert reference_rows(_Sample, "data") == [
        ("data.size", "`8`", "how many \\| at most"),
        ("data.mode", '`"a"`', "a comment above the field on two lines (one of `a`, `b`)"),
        ("data.names", '`["x"]`', "names"),
        ("data.inner.depth", "`2`", "how deep"),
        ("data.bare", "`0.5`", ""),
    ]


@dataclass
class _Continued:
    first: int = 1  # a long trailing comment
    # that continues below it
    second: int = 2  # its own comment
    # describes the field below, which has no trailing comment
    third: int = 3
    last: bool = True  # the last one
    # still continued


def test_full_line_comments_continue_above_or_describe_below():
    """Regression: continuation lines were read as the next field's comment."""
    assert [row[2] for row in reference_rows(_Continued, "m")] == [
        "a long trailing comment that continues below it",
        "its own comment",
        "describes the field below, which has no trailing comment",
        "the last one still continued",
    ]


@pytest.mark.parametrize("task", available_tasks())
def test_every_task_key_is_documented(task):
    undocumented = [
        line.split("|")[1].strip()
        for line in task_table(task).splitlines()[2:]
        if not line.split("|")[3].strip()
    ]
    assert not undocumented, f"{task}: keys without a comment in their dataclass: {undocumented}"


def test_every_spine_key_is_documented():
    rows = reference_markdown().split("## Spine keys")[1].split("\n## ")[0].splitlines()
    undocumented = [
        r.split("|")[1] for r in rows if r.startswith("| `") and not r.split("|")[3].strip()
    ]
    assert not undocumented, f"spine keys without a comment: {undocumented}"


def test_reference_file_is_in_sync():
    assert REFERENCE.read_text() == reference_markdown(), (
        "docs/configuration.md is stale: run "
        "`python -m shared.config_reference --write docs/configuration.md`"
    )
    for task in available_tasks():
        assert f"## {task}\n" in REFERENCE.read_text()


def test_keys_command(capsys):
    assert cli.main(["keys", "toy"]) == 0
    out = capsys.readouterr().out
    assert "| `model.units` | `16` | LSTM units |" in out
    assert cli.main(["keys", "nope"]) == cli.EXIT_USAGE
    known = ", ".join(available_tasks())
    assert f"known: {known}" in capsys.readouterr().err
