"""The store engines' own damage and disk-full errors, named in one line.

Qdrant Edge reports a damaged segment (a truncated ``chunk_0.mmap``, a garbage payload page) as a
bare ``Exception: Service runtime error ...``; chromadb reports a full disk during compaction as
``InternalError: Error in compaction: Error purging logs``. Neither names the cause a user can act
on. :func:`engine_failure` recognises them (and ``OSError(ENOSPC)``) and says what happened: the
disk is full, or the store is damaged (or the disk was full when it was written).

Not every failure can be caught: Qdrant Edge maps its segments into memory, and a write to a
mapped page on a full disk raises SIGBUS, which ends the process before Python runs again (exit
135, no message). The store is left as it was before the batch; free space and run the same
ingest again (see docs/reliability.md).
"""

from __future__ import annotations

import errno

from instructor_core.safe_paths import disk_full

__all__ = ["DAMAGE_MARKERS", "DISK_FULL_MARKERS", "engine_failure"]

#: Texts of the engines' errors that mean the disk is full.
DISK_FULL_MARKERS: tuple[str, ...] = (
    "No space left on device",
    "ENOSPC",
    "os error 28",
    "Disk quota exceeded",
    "database or disk is full",
)
#: Texts of the engines' errors that mean the store's files could not be read or written.
DAMAGE_MARKERS: tuple[str, ...] = (
    "Service runtime error",
    "Service internal error",
    "Error in compaction",
    "Error purging logs",
    "database disk image is malformed",
    "mmap",
)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= 200 else line[:197] + "..."


def engine_failure(exc: BaseException, where: str) -> str | None:
    """One line naming the cause of a store engine's error, or None if it is not one of these.

    Args:
        exc: The engine's exception.
        where: The store, as its ``describe()`` says it.
    """
    text = f"{exc}"
    if disk_full(exc) or any(marker in text for marker in DISK_FULL_MARKERS):
        return f"{where}: the disk is full ({_first_line(exc)}); free space, then run the same command again"
    if isinstance(exc, OSError) and exc.errno in (errno.EIO, errno.EROFS):
        return f"{where}: the store's files cannot be written ({_first_line(exc)})"
    if any(marker in text for marker in DAMAGE_MARKERS):
        return (
            f"{where}: the store engine failed ({_first_line(exc)}): its files are damaged, or the disk is or was "
            "full; free space and retry, else restore the store from a copy or ingest it anew"
        )
    return None
