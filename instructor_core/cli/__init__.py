"""The ``instructor`` command: one subcommand module per job under ``instructor_core.cli.commands``.

Each module there exposes ``register(subparsers)``, which adds its parser and sets ``func``; a
command that needs an optional stack imports it inside ``func``, so ``instructor --help`` works
with the core alone.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import os
import sys
from collections.abc import Iterator, Sequence
from typing import NoReturn

from instructor_core import errors
from instructor_core.version import __version__

__all__ = ["build_parser", "main", "quiet_transformers", "safe_line"]

# Subcommand modules, in the order `instructor --help` lists them.
COMMAND_MODULES = (
    "instructor_core.cli.commands.embed",
    "instructor_core.cli.commands.store",
    "instructor_core.cli.commands.collections",
    "instructor_core.cli.commands.train",
    "instructor_core.cli.commands.evaluate",
    "instructor_core.cli.commands.serve",
)


class _Parser(argparse.ArgumentParser):
    """argparse, naming an unknown option (with the nearest known one) even when a required
    option is missing too: ``--colection`` says ``unrecognized arguments: --colection (did you mean
    --collection?)``, not only that ``--collection`` is required."""

    _argv: Sequence[str] = ()

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._argv = list(sys.argv[1:] if args is None else args)  # what error() looks for unknown options in
        return super().parse_known_args(args, namespace)

    def _known_options(self) -> set[str]:
        options = set(self._option_string_actions)
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    options |= sub._known_options() if isinstance(sub, _Parser) else set(sub._option_string_actions)
        return options

    def error(self, message: str) -> NoReturn:
        known = self._known_options()
        unknown = [
            token
            for token in self._argv
            if token.startswith("-") and len(token) > 1 and not token[1:2].isdigit()
            and token.split("=", 1)[0] not in known
        ]  # fmt: skip
        if unknown:
            first = unknown[0].split("=", 1)[0]
            close = difflib.get_close_matches(first, sorted(o for o in known if o.startswith("--")), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            message = f"unrecognized arguments: {' '.join(unknown)}{hint}"
        message = safe_line(message)  # an argument echoed back: escaped and cut, as every error line
        sub = self._subcommand()
        if sub is not None:  # the subcommand's usage, not the top level's: it is the one the user ran
            sub.print_usage(sys.stderr)
            sub.exit(2, f"{sub.prog}: error: {message}\n")
        super().error(message)

    def _subcommand(self) -> argparse.ArgumentParser | None:
        """The subcommand parser the arguments name (their first word), if this parser has subcommands."""
        words = [token for token in self._argv if not token.startswith("-")]
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and words and words[0] in action.choices:
                return action.choices[words[0]]
        return None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = _Parser(prog="instructor", description="Instruction-conditioned text embeddings (INSTRUCTOR).")
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


#: The exit status after Ctrl-C, as a shell reports a process ended by SIGINT (128 + 2).
EXIT_INTERRUPTED = 130

#: The exit status when stdout's reader went away (``| head``), as a shell reports ``cat`` ended by
#: SIGPIPE (128 + 13); nothing is printed.
EXIT_CLOSED_PIPE = 141

#: The operating system's refusals of a path the user gave: mapped to one line. Every other exception
#: (a ValueError or TypeError of a bug included) keeps its traceback.
FILE_ERRORS: tuple[type[OSError], ...] = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)

#: What the ImportError of a missing optional stack says (``pip install -e ".[chroma]"``, made by
#: :func:`instructor_core.errors.install_hint`): such an ImportError is one line, any other a bug.
EXTRA_HINT = errors.EXTRA_HINT


#: The longest message an error line shows; a longer one (a value a file or the user gave, echoed) is cut.
MAX_MESSAGE = 900


def safe_line(text: str) -> str:
    """``text`` as one printable line: its first line, control and bidi characters escaped (``\\x1b``), and
    cut past :data:`MAX_MESSAGE` characters with ``... (N characters)``, N its length before escaping."""
    from instructor_core.cli.terminal import printable

    first = text.strip().splitlines()[0] if text.strip() else ""
    shown = printable(first)
    if len(shown) > MAX_MESSAGE:
        shown = f"{shown[:MAX_MESSAGE]}... ({len(first)} characters)"
    return shown


def _fail(command: str, exc: BaseException) -> int:
    """An expected failure: one line on stderr, exit status 2."""
    text = safe_line(str(exc)) or type(exc).__name__
    print(f"instructor {command}: error: {text}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code: 0, or 2 with one line on stderr for an
    expected failure: an :class:`~instructor_core.errors.InstructorError` (bad input, a model folder,
    a device, a store refusing, locked or unreachable), a path the file system refuses, a missing
    extra; 130 after Ctrl-C. Anything else is a bug and keeps its traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from instructor_core.cli.terminal import ClosedOutput, GuardedStdout
    from instructor_core.errors import InstructorError

    quiet = quiet_transformers() if getattr(args, "quiet", False) else contextlib.nullcontext()
    stdout = sys.stdout
    sys.stdout = GuardedStdout(stdout)  # a full disk or a closed pipe on stdout: one line, or a quiet exit
    try:
        with quiet:
            result = args.func(args)
            sys.stdout.flush()  # what is still buffered fails here, not at exit
    except ClosedOutput:
        _drop_stdout(stdout)
        return EXIT_CLOSED_PIPE
    except InstructorError as exc:  # bad input, a store, a lock, a device, an unreachable server
        return _fail(args.command, exc)
    except FILE_ERRORS as exc:  # a path the user gave that the file system refuses (no such file, no permission)
        return _fail(args.command, exc)
    except ImportError as exc:
        if EXTRA_HINT not in str(exc):
            raise  # not a missing extra: a bug, shown with its traceback
        return _fail(args.command, exc)
    except KeyboardInterrupt as exc:  # Ctrl-C: one line (an ingest says how much it wrote), no traceback
        text = str(exc) if str(exc).startswith("interrupted") else "interrupted"
        print(f"instructor {args.command}: {text}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        sys.stdout = stdout
    return int(result or 0)


def _drop_stdout(stdout: object) -> None:
    """After the reader of stdout went away: point its descriptor at /dev/null so that the flush at
    exit does not fail again (Python's advice for a closed pipe)."""
    fileno = getattr(stdout, "fileno", None)
    try:
        fd = fileno() if fileno is not None else -1
    except (OSError, ValueError):  # a captured stream in tests has no descriptor
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
