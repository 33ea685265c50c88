"""The commands shown in the documentation's code blocks, split into argument lists.

Usage::

    from tests.readme_commands import code_blocks, commands
    for block in code_blocks("bash"):
        for argv, env in commands(block):
            ...   # argv: ['.venv/bin/gan-train', '--dataset', ...]; env: the block's exports so far

The pages read are :func:`pages`: the README, every page of the manual (``docs/*.md``) and
``models/README.md``. Used by tests/test_readme.py to run (or at least parse) every command a
reader is told to type.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO_ROOT

FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def pages() -> list[Path]:
    """Every documentation page: the README first, then docs/*.md, then models/README.md."""
    manual = sorted((REPO_ROOT / "docs").glob("*.md"))
    return [REPO_ROOT / "README.md", *manual, REPO_ROOT / "models" / "README.md"]


def page_name(page: Path) -> str:
    """``docs/api.md`` for a page of the repository."""
    return page.relative_to(REPO_ROOT).as_posix()


def code_blocks(language: str, page: Path | None = None) -> list[str]:
    """The fenced code blocks of ``language`` in ``page`` (default: every page), in order."""
    found = []
    for each in [page] if page is not None else pages():
        text = each.read_text()
        found += [body for lang, body in FENCE.findall(text) if lang == language]
    return found


def logical_lines(block: str) -> Iterator[str]:
    """The block's commands: backslash continuations joined, quotes spanning lines kept whole."""
    pending = ""
    for line in block.splitlines():
        pending += line
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the command goes on on the next line
            pending += "\n"
            continue
        if pending.strip():
            yield pending
        pending = ""
    assert not pending.strip(), f"unterminated command in a code block: {pending!r}"


def commands(block: str) -> Iterator[tuple[list[str], dict[str, str]]]:
    """Each command of a bash block as (argv, environment exported before it in the block).

    A pipeline yields its first command only; ``export NAME=VALUE`` lines set the environment.
    """
    env: dict[str, str] = {}
    for line in logical_lines(block):
        argv = shlex.split(line, comments=True)
        if not argv:
            continue
        if argv[0] == "export":
            for assignment in argv[1:]:
                name, _, value = assignment.partition("=")
                env[name] = value
            continue
        yield argv, dict(env)


def pipeline(line_argv: list[str]) -> tuple[list[str], list[list[str]]]:
    """``curl ... | grep X`` -> (the curl argv, [the argv of each later stage])."""
    stages: list[list[str]] = [[]]
    for token in line_argv:
        if token == "|":
            stages.append([])
        else:
            stages[-1].append(token)
    return stages[0], stages[1:]
