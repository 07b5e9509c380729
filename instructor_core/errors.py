"""Errors for expected failures: what a user can fix (a device, a lock held by another process).

The CLI prints an :class:`InstructorError` as one line on stderr and exits 2; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["DeviceError", "InstructorError", "ModelLoadError", "StoreLockedError"]


class InstructorError(Exception):
    """An expected failure whose message says what went wrong and what to do, in one line."""


class ModelLoadError(InstructorError, OSError):
    """A model folder could not be read: a broken config file, truncated or corrupt weights."""


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
