"""Every config key of a task, with its default and meaning, read from the config dataclasses.

The dataclasses are the single source of truth: each field carries its meaning as a trailing
comment (or full-line comments just above it). This module turns them into a Markdown table, so
`lstm-suite keys TASK` can print the reference and the README's reference tables are generated
(and a test keeps them in sync):

    python -m shared.config_reference --write README.md   # regenerate the README's tables
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import re
import sys
import textwrap
import typing
from pathlib import Path

BEGIN = "<!-- keys:{name} -->"
END = "<!-- /keys:{name} -->"


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
    out = ["| key | default | meaning |", "|---|---|---|"]
    out += [f"| `{key}` | {default} | {meaning} |" for key, default, meaning in rows]
    return "\n".join(out)


def sync_markdown(text: str, tasks: list[str]) -> str:
    """`text` with every `<!-- keys:TASK -->` ... `<!-- /keys:TASK -->` block regenerated."""
    for task in tasks:
        begin, end = BEGIN.format(name=task), END.format(name=task)
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        if not pattern.search(text):
            raise ValueError(f"no {begin} ... {end} block found")
        block = f"{begin}\n{task_table(task)}\n{end}"
        text = pattern.sub(lambda _, block=block: block, text)
    return text


TASKS = ["sentiment", "translation", "speech"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print or write the task config key tables.")
    parser.add_argument("tasks", nargs="*", default=TASKS, help="task names (default: all)")
    parser.add_argument("--write", type=Path, help="regenerate the key blocks of a Markdown file")
    args = parser.parse_args(argv)
    if args.write:
        args.write.write_text(sync_markdown(args.write.read_text(), args.tasks))
        return 0
    for task in args.tasks:
        print(f"## {task}\n\n{task_table(task)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
