"""The CLI's terminal: stdout guarded against a full disk or a closed pipe, and (from
:mod:`instructor_core.messages`, where library code finds them too) ``printable`` and ``short_repr``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import IO, Any

from instructor_core.errors import OutputError
from instructor_core.messages import printable, short_repr

__all__ = ["ClosedOutput", "GuardedStdout", "printable", "short_repr"]


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
