"""The ``instructor`` command: one subcommand module per job under ``instructor_core.commands``.

Each module there exposes ``register(subparsers)``, which adds its parser and sets ``func``; a
command that needs an optional stack imports it inside ``func``, so ``instructor --help`` works
with the core alone.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]

# Subcommand modules, in the order `instructor --help` lists them.
COMMAND_MODULES = (
    "instructor_core.commands.embed",
    "instructor_core.commands.store",
    "instructor_core.commands.train",
    "instructor_core.commands.evaluate",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="instructor", description="Instruction-conditioned text embeddings (INSTRUCTOR)."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from .engine import IngestError
    from .errors import InstructorError
    from .stores import StoreUnavailableError

    try:
        result = args.func(args)
    except (StoreUnavailableError, IngestError) as exc:  # the store is down: worth another try later
        print(f"instructor {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, FileNotFoundError, InstructorError) as exc:
        print(f"instructor {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
