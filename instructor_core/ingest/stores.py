"""Vector stores behind one protocol, found by entry point, so the CLI only dispatches.

A store is opened from a URL: ``SCHEME:DIR`` for an embedded store (``chroma:./db``, ``qdrant:./db``)
or ``SCHEME+http(s)://HOST:PORT`` for a server. The scheme names an entry point in the group
``instructor.stores`` whose value is a factory ``open_store(location: str, *, create: bool = True) -> Store``
(``create=False``: refuse to make an embedded store that does not exist; optional); this package
registers ``chroma`` (``instructor_chroma``) and ``qdrant`` (``instructor_qdrant``), and a third
party adds a store (pgvector, LanceDB, ...) by shipping its own entry point::

    [project.entry-points."instructor.stores"]
    lancedb = "instructor_lancedb:open_store"

A store is storage only: it creates collections with a :class:`CollectionLayout`, hands out a
:class:`StoreSink` that writes precomputed vectors, and searches by query vectors. Encoding lives
once, above the stores, in :mod:`instructor_core.ingest.store_ops`. :class:`BaseStore` writes the bodies
every store shares (existence checks, info from a layout, error translation, close), so a store
implements only its primitives.

No vector-store import happens here: the factory imports its stack when it is called.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from instructor_core.errors import InputError, InputTypeError, InstructorError
from instructor_core.ingest.engine_errors import engine_failure
from instructor_core.ingest.layout import (  # noqa: F401 (re-exported: the stores API)
    META_KEY,
    SPARSE_FEATURE,
    CollectionInfo,
    CollectionLayout,
    Fusion,
    Hit,
    Quantization,
    SearchMode,
    layout_features,
)
from instructor_core.ingest.records import HASH_KEY, Record, RecordRules, content_hash
from instructor_core.ingest.registry import (  # noqa: F401
    ENTRY_POINT_GROUP,
    check_collection_name,
    check_features,
    check_store_kind,
    open_store,
    split_store_url,
    store_factory,
    store_schemes,
)
from instructor_core.ingest.store_errors import (  # noqa: F401
    CollectionMismatchError,
    CollectionNotFoundError,
    ModelChangeWarning,
    ModelMismatchError,
    NoKeywordIndexError,
    NoKeywordTermsWarning,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
    check_model,
    encoder_fingerprint,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "BaseStore",
    "CollectionInfo",
    "CollectionLayout",
    "CollectionMismatchError",
    "CollectionNotFoundError",
    "Fusion",
    "Hit",
    "ModelChangeWarning",
    "ModelMismatchError",
    "Quantization",
    "NoKeywordIndexError",
    "NoKeywordTermsWarning",
    "SPARSE_FEATURE",
    "SearchMode",
    "Store",
    "StoreError",
    "StoreNotFoundError",
    "StoreSink",
    "StoreUnavailableError",
    "check_collection_name",
    "check_features",
    "check_model",
    "check_store_kind",
    "encoder_fingerprint",
    "lock_timeout_s",
    "hit_from_payload",
    "hashes_of_payloads",
    "layout_features",
    "payload_of",
    "open_store",
    "split_store_url",
    "store_factory",
    "store_schemes",
]

#: Seconds a process waits for another one's lock on an embedded store folder, unless
#: ``$INSTRUCTOR_LOCK_TIMEOUT`` says otherwise.
DEFAULT_LOCK_TIMEOUT = 10.0


def lock_timeout_s(timeout: float | None = None) -> float:
    """``timeout`` if given, else ``$INSTRUCTOR_LOCK_TIMEOUT`` (seconds), else :data:`DEFAULT_LOCK_TIMEOUT`.

    Raises:
        ValueError: The variable is not a number of seconds >= 0.
    """
    if timeout is not None:
        return timeout
    raw = os.environ.get("INSTRUCTOR_LOCK_TIMEOUT")
    if raw is None or raw == "":
        return DEFAULT_LOCK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise InputError(f"INSTRUCTOR_LOCK_TIMEOUT={raw!r}: expected a number of seconds >= 0")
    return value


class StoreSink(Protocol):
    """Where an ingest writes one collection: the ingest engine's ``BatchSink`` without ``embed``
    (the vectors come made: by :mod:`instructor_core.ingest.store_ops`, or by Ray workers).

    Attributes:
        rules: What the store keeps faithfully as metadata (checked for a whole batch first).
        overlap: Whether encoding the next batch while this one is written pays (a server: yes;
            an embedded store, whose writes need the encoder's cores: no).
        max_batch_size: The most records one ``write`` takes (the client's limit), or None.

    Optional: ``stored_hashes(ids: Sequence[str]) -> dict[str, str]``, the content hashes
    (:func:`~instructor_core.ingest.records.content_hash`) stored for those of ``ids`` that are
    present with one. The ingest engine skips a record stored with its hash unchanged; a sink
    without the method has every record embedded and written (a third-party store keeps working).
    A sink that has it writes each record's hash under :data:`~instructor_core.ingest.records.HASH_KEY`
    and reserves that key in its ``rules``.

    Optional: ``finish() -> None``, the store's work once the last batch is written (Qdrant Edge
    optimizes a quantized shard so its quantized vectors exist); called once by
    :func:`~instructor_core.ingest.store_ops.ingest` (and by the Ray engine's writers) after a
    complete ingest, never after a failed one.
    """

    rules: RecordRules
    overlap: bool
    max_batch_size: int | None

    def write(self, records: Sequence[Record], vectors: Sequence[Any]) -> None:
        """Upsert the batch by deterministic id (a vector, or ``{name: vector}`` for named vectors)."""
        ...

    def is_transport_error(self, exc: BaseException) -> bool:
        """Whether a failed write may be retried: the request may not have reached the store."""
        ...


class Store(Protocol):
    """A vector store, storage only: administration, a sink per collection, search by vectors.

    Every method raises :class:`StoreError` (or a subclass) for expected failures, with a one-line
    message. :class:`BaseStore` implements this protocol over a few primitives.

    Attributes:
        single_writer: The store is a folder one process owns (an embedded store): only the
            process that opened it may write, so an engine's workers must not open sinks themselves.
    """

    single_writer: bool

    def describe(self) -> str:
        """Where the store is, for messages: ``"chroma at ./db"``."""
        ...

    def list_collections(self) -> list[str]:
        """Names of the collections in the store."""
        ...

    def info(self, name: str) -> CollectionInfo:
        """What the collection records (its ``layout`` where instructor made it); :class:`CollectionNotFoundError`
        if it does not exist."""
        ...

    def create_collection(self, name: str, layout: CollectionLayout) -> CollectionInfo:
        """Create the collection for ``layout``, or, where it exists, return its info unchanged (the
        caller compares the layouts); :class:`CollectionMismatchError` where the store itself sees
        that it cannot hold ``layout``'s vectors (another dimension or distance)."""
        ...

    def sink(self, name: str) -> StoreSink:
        """The writer of an existing collection's points."""
        ...

    def search(
        self,
        name: str,
        vectors: Sequence[Sequence[float]],
        *,
        k: int = 10,
        filters: Mapping[str, Any] | None = None,
        vector: str | None = None,
        texts: Sequence[str] | None = None,
        mode: SearchMode = "dense",
        fusion: Fusion = "rrf",
    ) -> list[list[Hit]]:
        """The best ``k`` hits for each query vector; ``filters`` are ``{metadata key: value}``, all of
        which must match; ``vector`` names the named vector to search. ``mode="keyword"`` ranks the
        raw query ``texts`` by the collection's keyword index (``vectors`` may be empty), ``"hybrid"``
        fuses the dense and keyword lists (``fusion``); both need a collection with ``sparse``."""
        ...

    def delete(self, name: str) -> None:
        """Delete the collection; :class:`CollectionNotFoundError` if it does not exist."""
        ...

    def close(self) -> None:
        """Release the client (and the lock on an embedded store's folder, held from open to close)."""
        ...


def payload_of(record: Record) -> dict[str, Any]:
    """The payload a store keeps the document in beside its metadata (Qdrant's points):
    ``{"id", "text", **metadata, HASH_KEY: content_hash(record)}``."""
    return {"id": record.id, "text": record.text, **dict(record.metadata), HASH_KEY: content_hash(record)}


def hashes_of_payloads(payloads: Sequence[Mapping[str, Any] | None]) -> dict[str, str]:
    """``{document id: content hash}`` of stored payloads (:func:`payload_of`); a payload written
    before hashes were kept (no hash) is left out, so its record is embedded again once."""
    out: dict[str, str] = {}
    for payload in payloads:
        if not payload:
            continue
        doc_id, stored = payload.get("id"), payload.get(HASH_KEY)
        if isinstance(doc_id, str) and isinstance(stored, str):
            out[doc_id] = stored
    return out


def hit_from_payload(payload: Mapping[str, Any] | None, score: float, point_id: object = "") -> Hit:
    """A :class:`Hit` from a stored payload ``{"id", "text", **metadata}`` (Qdrant's points, and
    any store that keeps the document beside its metadata); the content hash is not metadata."""
    rest = dict(payload or {})
    rest.pop(HASH_KEY, None)
    doc_id = rest.pop("id", None)
    text = rest.pop("text", "")
    return Hit(id=str(doc_id), text=text or "", score=float(score), metadata=rest, point_id=str(point_id or ""))


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__


class BaseStore:
    """The bodies every store shares, over the primitives a store implements.

    A subclass sets :attr:`scheme`, :attr:`location`, :attr:`single_writer` and :attr:`store_errors`
    (its library's documented errors for a refused request), and implements ``_exists``,
    ``_layout``, ``_count``, ``_create``, ``_drop``, ``_sink``, ``_query``, ``_names`` and
    ``_release``; it may override :meth:`is_transport_error`. Each public method checks that the
    collection exists where it must, and turns the store's documented errors into one-line
    :class:`StoreError` s in one place (:meth:`translated`).
    """

    scheme: str = "store"
    location: str = ""
    single_writer: bool = False
    #: The library's errors that mean "the store refused the request" (shown as one line).
    store_errors: tuple[type[BaseException], ...] = ()
    #: Layout features the store can hold (``sparse``, a ``quantization`` other than none).
    features: frozenset[str] = frozenset()
    #: Why the store cannot hold a feature it lacks (``{feature: reason}``), for the refusal.
    feature_notes: Mapping[str, str] = {}
    #: An embedded store's entered folder lock (``instructor_core.locking.store_lock``), released by close.
    _lock: AbstractContextManager[Any] | None = None

    # ------------------------------------------------------------------ primitives
    def _names(self) -> list[str]:
        raise NotImplementedError

    def _exists(self, name: str) -> bool:
        return name in self._names()

    def _layout(self, name: str) -> CollectionLayout | None:
        """The layout an existing collection records; None where instructor did not make it."""
        raise NotImplementedError

    def _count(self, name: str) -> int:
        raise NotImplementedError

    def _create(self, name: str, layout: CollectionLayout) -> None:
        raise NotImplementedError

    def _check_existing(self, name: str, layout: CollectionLayout) -> None:
        """Refuse an existing collection that cannot hold ``layout``'s vectors (store-side check)."""

    def _drop(self, name: str) -> None:
        raise NotImplementedError

    def _sink(self, name: str) -> StoreSink:
        raise NotImplementedError

    def _query(
        self, name: str, vectors: list[list[float]], k: int, filters: Mapping[str, Any] | None, vector: str | None
    ) -> list[list[Hit]]:
        raise NotImplementedError

    def _query_keyword(
        self,
        name: str,
        vectors: list[list[float]],
        texts: list[str],
        k: int,
        filters: Mapping[str, Any] | None,
        vector: str | None,
        mode: SearchMode,
        fusion: Fusion,
    ) -> list[list[Hit]]:
        """A keyword or hybrid search (stores with a ``sparse`` feature)."""
        raise StoreError(f"{self.describe()} has no keyword index: search it with mode 'dense'")

    def _release(self) -> None:
        """Close the client."""

    def check_name(self, name: str) -> str:
        """The store's rules for a collection name (ValueError naming the rule)."""
        return name

    def is_transport_error(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the store could not be reached (retried by a write, shown as
        :class:`StoreUnavailableError`)."""
        return isinstance(exc, (ConnectionError, TimeoutError))

    # ------------------------------------------------------------------ written once
    def describe(self) -> str:
        """``"SCHEME at LOCATION"``."""
        return f"{self.scheme} at {self.location}"

    @contextmanager
    def translated(self) -> Iterator[None]:
        """The store's documented errors as one-line :class:`StoreError`, and its engine's disk-full
        and damage errors as one line naming the cause (:func:`~instructor_core.ingest.engine_errors.engine_failure`);
        others unchanged."""
        try:
            yield
        except InstructorError:
            raise
        except Exception as exc:
            if (cause := engine_failure(exc, self.describe())) is not None:
                raise StoreError(cause) from exc
            if self.is_transport_error(exc):
                raise StoreUnavailableError(f"cannot reach {self.describe()}: {_first_line(exc)}") from exc
            if self.store_errors and isinstance(exc, self.store_errors):
                text = f"{type(exc).__name__}: {_first_line(exc)}"
                raise StoreError(f"{self.describe()} refused the request: {text}") from exc
            raise

    def _require(self, name: str) -> None:
        if not self._exists(self.check_name(name)):
            raise CollectionNotFoundError(name, self.describe(), self._names())

    def list_collections(self) -> list[str]:
        """Names of the collections."""
        with self.translated():
            return sorted(self._names())

    def info(self, name: str) -> CollectionInfo:
        """What the collection records, plus its size. A collection made outside instructor has
        ``model=None`` and empty instructions."""
        with self.translated():
            self._require(name)
            return self._info(name, self._layout(name))

    def _info(self, name: str, layout: CollectionLayout | None) -> CollectionInfo:
        count = int(self._count(name))
        if layout is None:
            return CollectionInfo(name=name, model=None, query_instruction="", document_instruction="",
                                  dimension=0, count=count)  # fmt: skip
        return layout.to_info(name, count)

    def create_collection(self, name: str, layout: CollectionLayout) -> CollectionInfo:
        """Create the collection for ``layout``, or return the existing one's info (see :class:`Store`)."""
        missing = sorted(set(layout.features()) - self.features)
        if missing:
            notes = [self.feature_notes[f] for f in missing if f in self.feature_notes]
            why = f" ({'; '.join(notes)})" if notes else ""
            raise StoreError(f"{self.describe()} cannot hold {' or '.join(missing)} collections yet{why}")
        with self.translated():
            if self._exists(self.check_name(name)):
                self._check_existing(name, layout)
                return self._info(name, self._layout(name))
            self._create(name, layout)
            return layout.to_info(name, 0)

    def sink(self, name: str) -> StoreSink:
        """The writer of an existing collection's points."""
        with self.translated():
            self._require(name)
            return self._sink(name)

    def search(
        self,
        name: str,
        vectors: Sequence[Sequence[float]],
        *,
        k: int = 10,
        filters: Mapping[str, Any] | None = None,
        vector: str | None = None,
        texts: Sequence[str] | None = None,
        mode: SearchMode = "dense",
        fusion: Fusion = "rrf",
    ) -> list[list[Hit]]:
        """The best ``k`` hits for each query vector (see :class:`Store`)."""
        from instructor_core.validation import check_positive_int

        check_positive_int(k, "k")
        rows = [list(map(float, v)) for v in vectors]
        words = _check_search_mode(mode, fusion, rows, texts)
        with self.translated():
            self.check_name(name)
            try:  # no existence check first: a search reads the collection once
                if mode != "dense":
                    if not words:
                        return []
                    return self._query_keyword(name, rows, words, k, filters or None, vector, mode, fusion)
                return self._query(name, rows, k, filters or None, vector) if rows else []
            except CollectionNotFoundError:
                raise
            except Exception:
                if not self._exists(name):
                    raise CollectionNotFoundError(name, self.describe(), self._names()) from None
                raise

    def delete(self, name: str) -> None:
        """Delete the collection."""
        with self.translated():
            self._require(name)
            self._drop(name)

    def close(self) -> None:
        """Release the client, then the folder's lock (an embedded store)."""
        try:
            self._release()
        finally:
            lock, self._lock = getattr(self, "_lock", None), None
            if lock is not None:
                lock.__exit__(None, None, None)


def _check_search_mode(mode: str, fusion: str, rows: list[list[float]], texts: Sequence[str] | None) -> list[str]:
    """The query texts of a keyword or hybrid search, after checking the mode, the fusion and that
    there is one text per query (and, for hybrid, one vector per text)."""
    if mode not in ("dense", "keyword", "hybrid"):
        raise InputError(f"mode {mode!r}: expected 'dense', 'keyword' or 'hybrid'")
    if fusion not in ("rrf", "dbsf"):
        raise InputError(f"fusion {fusion!r}: expected 'rrf' or 'dbsf'")
    if mode == "dense":
        return []
    if texts is None or isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise InputTypeError(f"a {mode} search needs texts=[query text, ...]: the keyword side ranks the raw queries")
    words = list(texts)
    if mode == "hybrid" and len(rows) != len(words):
        raise InputError(f"a hybrid search needs one vector per query text: {len(rows)} vectors, {len(words)} texts")
    return words
