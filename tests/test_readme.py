"""The READMEs' commands stay true: config paths exist, CLI lines parse, Python snippets run."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from shared import cli

REPO = Path(__file__).resolve().parents[1]
READMES = [REPO / "README.md", *sorted((REPO / "suites").glob("*/README.md"))]


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def _commands(text: str) -> list[str]:
    """Concrete `lstm-suite ...` lines of bash blocks (continuations joined, comments cut)."""
    commands = []
    for block in _blocks(text, "bash") + _blocks(text, "sh"):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split("  #")[0].strip()
            if "lstm-suite " not in line or line.startswith("#"):
                continue
            line = line[line.index("lstm-suite ") :]
            if not re.search(r"<[a-z ]+>|\[--|\(--| \.\.\.", line):  # synopsis lines
                commands.append(line)
    return commands


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(REPO)))
def test_config_paths_exist(readme):
    paths = set(re.findall(r"configs/[\w/]+\.yaml", readme.read_text()))
    missing = sorted(p for p in paths if not (REPO / p).is_file())
    assert not missing, f"{readme.name} names configs that do not exist: {missing}"


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(REPO)))
def test_cli_lines_parse(readme):
    commands = _commands(readme.read_text())
    for command in commands:
        argv = shlex.split(command)[1:]
        try:
            cli.parse_args(argv)
        except SystemExit as err:  # argparse's way of rejecting
            pytest.fail(f"{readme.name}: `{command}` does not parse (exit {err.code})")


def test_main_readme_has_commands_to_check():
    assert len(_commands((REPO / "README.md").read_text())) >= 8


def test_layer_snippet_runs():
    snippets = [b for b in _blocks((REPO / "README.md").read_text(), "python") if "runs/" not in b]
    assert snippets, "the README's layer example is gone"
    for code in snippets:
        exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - our own documentation
