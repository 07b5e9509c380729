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
import shutil
import stat
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from instructor_core.errors import InputError, install_hint
from instructor_core.ingest.records import HASH_KEY, Record, RecordRules, point_id
from instructor_core.ingest.stores import (
    SPARSE_FEATURE,
    BaseStore,
    CollectionLayout,
    Hit,
    Quantization,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
    hashes_of_payloads,
    hit_from_payload,
    lock_timeout_s,
    payload_of,
)
from instructor_core.messages import short_repr
from instructor_core.safe_paths import confined, load_json_object, safe_rmtree

from . import hybrid
from .filters import checked_filters
from .quantization import QUANTIZED_FEATURES, edge_quantization_config, edge_search_params

__all__ = ["EDGE_RULES", "EdgeSink", "EdgeStore", "LocalModeStoreError", "check_collection_name", "open_edge_store"]

#: The file that marks a folder as an Edge store of this package.
MARKER = "instructor-qdrant-edge.json"
FORMAT = 1
LAYOUT_FILE = "instructor.json"
#: The payload is JSON; Edge refuses NaN and infinities (mid-batch) and turns integers past 64 bits
#: into floats, so those are refused before the batch is written.
EDGE_RULES = RecordRules(
    metadata_values="json", reserved_keys=("id", "text", HASH_KEY), finite_numbers=True, int_bits=64, dotted_keys=False
)
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")


class LocalModeStoreError(StoreError):
    """The folder holds a qdrant-client local-mode store, which is never opened here (it unpickles)."""


def _edge() -> Any:
    try:
        import qdrant_edge
    except ImportError as exc:
        raise ImportError(
            f"qdrant:DIR needs Qdrant Edge (qdrant-edge-py); install it with: {install_hint('qdrant')}"
        ) from exc
    return qdrant_edge


def check_collection_name(name: Any) -> str:
    """A collection name that is one safe folder name: letters, digits, ``_``, ``.``, ``-``, not
    starting with ``.`` or ``-``, 1-255 characters.

    Raises:
        ValueError: Naming the rule.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InputError(
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
    """The writer of an Edge shard's points: upsert by ``point_id`` (a re-run changes nothing). The
    vectors come made: the ingest engine embeds (``store_ops``), the sink only stores.

    Args:
        shard: An open ``qdrant_edge.EdgeShard``.
    """

    rules = EDGE_RULES
    overlap = True
    max_batch_size: int | None = None

    def __init__(self, shard: Any) -> None:
        self.shard = shard
        #: Optimize the shard once the ingest is written (a quantized collection: Qdrant builds its
        #: quantized vectors when it optimizes a segment).
        self.optimize = False

    def write(self, records: Sequence[Record], vectors: Sequence[Any]) -> None:
        """Upsert the batch's points (one update: all of them or, on an error, none)."""
        edge = _edge()
        points = [edge.Point(point_id(r.id), _plain(v), payload_of(r)) for r, v in zip(records, vectors, strict=True)]
        self.shard.update(edge.UpdateOperation.upsert_points(points))

    def stored_hashes(self, ids: Sequence[str]) -> dict[str, str]:
        """``{document id: content hash}`` of those of ``ids`` stored with a hash (one retrieve)."""
        if not ids:
            return {}
        found = self.shard.retrieve([point_id(i) for i in dict.fromkeys(ids)], ["id", HASH_KEY], False)
        return hashes_of_payloads([r.payload for r in found])

    def is_transport_error(self, exc: BaseException) -> bool:
        """Never: the shard is in this process, so a failed write is not retried."""
        return False

    def finish(self) -> None:
        """After the last write: optimize a quantized collection's shard, which builds its quantized
        vectors (and the HNSW index they are searched through)."""
        if self.optimize:
            self.shard.optimize()


def _plain(vector: Any) -> Any:
    """A vector as Edge takes it: a list of floats, or ``{name: list}``."""
    if isinstance(vector, Mapping):
        return {key: _plain(v) for key, v in vector.items()}
    return vector.tolist() if hasattr(vector, "tolist") else list(vector)


def _filter(filters: Mapping[str, Any] | None) -> Any:
    """An Edge filter for ``{payload key: value}`` (all must match; a list matches any item)."""
    if not filters:
        return None
    edge = _edge()
    must = []
    for key, value in checked_filters(filters):  # what Qdrant cannot match: one line, before the shard is asked
        match = edge.MatchAny(value) if isinstance(value, list) else edge.MatchValue(value)
        must.append(edge.FieldCondition(key=key, match=match))
    return edge.Filter(must=must)


def _holes(folder: Path) -> int:
    """Bytes the files under ``folder`` claim but do not hold yet (sparse files: size past the blocks
    allocated to them)."""
    total = 0
    for path in folder.rglob("*"):
        try:
            info = path.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            total += max(0, info.st_size - info.st_blocks * 512)
    return total


def _check_room_to_open(shard: Path, what: str) -> None:
    """Refuse to open a shard the disk has no room for, in one line.

    Qdrant Edge maps a segment's sparse files (``chunk_0.mmap``: 32 MiB) into memory and fills them
    when it loads the shard, even to count the points: on a full disk a write to such a page kills
    the process with SIGBUS (exit 135, no message), which Python cannot catch. So the space those
    files can still take is checked first.

    Raises:
        StoreUnavailableError: Naming the space needed and the space free.
    """
    segments = shard / "segments"
    if not segments.is_dir():
        return
    needed = _holes(segments)
    if needed == 0:
        return
    try:
        free = shutil.disk_usage(shard).free
    except OSError:
        return
    if free < needed:
        mib = 1024 * 1024
        raise StoreUnavailableError(
            f"{what}: the disk is full: Qdrant Edge fills up to {needed / mib:.0f} MiB of its mapped files when it "
            f"opens this shard and {free / mib:.0f} MiB are free (it would die with SIGBUS); free space, then run "
            "the same command again"
        )


class EdgeStore(BaseStore):
    """Embedded Qdrant (Qdrant Edge) in a folder, as an ``instructor_core.ingest.stores.Store``.

    The store's lock (``instructor_core.locking.store_lock``) is taken when it is opened and held
    until :meth:`close`: a second process waits up to ``lock_timeout`` seconds, then fails with one
    line naming the holder's pid. Use :func:`open_edge_store` (or ``open_store("qdrant:DIR")``).

    Args:
        folder: The store folder.
        lock_timeout: Seconds to wait for another process's lock; None: ``$INSTRUCTOR_LOCK_TIMEOUT`` or 10.
        create: Start a store where there is none; False raises ``StoreNotFoundError`` instead,
            creating nothing.
    """

    scheme = "qdrant"
    single_writer = True
    features = QUANTIZED_FEATURES | {SPARSE_FEATURE}  # quantization; a keyword index: instructor_qdrant.hybrid

    def __init__(
        self, folder: str | os.PathLike[str], *, lock_timeout: float | None = None, create: bool = True
    ) -> None:
        from instructor_core.locking import store_lock

        self._shards: dict[str, Any] = {}
        self._quantization: dict[str, Quantization] = {}  # collection -> its layout's quantization, once read
        self._unoptimized: set[str] = set()  # quantized collections written since their last optimize

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
        self._lock = store_lock(self.folder, timeout=lock_timeout_s(lock_timeout), what="Qdrant store")
        self._lock.__enter__()  # held until close()
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

    # ------------------------------------------------------------------ the store's primitives
    def describe(self) -> str:
        """``"qdrant (embedded, Qdrant Edge) at DIR"``."""
        return f"qdrant (embedded, Qdrant Edge) at {self.location}"

    def check_name(self, name: str) -> str:
        """See :func:`check_collection_name`."""
        return check_collection_name(name)

    def _dir(self, name: str) -> Path:
        """The collection's folder, resolved; never through a link (a folder handed over may hold one)."""
        return confined(self.folder, self.folder / "collections" / check_collection_name(name), what="collection")

    def _names(self) -> list[str]:
        root = self.folder / "collections"
        return [p.name for p in root.iterdir() if (p / LAYOUT_FILE).is_file()] if root.is_dir() else []

    def _exists(self, name: str) -> bool:
        return (self._dir(name) / LAYOUT_FILE).is_file()

    def _layout(self, name: str) -> CollectionLayout:
        path = self._dir(name) / LAYOUT_FILE
        try:
            layout = CollectionLayout.from_metadata(load_json_object(path))
        except (OSError, ValueError, TypeError) as exc:  # TypeError: a field of the wrong kind
            raise StoreUnavailableError(f"collection {name!r} in {self.describe()}: unreadable {path}: {exc}") from None
        if layout is None:
            raise StoreUnavailableError(f"collection {name!r} in {self.describe()}: {path} holds no layout")
        try:
            hybrid.check_keyword_index(layout)
        except InputError as exc:
            raise StoreUnavailableError(f"collection {name!r} in {self.describe()}: {path}: {exc}") from None
        return layout

    def _count(self, name: str) -> int:
        return int(self._shard(name).count(_edge().CountRequest(exact=True)))

    def _shard(self, name: str) -> Any:
        if name not in self._shards:
            path = self._dir(name) / "shard"
            _check_room_to_open(path, f"collection {name!r} in {self.describe()}")
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
        layout = hybrid.sparse_layout(layout)
        sparse = hybrid.edge_sparse_config(edge) if layout.sparse else None
        config = edge.EdgeConfig(vectors=vectors, sparse_vectors=sparse, **_quantized(edge, layout))
        self._shards[name] = edge.EdgeShard.create(str(folder / "shard"), config)
        _write_json_atomic(folder / LAYOUT_FILE, layout.to_metadata())
        self._quantization[name] = layout.quantization

    def _sink(self, name: str) -> EdgeSink:
        sink = EdgeSink(self._shard(name))
        if self._quantized_mode(name) != "none":
            sink.optimize = True
            self._unoptimized.add(name)  # (optimized at close too: a writer that never calls finish)
        layout = self._layout(name)
        return hybrid.HybridEdgeSink(sink, layout) if layout.sparse else sink  # type: ignore[return-value]

    def _quantized_mode(self, name: str) -> Quantization:
        if name not in self._quantization:
            self._quantization[name] = self._layout(name).quantization
        return self._quantization[name]

    def _query_keyword(
        self, name: str, vectors: list[list[float]], texts: list[str], k: int, filters: Mapping[str, Any] | None,
        vector: str | None, mode: str, fusion: str,
    ) -> list[list[Hit]]:  # fmt: skip
        """Keyword or hybrid hits (:func:`instructor_qdrant.hybrid.query_edge`)."""
        return hybrid.query_edge(self._shard(name), self._layout(name), vectors, texts, k=k, where=_filter(filters),
                                 vector=vector, mode=mode, fusion=fusion)  # fmt: skip

    def _query(
        self, name: str, vectors: list[list[float]], k: int, filters: Mapping[str, Any] | None, vector: str | None
    ) -> list[list[Hit]]:
        edge, shard, where = _edge(), self._shard(name), _filter(filters)
        params = edge_search_params(edge, self._quantized_mode(name))  # rescored on the float vectors
        out = []
        for row in vectors:
            request = edge.QueryRequest(
                limit=k, query=edge.Query.Nearest(row, using=vector), filter=where, with_payload=True, params=params
            )
            out.append([hit_from_payload(p.payload, p.score, p.id) for p in shard.query(request)])
        return out

    def _drop(self, name: str) -> None:
        """Its layout file first, so a half-deleted collection no longer lists."""
        shard = self._shards.pop(name, None)
        self._quantization.pop(name, None)
        self._unoptimized.discard(name)
        if shard is not None:
            shard.close()
        folder = self._dir(name)
        (folder / LAYOUT_FILE).unlink()
        safe_rmtree(self.folder, folder)

    def _release(self) -> None:
        """Flush and close the shards."""
        try:
            for name, shard in self._shards.items():
                if name in self._unoptimized:
                    shard.optimize()  # returns at once where the sink's finish did it already
                shard.flush()
                shard.close()
        finally:
            self._shards.clear()
            self._unoptimized.clear()


def _quantized(edge: Any, layout: CollectionLayout) -> dict[str, Any]:
    """The shard settings of a quantized collection: the quantization, and optimizers that index
    (and so quantize) any segment, however small; empty for ``"none"``."""
    config = edge_quantization_config(edge, layout.quantization)
    if config is None:
        return {}
    return {"quantization_config": config, "optimizers": edge.EdgeOptimizersConfig(indexing_threshold=1)}


def open_edge_store(
    folder: str | os.PathLike[str], *, lock_timeout: float | None = None, create: bool = True
) -> EdgeStore:
    """Open (or, with ``create``, start) the embedded Qdrant Edge store in ``folder``; see :class:`EdgeStore`."""
    _edge()
    return EdgeStore(folder, lock_timeout=lock_timeout, create=create)
