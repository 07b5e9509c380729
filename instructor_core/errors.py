"""Errors for expected failures: what a user can fix (a device, a lock held by another process).

The CLI prints an :class:`InstructorError` as one line on stderr and exits 2; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "EXTRA_HINT",
    "DeviceError",
    "InputError",
    "InputFileError",
    "InputTypeError",
    "InstructorError",
    "ModelLoadError",
    "OutputError",
    "StoreLockedError",
    "install_hint",
]

#: The part of every missing-extra message that the CLI recognises (it maps such an ImportError to one
#: line). It installs this project from its checkout: installing the bare name from an index would
#: install PyPI's ``instructor``, another project with the same distribution name.
EXTRA_HINT = 'pip install -e ".['


def install_hint(extras: str) -> str:
    """How to install this project with ``extras`` (``"chroma"``, ``"langchain,qdrant"``), for error messages.

    Args:
        extras: The extra or comma-separated extras the caller needs.

    Returns:
        One line that contains :data:`EXTRA_HINT` and says that PyPI's ``instructor`` is another project.
    """
    return f"{EXTRA_HINT}{extras}]\" from this project's checkout (PyPI's instructor is another project)"


class InstructorError(Exception):
    """An expected failure whose message says what went wrong and what to do, in one line."""


class InputError(InstructorError, ValueError):
    """A value the caller or the user gave that cannot be used (a malformed URL, filter, option,
    file or argument); the message names it and what was expected. Also a ``ValueError``."""


class InputFileError(InstructorError, FileNotFoundError):
    """An input file the user named does not exist. Also a ``FileNotFoundError``."""


class InputTypeError(InstructorError, TypeError):
    """An argument of the wrong type; the message names it and the type expected. Also a ``TypeError``."""


class ModelLoadError(InstructorError, OSError):
    """A model folder could not be read: a broken config file, truncated or corrupt weights."""


class OutputError(InstructorError, OSError):
    """An output (a file given with ``-o``, or stdout) could not be written: a full disk, a file size
    limit, a closed pipe. Nothing half-written is left in a file's place. Also an ``OSError``."""


class DeviceError(InstructorError, ValueError):
    """The device asked for is not available in this torch build or on this machine."""


class StoreLockedError(InstructorError, TimeoutError):
    """Another process holds an embedded store's lock for longer than we were willing to wait.

    Attributes:
        folder: The store folder.
        holder_pid: The other holder's pid as written in the lock file, or None if unreadable.
    """

    def __init__(self, message: str, *, folder: str, holder_pid: int | None) -> None:
        super().__init__(message)
        self.folder = folder
        self.holder_pid = holder_pid
