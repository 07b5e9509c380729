"""Walk the ``instructor`` argparse tree: every subcommand and option, with its path.

Used by tests/test_cli_help.py; a test that needs "every option of every subcommand" walks here
rather than listing them by hand, so a new option is checked the day it is added.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["CliEntry", "missing_help", "walk"]


@dataclass(frozen=True)
class CliEntry:
    """One node of the tree.

    Attributes:
        path: Subcommand names from the top, e.g. ``("eval", "sts")``; ``()`` for ``instructor``.
        name: The option strings joined by "/" (``-o/--output``), the positional's dest, or the
            subcommand's name for a subcommand entry.
        help: Its help text (None where none was given).
        kind: "option", "positional", "subcommand" (``help`` is its line in the parent's list) or
            "description" (``help`` is the subcommand's own ``--help`` description).
    """

    path: tuple[str, ...]
    name: str
    help: str | None
    kind: str


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[CliEntry]:
    """Every option, positional, subcommand and subcommand description under ``parser``, depth first.

    argparse's own ``-h/--help`` is skipped (argparse writes its help).
    """
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield CliEntry(path, name, helps.get(name), "subcommand")
                yield CliEntry((*path, name), "(description)", sub.description, "description")
                yield from walk(sub, (*path, name))
            continue
        kind = "option" if action.option_strings else "positional"
        name = "/".join(action.option_strings) if action.option_strings else action.dest
        yield CliEntry(path, name, action.help, kind)


def missing_help(parser: argparse.ArgumentParser, skip: frozenset[str] = frozenset()) -> list[str]:
    """``"eval sts --split"``-style names of every entry without help text.

    Args:
        parser: The top parser (``instructor_core.cli.build_parser()``).
        skip: Top-level subcommands to leave out (and everything under them).
    """
    out = []
    for entry in walk(parser):
        top = entry.path[0] if entry.path else (entry.name if entry.kind == "subcommand" else None)
        if top in skip:
            continue
        if entry.help is None or entry.help == argparse.SUPPRESS or not entry.help.strip():
            out.append(" ".join(("instructor", *entry.path, entry.name)))
    return out
