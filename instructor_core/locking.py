"""An inter-process lock for embedded stores, so two writers never share one store folder.

Two processes writing one embedded Chroma folder corrupt it while both report success; embedded
stores have no lock of their own that a second process waits on. :func:`store_lock` takes an
exclusive ``fcntl.flock`` on a lock file inside the store folder and writes the holder's pid and
command line into it. The operating system releases a flock when its holder exits, however it
exits (``kill -9`` included), so a lock file left behind by a dead process never blocks anyone.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from instructor_core.errors import InputError, StoreLockedError
from instructor_core.safe_paths import UnsafePathError, disk_full, open_regular_file

__all__ = ["LOCK_FILE", "StoreLockedError", "UnsafePathError", "store_lock"]

#: Name of the lock file inside a store folder.
LOCK_FILE = ".instructor.lock"
_POLL_S = 0.05
_sleep = time.sleep  # the wait between polls (tests observe it)


def _holder(handle: BinaryIO) -> tuple[int | None, str]:
    """(pid, command line) of the lock's holder as written into the lock file; (None, "") if unreadable."""
    try:
        handle.seek(0)
        data = json.loads(handle.read().decode("utf-8") or "{}")
        pid = data.get("pid")
        return (pid if isinstance(pid, int) else None), str(data.get("command", ""))
    except (OSError, ValueError):
        return None, ""


@contextmanager
def store_lock(folder: str | os.PathLike[str], *, timeout: float, what: str = "store") -> Iterator[Path]:
    """Hold an exclusive lock on an embedded store folder for the duration of the block.

    Args:
        folder: The store folder (created if missing); the lock file is ``folder/.instructor.lock``.
        timeout: Seconds to wait for another holder to let go (polled every 50 ms); 0 tries once.
        what: What the lock guards, for the error message ("Chroma store", "ingest", ...).

    Yields:
        The lock file's path.

    Raises:
        StoreLockedError: When another process still holds the lock after ``timeout`` seconds; one
            line naming the folder and the holder's pid (and command line).
        UnsafePathError: The lock file is a symbolic link, a FIFO, a folder or anything but a
            regular file of one link (it is opened with ``O_NOFOLLOW`` and never truncated on open).
        RuntimeError: On a platform without ``fcntl`` (Windows).
    """
    try:
        import fcntl
    except ImportError as exc:  # pragma: no cover - Windows
        raise RuntimeError("store_lock needs fcntl (POSIX); embedded stores are not locked on this platform") from exc
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout < 0:
        raise InputError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_FILE
    # Never truncate on open: the file holds the current holder's pid until we hold the lock ourselves.
    # Never through a link, and only a regular file: a planted link would otherwise empty its target.
    fd = open_regular_file(path, what=f"{what} lock file")
    handle = os.fdopen(fd, "r+b", buffering=0)
    try:
        deadline = time.monotonic() + float(timeout)
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                now = time.monotonic()
                if now >= deadline:
                    pid, command = _holder(handle)
                    who = f"process {pid}" if pid is not None else "another process"
                    if command:
                        who += f" ({command[:120]})"
                    raise StoreLockedError(
                        f"{what} {root} is in use by {who}; waited {timeout:g} s. "
                        "Wait for it to finish, or stop it, and run again",
                        folder=str(root),
                        holder_pid=pid,
                    ) from None
                _sleep(min(_POLL_S, deadline - now))
        try:
            handle.seek(0)
            handle.truncate()
            try:
                handle.write(json.dumps({"pid": os.getpid(), "command": " ".join(sys.argv)}).encode("utf-8"))
            except OSError as exc:  # a full disk: the lock is held all the same; a waiter sees no holder's name
                if not disk_full(exc):
                    raise
                handle.truncate()
            yield path
        finally:
            try:
                handle.seek(0)
                handle.truncate()  # no stale pid left for a later reader
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()
