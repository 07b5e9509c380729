"""The ids an ingest has read so far, for a duplicate check over the whole ingest.

Held in a dict while they fit (``max_in_memory``); past that they move to a temporary SQLite file,
so a corpus of 100M ids is checked in bounded memory. Each id keeps the stream position of the
record that brought it, so a duplicate's error names both records.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from instructor_core.validation import check_positive_int

__all__ = ["SeenIds"]


class SeenIds:
    """A set of document ids with the position each was first read at.

    Args:
        max_in_memory: Ids held in a dict before they move to a temporary SQLite file.
        directory: Where that file goes; None: the system's temporary folder.
    """

    def __init__(self, *, max_in_memory: int = 1_000_000, directory: str | os.PathLike[str] | None = None) -> None:
        self.max_in_memory = check_positive_int(max_in_memory, "max_in_memory")
        self._directory = directory
        self._memory: dict[str, int] | None = {}
        self._db: sqlite3.Connection | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._count = 0

    @property
    def on_disk(self) -> bool:
        """Whether the ids have moved to the SQLite file."""
        return self._db is not None

    def __len__(self) -> int:
        return self._count

    def get(self, document_id: str) -> int | None:
        """The position the id was first read at, or None if it was not read yet."""
        if self._memory is not None:
            return self._memory.get(document_id)
        assert self._db is not None
        row = self._db.execute("SELECT position FROM seen WHERE id = ?", (document_id,)).fetchone()
        return None if row is None else int(row[0])

    def add_many(self, items: Iterable[tuple[int, str]]) -> None:
        """Record ``(position, id)`` pairs; an id already present keeps its first position."""
        pairs = list(items)
        if self._memory is not None:
            for position, document_id in pairs:
                if document_id not in self._memory:
                    self._memory[document_id] = position
                    self._count += 1
            if len(self._memory) > self.max_in_memory:
                self._spill()
            return
        assert self._db is not None
        before = self._db.total_changes
        self._db.executemany("INSERT OR IGNORE INTO seen (id, position) VALUES (?, ?)", [(i, p) for p, i in pairs])
        self._db.commit()
        self._count += self._db.total_changes - before

    def _spill(self) -> None:
        assert self._memory is not None
        self._tmp = tempfile.TemporaryDirectory(prefix="instructor-ids-", dir=self._directory)
        self._db = sqlite3.connect(Path(self._tmp.name) / "ids.sqlite", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE seen (id TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID")
        self._db.executemany("INSERT INTO seen (id, position) VALUES (?, ?)", self._memory.items())
        self._db.commit()
        self._memory = None

    def close(self) -> None:
        """Drop the ids and the temporary file."""
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        self._memory = {}
        self._count = 0

    def __enter__(self) -> SeenIds:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
