"""A store defined in the test suite and registered ONLY through an entry point (``jsondir:DIR``),
to show that a third party's store works with ``ingest``, ``search``, ``collections`` and
``--engine ray`` with no change elsewhere.

One JSON file per collection (``DIR/NAME.json``: the layout and the points), exact cosine search,
writes under an ``fcntl`` lock so that several processes (Ray write tasks) may write at once: not a
``single_writer`` store. The sink logs its calls (``DIR/.calls``) and takes a ``max_batch_size`` from
``DIR/.max_batch_size``, so a test sees how any engine batches its writes and whether it calls ``finish``.
:func:`registered` writes the ``dist-info`` folder that registers it.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from instructor_core.errors import InputError
from instructor_core.ingest.records import Record, RecordRules
from instructor_core.ingest.stores import BaseStore, CollectionLayout, Hit, StoreNotFoundError, store_factory

SCHEME = "jsondir"
DIST = "tests_plugin_store-0.dist-info"
#: A file in the store's folder holding the sink's ``max_batch_size`` (absent: no limit).
LIMIT_FILE = ".max_batch_size"
#: The log of the sink's calls (``write N``, ``finish``), one a line: what any process wrote through it.
CALLS_FILE = ".calls"


def registered(root: Path) -> Path:
    """A folder holding ``tests_plugin_store-0.dist-info`` (METADATA + entry_points.txt naming
    ``instructor.stores``): put it on ``sys.path``/``PYTHONPATH`` and ``jsondir:`` is a store."""
    dist = root / DIST
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tests-plugin-store\nVersion: 0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(
        f"[instructor.stores]\n{SCHEME} = tests.plugin_store:open_store\n", encoding="utf-8"
    )
    return root


class JsonSink:
    """Upserts points by document id into the collection's file, under the folder's lock."""

    rules = RecordRules(metadata_values="json", reserved_keys=("id", "text"))
    overlap = False
    max_batch_size: int | None = None

    def __init__(self, store: JsonDirStore, name: str) -> None:
        self.store, self.name = store, name
        limit = store.folder / LIMIT_FILE
        if limit.is_file():
            self.max_batch_size = int(limit.read_text(encoding="utf-8"))

    def write(self, records: Sequence[Record], vectors: Sequence[Any]) -> None:
        with self.store.locked():
            self.store.record_call(f"write {len(records)}")
            data = self.store.read(self.name)
            for record, vector in zip(records, vectors, strict=True):
                data["points"][record.id] = {
                    "text": record.text,
                    "metadata": dict(record.metadata),
                    "vector": [float(x) for x in vector],
                }
            self.store.write_file(self.name, data)

    def is_transport_error(self, exc: BaseException) -> bool:
        return False

    def finish(self) -> None:
        """The optional step after a writer's last write: only recorded here."""
        with self.store.locked():
            self.store.record_call("finish")


class JsonDirStore(BaseStore):
    """``jsondir:DIR``: one JSON file per collection."""

    scheme = SCHEME
    single_writer = False

    def __init__(self, folder: str) -> None:
        self.location = folder
        self.folder = Path(folder)

    @contextmanager
    def locked(self) -> Iterator[None]:
        with (self.folder / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def record_call(self, what: str) -> None:
        """Append ``what`` to the folder's call log (``DIR/.calls``), under the lock held by the caller."""
        with (self.folder / CALLS_FILE).open("a", encoding="utf-8") as log:
            log.write(what + "\n")

    def calls(self) -> list[str]:
        """The sink calls made on this folder, in order (``write N`` and ``finish``)."""
        log = self.folder / CALLS_FILE
        return log.read_text(encoding="utf-8").splitlines() if log.is_file() else []

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def read(self, name: str) -> dict[str, Any]:
        return json.loads(self.path(name).read_text(encoding="utf-8"))

    def write_file(self, name: str, data: Mapping[str, Any]) -> None:
        tmp = self.path(name).with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.path(name))

    # the primitives
    def _names(self) -> list[str]:
        return [p.stem for p in self.folder.glob("*.json")]

    def _exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def _layout(self, name: str) -> CollectionLayout | None:
        return CollectionLayout.from_metadata(self.read(name)["metadata"])

    def _count(self, name: str) -> int:
        return len(self.read(name)["points"])

    def _create(self, name: str, layout: CollectionLayout) -> None:
        with self.locked():
            if not self._exists(name):
                self.write_file(name, {"metadata": layout.to_metadata(), "points": {}})

    def _drop(self, name: str) -> None:
        self.path(name).unlink()

    def _sink(self, name: str) -> JsonSink:
        return JsonSink(self, name)

    def _query(
        self, name: str, vectors: list[list[float]], k: int, filters: Mapping[str, Any] | None, vector: str | None
    ) -> list[list[Hit]]:
        points = [
            (pid, p)
            for pid, p in self.read(name)["points"].items()
            if all(p["metadata"].get(key) == value for key, value in (filters or {}).items())
        ]
        if not points:
            return [[] for _ in vectors]
        matrix = np.asarray([p["vector"] for _, p in points], dtype=np.float64)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        out = []
        for row in vectors:
            query = np.asarray(row, dtype=np.float64)
            scores = matrix @ (query / np.linalg.norm(query))
            best = np.argsort(-scores, kind="stable")[:k]
            out.append([
                Hit(id=points[i][0], text=points[i][1]["text"], score=float(scores[i]),
                    metadata=points[i][1]["metadata"])
                for i in best
            ])  # fmt: skip
        return out


#: The file that marks a folder as a jsondir store.
MARKER = "jsondir.marker"


def check_name(location: str, name: str) -> None:
    """A collection is a file NAME.json: a plain file name."""
    if not re.fullmatch(r"[a-z0-9_]{1,40}", name):
        raise InputError(f"collection name {name[:60]!r}: jsondir takes 1-40 characters from a-z 0-9 _")


# what it holds, its name rule and its marker: asked by the core before the folder is made or opened
@store_factory(JsonDirStore.features, check_name=check_name, marker=(MARKER, "a jsondir store"))
def open_store(location: str, *, create: bool = True) -> JsonDirStore:
    """The ``instructor.stores`` factory of ``jsondir:DIR``."""
    folder = Path(location)
    if not folder.is_dir():
        if not create:
            raise StoreNotFoundError(location)
        folder.mkdir(parents=True)
    (folder / MARKER).touch()
    return JsonDirStore(location)
