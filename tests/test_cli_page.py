"""docs/cli.md lists every option of every subcommand: the parser is walked (nested subcommands, the engines'
and the server's options included) and each option string must appear in its command's section of the page
(or in the section of options every model-loading command shares)."""

from __future__ import annotations

import argparse
import re

import pytest

from instructor_core.cli import build_parser
from tests.conftest import REPO

PAGE = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")


def _sections() -> dict[str, str]:
    """The page's ``## `` sections by their header line."""
    out: dict[str, str] = {}
    header, lines = "", []
    for line in PAGE.splitlines():
        if line.startswith("## "):
            out[header] = "\n".join(lines)
            header, lines = line, []
        lines.append(line)
    out[header] = "\n".join(lines)
    return out


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(path of subcommand names, its option strings) for every subcommand, nested ones included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))
    if path:
        options = [o for a in parser._actions for o in a.option_strings if o not in ("-h", "--help")]
        yield path, options


COMMANDS = list(_commands(build_parser()))


def _section_of(command: str) -> str:
    sections = _sections()
    found = [
        text for header, text in sections.items() if re.search(rf"`(instructor )?{re.escape(command)}[` ]", header)
    ]
    assert found, f"docs/cli.md has no '## ' section naming `instructor {command}`"
    return "\n".join(found)


def test_the_walk_sees_the_subcommands_and_their_options():
    paths = {" ".join(path) for path, _ in COMMANDS}
    assert {"ingest", "search", "embed", "serve", "train", "collections list", "eval retrieval"} <= paths
    options = dict((" ".join(p), o) for p, o in COMMANDS)
    assert "--chunk-tokens" in options["ingest"] and "--group-by-parent" in options["search"]
    assert "--engine" in options["serve"] and "--replicas" in options["serve"]


@pytest.mark.parametrize(("path", "options"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_option_is_on_the_page(path, options):
    shared = next(text for header, text in _sections().items() if header.startswith("## Options every"))
    section = _section_of(path[0])
    missing = [o for o in options if not any(re.search(rf"{re.escape(o)}(?![\w-])", t) for t in (section, shared))]
    assert not missing, f"docs/cli.md does not list {missing} of `instructor {' '.join(path)}`"
