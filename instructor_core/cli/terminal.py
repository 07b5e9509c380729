"""Text from a store, made safe to print on a terminal.

A stored text is data someone else wrote: an ESC sequence in it can recolour, move the cursor or
retitle the terminal, and a bidi override (U+202E) can make a line read differently from what it
holds. :func:`printable` escapes them for human-readable output; JSON output is left exact (its
encoder escapes C0 controls itself, and the reader of JSON decodes what was stored).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from typing import IO, Any

from instructor_core.errors import OutputError

__all__ = ["ClosedOutput", "GuardedStdout", "printable", "short_repr"]

# C0 controls (tab and newline too: one hit, one line), DEL, C1 controls, and the Unicode
# bidirectional formatting characters: embeddings and overrides (U+202A-U+202E), isolates
# (U+2066-U+2069), the marks LRM, RLM and ALM.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\x1b": "\\x1b"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with control and bidi formatting characters shown as escapes (``\\x1b``, ``\\u202e``).

    Examples:
        >>> printable("\\x1b[31mred\\u202eRTL")
        '\\\\x1b[31mred\\\\u202eRTL'
    """
    return _UNSAFE.sub(_escape, text)


def short_repr(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to about ``limit`` characters, saying how long it was: a 10,000-character
    name is not echoed whole in an error line."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f" ({len(value)} characters)" if isinstance(value, str) else ""
    return f"{text[:limit]}...{size}"


class ClosedOutput(OutputError):
    """The reader of stdout went away (``instructor embed big.txt -o - | head``): the CLI exits
    quietly, as ``cat`` does."""


class GuardedStdout(io.TextIOBase):
    """``sys.stdout`` for the length of a command: a write that fails becomes one error line
    (:class:`~instructor_core.errors.OutputError`: ``cannot write to stdout: No space left on
    device``) or, for a closed pipe, :class:`ClosedOutput`, instead of a traceback from deep inside
    a ``print``. Everything else is the wrapped stream's."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def _failed(self, exc: OSError) -> OutputError:
        from instructor_core.safe_paths import write_failure

        if isinstance(exc, BrokenPipeError):
            return ClosedOutput("stdout was closed by its reader")
        return OutputError(f"cannot write to stdout ({write_failure(exc)})")

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except OSError as exc:
            raise self._failed(exc) from exc

    def writelines(self, lines: Iterable[str]) -> None:  # type: ignore[override]
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise self._failed(exc) from exc

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401  fileno, buffer, encoding, isatty, ...
        return getattr(self._stream, name)
