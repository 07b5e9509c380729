"""The ``instructor`` command: one subcommand module per job under ``instructor_core.commands``.

Each module there exposes ``register(subparsers)``, which adds its parser and sets ``func``; a
command that needs an optional stack imports it inside ``func``, so ``instructor --help`` works
with the core alone.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from collections.abc import Iterator, Sequence

from .version import __version__

__all__ = ["build_parser", "main", "quiet_transformers"]

# Subcommand modules, in the order `instructor --help` lists them.
COMMAND_MODULES = (
    "instructor_core.commands.embed",
    "instructor_core.commands.store",
    "instructor_core.commands.collections",
    "instructor_core.commands.train",
    "instructor_core.commands.evaluate",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="instructor", description="Instruction-conditioned text embeddings (INSTRUCTOR)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}", help="print the version")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' and the hub's progress bars ("Loading weights") for the duration.

    Warnings still print; the previous setting is restored on exit.
    """
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


#: What the ImportError of a missing optional stack says (``pip install "instructor[chroma]"``).
EXTRA_HINT = 'pip install "instructor['


def _fail(command: str, exc: BaseException) -> int:
    """An expected failure: one line on stderr, exit status 2."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    print(f"instructor {command}: error: {text}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code: 0, or 2 with one line on stderr for an
    expected failure (bad input, a model folder, a device, a missing extra, a store refusing, locked
    or unreachable). Anything else is a bug and keeps its traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from .engine import IngestError
    from .errors import InstructorError

    quiet = quiet_transformers() if getattr(args, "quiet", False) else contextlib.nullcontext()
    try:
        with quiet:
            result = args.func(args)
    except (ValueError, TypeError, FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        return _fail(args.command, exc)
    except (InstructorError, IngestError) as exc:  # a store, a lock, a device, an unreachable server
        return _fail(args.command, exc)
    except ImportError as exc:
        if EXTRA_HINT not in str(exc):
            raise  # not a missing extra: a bug, shown with its traceback
        return _fail(args.command, exc)
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
