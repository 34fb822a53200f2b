"""Every config key, with its default and meaning, read from the config dataclasses.

The dataclasses are the single source of truth: each field carries its meaning as a trailing
comment (or full-line comments just above it). This module turns them into Markdown tables:
`lstm-suite keys TASK` prints one task's, and `docs/configuration.md` holds the spine's and every
installed task's (a test keeps it in sync):

    python -m shared.config_reference --write docs/configuration.md
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import sys
import textwrap
import typing
from pathlib import Path


def _field_comments(cls: type) -> dict[str, str]:
    """{field name: comment} from the class source.

    A field's meaning is its trailing comment; full-line comments between two fields continue
    the trailing comment above them when the field below has a trailing comment of its own, and
    otherwise describe the field below.
    """
    lines, _ = inspect.getsourcelines(cls)
    source = textwrap.dedent("".join(lines))
    src_lines = source.splitlines()
    fields = [
        node
        for node in ast.parse(source).body[0].body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    ]

    def trailing(node: ast.AnnAssign) -> list[str]:
        span = src_lines[node.lineno - 1 : node.end_lineno]
        return [line.split("  # ", 1)[1].strip() for line in span if "  # " in line]

    def block_after(row: int) -> list[str]:
        """The full-line comments starting at `row`."""
        out = []
        while row < len(src_lines) and src_lines[row].strip().startswith("#"):
            out.append(src_lines[row].strip().lstrip("#").strip())
            row += 1
        return out

    def block_before(row: int) -> list[str]:
        out = []
        while row >= 0 and src_lines[row].strip().startswith("#"):
            out.insert(0, src_lines[row].strip().lstrip("#").strip())
            row -= 1
        return out

    comments: dict[str, str] = {}
    for k, node in enumerate(fields):
        own = trailing(node)
        after = block_after(node.end_lineno)
        nxt = fields[k + 1] if k + 1 < len(fields) else None
        if own and after and (nxt is None or trailing(nxt)):
            own = own + after  # a continuation of this field's trailing comment
        prev_own = k > 0 and trailing(fields[k - 1])
        above = block_before(node.lineno - 2)
        if above and (not own or not prev_own):
            own = above + own
        comments[node.target.id] = " ".join(own)
    return comments


def _default(field: dataclasses.Field) -> object:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _show(value: object) -> str:
    if dataclasses.is_dataclass(value):
        return ""
    return "`" + json.dumps(value, ensure_ascii=False) + "`"


def reference_rows(cls: type, prefix: str) -> list[tuple[str, str, str]]:
    """(dotted key, default, meaning) for every field of dataclass `cls`, nested ones expanded."""
    hints = typing.get_type_hints(cls)
    comments = _field_comments(cls)
    rows = []
    for field in dataclasses.fields(cls):
        key = f"{prefix}.{field.name}"
        kind = hints.get(field.name)
        if inspect.isclass(kind) and dataclasses.is_dataclass(kind):
            rows.extend(reference_rows(kind, key))
            continue
        meaning = comments.get(field.name, "")
        item = typing.get_args(kind)[0] if typing.get_origin(kind) is list else None
        if inspect.isclass(item) and dataclasses.is_dataclass(item):
            rows.append((key, _show(_default(field)), meaning.replace("|", "\\|")))
            rows.extend(reference_rows(item, f"{key}[]"))
            continue
        if typing.get_origin(kind) is typing.Literal:
            choices = ", ".join(f"`{c}`" for c in typing.get_args(kind))
            meaning = f"{meaning} (one of {choices})" if meaning else f"one of {choices}"
        rows.append((key, _show(_default(field)), meaning.replace("|", "\\|")))
    return rows


def task_table(task: str) -> str:
    """The Markdown table of the task's `data.*` and `model.*` keys."""
    from shared.task import get_task

    task_cls = get_task(task)
    rows = reference_rows(task_cls.DataConfig, "data") + reference_rows(
        task_cls.ModelConfig, "model"
    )
    return _table(rows)


INTRO = """\
# Configuration reference

Generated from the config dataclasses by `python -m shared.config_reference --write
docs/configuration.md` (a test keeps this file in sync); `lstm-suite keys TASK` prints one task's
table.

Every config has `task`, `seed`, `data`, `model`, `training`, `runtime`; `data` and `model` belong
to the task (`suites/<task>/config.py`). A config may start from another one with
`base: other.yaml` (relative to the file; its keys are merged under the file's own). Unknown or
misspelled keys, wrong types and values out of range are errors naming the file, line and key
(with the closest valid key). Override any key with `--set dotted.key=value` (the value is YAML:
`--set training.clipnorm=null`, `--set 'runtime.devices=["/gpu:0"]'`); `--data-dir DIR` sets
`data.data_dir`. A relative `data_dir` written in a YAML file is relative to that file; on the
command line, to the current directory. Changing `runtime.*` or `training.progress` between
attempts still resumes a run; any other change is a new experiment (`--overwrite` or another
`--run-dir`).
"""


def _table(rows: list[tuple[str, str, str]]) -> str:
    out = ["| key | default | meaning |", "|---|---|---|"]
    out += [f"| `{key}` | {default} | {meaning} |" for key, default, meaning in rows]
    return "\n".join(out)


def reference_markdown() -> str:
    """The whole configuration reference: the spine's keys, then each installed task's."""
    from shared.config import ExperimentConfig
    from shared.task import available_tasks

    spine = [r for r in reference_rows(ExperimentConfig, "") if r[0] not in (".data", ".model")]
    spine = [(key.lstrip("."), default, meaning) for key, default, meaning in spine]
    parts = [INTRO, "## Spine keys (every task)\n", _table(spine), ""]
    for task in available_tasks():
        parts += [f"## {task}\n", task_table(task), ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print or write the configuration reference.")
    parser.add_argument("--write", type=Path, help="write the whole reference to this file")
    args = parser.parse_args(argv)
    text = reference_markdown()
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
