"""The expected failure behind Ray's wrappers, so the CLI prints it as one line.

A Ray task's exception reaches the driver as a ``RayTaskError`` (for an exception class Ray can
subclass, an instance of both: ``RayTaskError(StoreUnavailableError)``, whose text is the whole
remote traceback), often inside Ray Data's ``UserCodeException``. :func:`expected_error_in` finds
the :class:`~instructor_core.errors.InstructorError` it carries (the original object where it
crossed the process boundary, else rebuilt from the remote traceback's last line naming one);
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable

from instructor_core.errors import InstructorError

__all__ = ["expected_error_in", "hide_ray_tracebacks"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LINE = re.compile(r"^(?:[\w.]+\.)?(\w+): (.+)$", re.MULTILINE)


def _is_wrapper(exc: BaseException) -> bool:
    """Ray's own wrapper classes (``RayTaskError`` and its per-cause subclasses, ``UserCodeException``)."""
    return any(c.__module__.startswith("ray.") for c in type(exc).__mro__ if c is not BaseException)


def _subclasses(cls: type[InstructorError]) -> dict[str, type[InstructorError]]:
    found: dict[str, type[InstructorError]] = {}
    for sub in cls.__subclasses__():
        if not sub.__module__.startswith("ray."):
            found.setdefault(sub.__name__, sub)
        found.update({k: v for k, v in _subclasses(sub).items() if k not in found})
    return found


def _rebuilt(text: str) -> InstructorError | None:
    """The last ``SomeError: message`` line of a remote traceback whose class is an InstructorError."""
    known = _subclasses(InstructorError)
    known.setdefault(InstructorError.__name__, InstructorError)
    for name, message in reversed(_LINE.findall(_ANSI.sub("", text))):
        cls = known.get(name)
        if cls is not None:
            error: InstructorError = cls.__new__(cls)  # its message exactly; constructors differ
            Exception.__init__(error, message.strip())  # one line: the regex matched one
            return error
    return None


def _one_line(error: InstructorError) -> InstructorError:
    """``error`` with its first line only: Ray Data appends its retry advice to a map stage's error."""
    text = str(error)
    if "\n" in text:
        error.args = (text.splitlines()[0],)
    return error


def expected_error_in(exc: BaseException) -> InstructorError | None:
    """The InstructorError ``exc`` is or carries through Ray's wrappers; None for anything else (a bug)."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, InstructorError) and not _is_wrapper(current):
            return _one_line(current)
        cause = getattr(current, "cause", None)
        stack.extend([cause if isinstance(cause, BaseException) else None, current.__cause__, current.__context__])
    return _rebuilt(str(exc)) if _is_wrapper(exc) or isinstance(exc, InstructorError) else None


class _NoTracebacks(logging.Filter):
    """Drops a log record that carries a traceback: an exception's, or a task's error text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage().strip()
        # Ray Data's "Exception occurred in Ray Data or Ray Core internal code ... the full stack trace
        # below" introduces the traceback left out here: left out with it
        return record.exc_info is None and "\n" not in message and "full stack trace below" not in message


def hide_ray_tracebacks() -> Callable[[], None]:
    """Keep Ray's own tracebacks of a failed task off the console (they stay in Ray's log files,
    e.g. ``ray-data.log`` in the session's logs): the CLI reports the failure itself, in one line
    for an expected one, with its traceback for a bug. Returns the function that undoes it."""
    importlib.import_module("ray.data")  # its loggers' handlers are made when it is imported
    undo: list[tuple[logging.Handler, logging.Filter]] = []
    names = [n for n in list(logging.root.manager.loggerDict) if n == "ray" or n.startswith("ray.")]
    for name in names:
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                drop = _NoTracebacks()
                handler.addFilter(drop)
                undo.append((handler, drop))

    def restore() -> None:
        for handler, drop in undo:
            handler.removeFilter(drop)

    return restore
