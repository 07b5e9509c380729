"""``qdrant:DIR``: an embedded Qdrant store through Qdrant Edge, which reads no pickle.

qdrant-client's local mode (``QdrantClient(path=DIR)``) keeps its points pickled in SQLite and
unpickles them on open: a store folder from someone else can run code. This store uses Qdrant Edge
(``qdrant-edge-py``), Qdrant's own in-process engine (real HNSW, the server's segment format, no
pickle), one Edge shard per collection::

    DIR/
      instructor-qdrant-edge.json      marks the folder as this store's (format version)
      .instructor.lock                 the inter-process lock, held from open to close
      collections/NAME/shard/          the Edge shard (segments, WAL, edge_config.json)
      collections/NAME/instructor.json the collection's layout: model, fingerprint, instructions,
                                       dimension, named vectors, created (written atomically)

Point ids are ``point_id(document id)`` and payloads ``{"id", "text", **metadata}``, as with
``instructor_qdrant.ingest`` against a server. A folder holding a qdrant-client local store is
refused with one line, never opened.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from instructor_core.engine import DuplicatePolicy, IngestReport, run_ingest
from instructor_core.engine_errors import named_failures
from instructor_core.protocols import Encoder
from instructor_core.records import Record, RecordRules, point_id
from instructor_core.safe_paths import confined, load_json_object, safe_rmtree
from instructor_core.stores import (
    CollectionInfo,
    CollectionNotFoundError,
    Hit,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
    lock_timeout_s,
)
from instructor_core.terminal import short_repr
from instructor_core.validation import check_positive_int

from .collection import CollectionLayout, CollectionMismatchError, check_layout, layout_from_metadata
from .points import DEFAULT_BATCH_SIZE, _to_hit, check_search_encoder, embed_views

__all__ = ["EDGE_RULES", "EdgeSink", "EdgeStore", "LocalModeStoreError", "check_collection_name", "open_edge_store"]

#: The file that marks a folder as an Edge store of this package.
MARKER = "instructor-qdrant-edge.json"
FORMAT = 1
LAYOUT_FILE = "instructor.json"
#: The payload is JSON; Edge refuses NaN and infinities (mid-batch) and turns integers past 64 bits
#: into floats, so those are refused before the batch is written.
EDGE_RULES = RecordRules(
    metadata_values="json", reserved_keys=("id", "text"), finite_numbers=True, int_bits=64, dotted_keys=False
)
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")


class LocalModeStoreError(StoreError):
    """The folder holds a qdrant-client local-mode store, which is never opened here (it unpickles)."""


def _edge() -> Any:
    try:
        import qdrant_edge
    except ImportError as exc:
        raise ImportError(
            'qdrant:DIR needs Qdrant Edge (qdrant-edge-py); install it with: pip install "instructor[qdrant]"'
        ) from exc
    return qdrant_edge


def check_collection_name(name: Any) -> str:
    """A collection name that is one safe folder name: letters, digits, ``_``, ``.``, ``-``, not
    starting with ``.`` or ``-``, 1-255 characters.

    Raises:
        ValueError: Naming the rule.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"collection name {short_repr(name)}: use 1-255 letters, digits, '_', '.' or '-', "
            "not starting with '.' or '-'"
        )
    return name


def _is_local_mode(folder: Path) -> bool:
    """Whether ``folder`` holds a qdrant-client local-mode store (meta.json, collection/*/storage.sqlite)."""
    if (folder / "collection").is_dir() and any((folder / "collection").glob("*/storage.sqlite")):
        return True
    meta = folder / "meta.json"
    if not meta.is_file():
        return False
    try:
        return "collections" in json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` to ``path`` so a reader sees the old file or the new one, never a part."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class EdgeSink:
    """The ingest engine's view of an Edge shard: embed with the layout's document
    instruction(s), upsert points by ``point_id`` (a re-run changes nothing).

    Args:
        shard: An open ``qdrant_edge.EdgeShard``.
        encoder: The encoder the collection was made with.
        layout: The collection's layout.
        encode_batch_size: Texts per forward pass.
    """

    rules = EDGE_RULES

    def __init__(self, shard: Any, encoder: Encoder, layout: CollectionLayout, encode_batch_size: int = 32) -> None:
        self.shard, self.encoder, self.layout = shard, encoder, layout
        self.encode_batch_size = encode_batch_size

    def embed(self, records: Sequence[Record]) -> list[Any]:
        """Vectors (or named views) for the batch."""
        return embed_views(records, self.encoder, self.layout, self.encode_batch_size)

    def write(self, records: Sequence[Record], vectors: Sequence[Any]) -> None:
        """Upsert the batch's points (one update: all of them or, on an error, none)."""
        edge = _edge()
        points = [
            edge.Point(point_id(r.id), v, {"id": r.id, "text": r.text, **dict(r.metadata)})
            for r, v in zip(records, vectors, strict=True)
        ]
        self.shard.update(edge.UpdateOperation.upsert_points(points))

    def is_transport_error(self, exc: BaseException) -> bool:
        """Never: the shard is in this process, so a failed write is not retried."""
        return False


def _filter(filters: Mapping[str, Any] | None) -> Any:
    """An Edge filter for ``{payload key: value}`` (all must match; a list matches any item)."""
    if not filters:
        return None
    edge = _edge()
    must = []
    for key, value in filters.items():
        match = edge.MatchAny(list(value)) if isinstance(value, (list, tuple)) else edge.MatchValue(value)
        must.append(edge.FieldCondition(key=key, match=match))
    return edge.Filter(must=must)


@contextmanager
def _flushed(shard: Any) -> Iterator[None]:
    """Flush the shard after the block, however it ends."""
    try:
        yield
    finally:
        shard.flush()


class EdgeStore:
    """Embedded Qdrant (Qdrant Edge) in a folder, as an ``instructor_core.stores.Store``.

    The store's lock (``instructor_core.locking.store_lock``) is taken when it is opened and held
    until :meth:`close`: a second process waits up to ``lock_timeout`` seconds, then fails with one
    line naming the holder's pid. Use :func:`open_edge_store` (or ``open_store("qdrant:DIR")``).

    Args:
        folder: The store folder.
        lock_timeout: Seconds to wait for another process's lock; None: ``$INSTRUCTOR_LOCK_TIMEOUT`` or 10.
        create: Start a store where there is none; False raises ``StoreNotFoundError`` instead,
            creating nothing.
    """

    def __init__(
        self, folder: str | os.PathLike[str], *, lock_timeout: float | None = None, create: bool = True
    ) -> None:
        from instructor_core.locking import store_lock

        self.folder = Path(folder).expanduser()
        self.location = os.fspath(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise StoreUnavailableError(f"qdrant:{self.location} is a file, not a store folder")
        if self.folder.is_dir() and not (self.folder / MARKER).is_file() and _is_local_mode(self.folder):
            raise LocalModeStoreError(
                f"qdrant:{self.location} is a qdrant-client local-mode folder, which instructor does not open: "
                "qdrant-client unpickles its storage.sqlite, so a planted file would run code. qdrant:DIR is now "
                "an embedded Qdrant Edge store: ingest into a new folder (or, for a folder you trust, read it "
                "yourself with QdrantClient(path=DIR))"
            )
        if not create and not self.folder.is_dir():
            raise StoreNotFoundError(self.location)
        if not create and not (self.folder / MARKER).is_file():
            raise StoreNotFoundError(self.location, f"the folder holds no Qdrant Edge store: no {MARKER} in it")
        self._lock: AbstractContextManager[Path] | None = store_lock(
            self.folder, timeout=lock_timeout_s(lock_timeout), what="Qdrant store"
        )
        self._lock.__enter__()  # held until close()
        self._shards: dict[str, Any] = {}
        try:
            marker = self.folder / MARKER
            if marker.is_file():
                try:
                    fmt = json.loads(marker.read_text(encoding="utf-8")).get("format")
                except (OSError, ValueError, AttributeError):
                    fmt = None
                if fmt != FORMAT:
                    raise StoreUnavailableError(
                        f"qdrant:{self.location}: {MARKER} says format {fmt!r}, this version reads format {FORMAT}"
                    )
            else:
                _write_json_atomic(marker, {"store": "instructor qdrant edge", "format": FORMAT})
            confined(self.folder, self.folder / "collections", what="collections folder").mkdir(exist_ok=True)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ layout on disk
    def describe(self) -> str:
        """``"qdrant (embedded, Qdrant Edge) at DIR"``."""
        return f"qdrant (embedded, Qdrant Edge) at {self.location}"

    def _dir(self, name: str) -> Path:
        """The collection's folder, resolved; never through a link (a folder handed over may hold one)."""
        return confined(self.folder, self.folder / "collections" / check_collection_name(name), what="collection")

    def list_collections(self) -> list[str]:
        """Names of the collections (those whose layout file is written)."""
        root = self.folder / "collections"
        return sorted(p.name for p in root.iterdir() if (p / LAYOUT_FILE).is_file()) if root.is_dir() else []

    def _layout(self, name: str) -> CollectionLayout:
        path = self._dir(name) / LAYOUT_FILE
        if not path.is_file():
            raise CollectionNotFoundError(name, self.describe(), self.list_collections())
        try:
            layout = layout_from_metadata(load_json_object(path))
        except (OSError, ValueError, TypeError) as exc:  # TypeError: a field of the wrong kind
            raise StoreUnavailableError(f"collection {name!r} in {self.describe()}: unreadable {path}: {exc}") from None
        if layout is None:
            raise StoreUnavailableError(f"collection {name!r} in {self.describe()}: {path} holds no layout")
        return layout

    def _shard(self, name: str) -> Any:
        if name not in self._shards:
            path = self._dir(name) / "shard"
            try:
                self._shards[name] = _edge().EdgeShard.load(str(path))
            except Exception as exc:
                raise StoreUnavailableError(
                    f"collection {name!r} in {self.describe()}: cannot open its shard ({exc})".splitlines()[0]
                ) from exc
        return self._shards[name]

    def _create(self, name: str, layout: CollectionLayout) -> None:
        """The shard first, the layout file last: a collection exists once its layout is written."""
        edge = _edge()
        folder = self._dir(name)
        safe_rmtree(self.folder, folder / "shard")  # left by a create that never finished; never through a link
        folder.mkdir(parents=True, exist_ok=True)
        params = edge.EdgeVectorParams(size=layout.dimension, distance=edge.Distance.Cosine)
        vectors = {key: params for key in layout.vectors} if layout.vectors else params
        self._shards[name] = edge.EdgeShard.create(str(folder / "shard"), edge.EdgeConfig(vectors=vectors))
        _write_json_atomic(folder / LAYOUT_FILE, layout.to_metadata())

    # ------------------------------------------------------------------ the Store protocol
    def info(self, name: str) -> CollectionInfo:
        """What the collection's layout file records, plus its size."""
        layout = self._layout(name)
        with named_failures(self.describe()):
            return layout.to_info(name, int(self._shard(name).count(_edge().CountRequest(exact=True))))

    def ingest(
        self,
        name: str,
        documents: Iterable[Any],
        encoder: Encoder,
        *,
        model: str,
        batch_size: int | None = None,
        on_duplicate: DuplicatePolicy = "error",
        show_progress: bool = True,
        allow_model_change: bool = False,
        vectors: Mapping[str, str] | None = None,
    ) -> IngestReport:
        """Create the collection (or check that ``encoder`` fits it), then ingest ``documents``."""
        from .collection import _wanted

        check_collection_name(name)
        wanted = _wanted(encoder, vectors, model)
        if name in self.list_collections():
            stored = self._layout(name)
            if bool(stored.vectors) != bool(wanted.vectors):
                raise CollectionMismatchError(
                    f"collection {name!r} has vectors {sorted(stored.vectors) or 'one unnamed'}, asked for "
                    f"{sorted(wanted.vectors) or 'one unnamed'}"
                )
            layout = check_layout(name, stored, wanted, allow_model_change=allow_model_change)
            layout = replace(layout, vectors=dict(stored.vectors))
        else:
            self._create(name, wanted)
            layout = wanted
        shard = self._shard(name)
        with named_failures(self.describe()), _flushed(shard):
            return run_ingest(
                documents,
                EdgeSink(shard, encoder, layout),
                batch_size=batch_size or DEFAULT_BATCH_SIZE,
                on_duplicate=on_duplicate,
                show_progress=show_progress,
                desc=f"Ingesting into {name}",
            )

    def search(
        self,
        name: str,
        queries: Sequence[str],
        encoder: Encoder,
        *,
        k: int = 10,
        filters: Mapping[str, Any] | None = None,
        instruction: str | None = None,
        vector: str | None = None,
        allow_model_change: bool = False,
    ) -> list[list[Hit]]:
        """Embed ``queries`` with the query instruction and search the collection's shard."""
        check_positive_int(k, "k")
        layout = self._layout(name)
        check_search_encoder(name, layout, encoder, allow_model_change)
        if vector is not None and vector not in layout.vectors:
            raise ValueError(f"collection {name!r} has no named vector {vector!r} (it has: {sorted(layout.vectors)})")
        if vector is None and layout.vectors:
            raise ValueError(f"collection {name!r} has named vectors {sorted(layout.vectors)}; pick one with vector=")
        shard = self._shard(name)
        if not queries:
            return []
        edge = _edge()
        matrix = encoder.encode_queries(list(queries), instruction)
        where = _filter(filters)
        out = []
        with named_failures(self.describe()):
            for row in matrix:
                request = edge.QueryRequest(
                    limit=k, query=edge.Query.Nearest(row.tolist(), using=vector), filter=where, with_payload=True
                )
                out.append([_to_hit(p) for p in shard.query(request)])
        return out

    def delete(self, name: str) -> None:
        """Delete the collection (its layout file first, so a half-deleted one no longer lists)."""
        self._layout(name)
        shard = self._shards.pop(name, None)
        if shard is not None:
            shard.close()
        folder = self._dir(name)
        (folder / LAYOUT_FILE).unlink()
        safe_rmtree(self.folder, folder)

    def close(self) -> None:
        """Flush and close the shards, then release the folder's lock."""
        try:
            for shard in self._shards.values():
                shard.flush()
                shard.close()
        finally:
            self._shards.clear()
            lock, self._lock = getattr(self, "_lock", None), None
            if lock is not None:
                lock.__exit__(None, None, None)


def open_edge_store(
    folder: str | os.PathLike[str], *, lock_timeout: float | None = None, create: bool = True
) -> EdgeStore:
    """Open (or, with ``create``, start) the embedded Qdrant Edge store in ``folder``; see :class:`EdgeStore`."""
    _edge()
    return EdgeStore(folder, lock_timeout=lock_timeout, create=create)
