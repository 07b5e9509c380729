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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from inspect import signature
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from instructor_core.errors import InputError, InputTypeError, InstructorError
from instructor_core.ingest.engine_errors import engine_failure
from instructor_core.ingest.records import HASH_KEY, Record, RecordRules, content_hash

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

#: The entry-point group stores register under.
ENTRY_POINT_GROUP = "instructor.stores"
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


class StoreError(InstructorError, RuntimeError):
    """An expected failure of a store: a missing collection, a mismatch, an unreachable server.
    Its message is one line, meant for the person at the terminal."""


class CollectionNotFoundError(StoreError, LookupError):
    """The named collection does not exist; the message lists the ones that do."""

    def __init__(self, name: str, store: str, existing: Sequence[str]) -> None:
        listed = ", ".join(repr(n) for n in sorted(existing)) if existing else "none"
        super().__init__(f"no collection {name!r} in {store} (collections there: {listed})")
        self.name = name
        self.existing = list(existing)


class StoreUnavailableError(StoreError):
    """The store cannot be reached or opened (a server down, a folder that is not a store)."""


class StoreNotFoundError(StoreError, LookupError):
    """An embedded store was opened to read (``create=False``) where there is none: a mistyped
    folder. Nothing was created."""

    def __init__(self, location: str, detail: str = "") -> None:
        super().__init__(f"no store at {location}" + (f" ({detail})" if detail else ""))
        self.location = location


class ModelMismatchError(StoreError, ValueError):
    """A collection was made with another model than the encoder at hand (another fingerprint):
    their vectors do not compare. Raised before anything is written or searched.

    Attributes:
        collection: The collection's name.
        stored: The fingerprint the collection records.
        current: The encoder's fingerprint.
    """

    def __init__(self, collection: str | None, stored: str, current: str, *, what: str = "model fingerprint") -> None:
        which = f"collection {collection!r}" if collection else "the collection"
        why = " (other weights or configuration, even under the same path)" if what == "model fingerprint" else ""
        super().__init__(
            f"{which} was made with {what} {stored}, the encoder at hand has {current}{why}: their vectors do "
            "not compare. Use the model it was made with or a new collection, or pass allow_model_change=True "
            "(CLI: --allow-model-change) to mix them on purpose"
        )
        self.collection = collection
        self.stored = stored
        self.current = current


class ModelChangeWarning(UserWarning):
    """An ingest into a collection made with another model, allowed on purpose
    (``allow_model_change``), that skips the records stored unchanged: those keep the old model's
    vectors. ``skip_unchanged=False`` (CLI: ``--reembed``) embeds them all with the new one."""


def encoder_fingerprint(encoder: object) -> str | None:
    """The encoder's model fingerprint (``InstructorEncoder.fingerprint``), or None for an encoder
    that has none (a test double, a model built in memory and never saved)."""
    try:
        value = getattr(encoder, "fingerprint", None)
    except ValueError:  # InstructorEncoder not loaded from a folder
        return None
    return value if isinstance(value, str) and value else None


def check_model(
    collection: str | None, stored: str | None, current: str | None, *, allow_model_change: bool = False
) -> None:
    """Refuse an encoder whose fingerprint differs from the one a collection records.

    Nothing is checked where either side is unknown (a collection made before fingerprints were
    recorded, an encoder without one), or where ``allow_model_change`` says the change is meant.

    Raises:
        ModelMismatchError: Naming both fingerprints.
    """
    if allow_model_change or stored is None or current is None or stored == current:
        return
    raise ModelMismatchError(collection, stored, current)


@dataclass(frozen=True)
class Hit:
    """One search result.

    Attributes:
        id: The document id.
        text: The document text.
        score: Cosine similarity to the query.
        metadata: The rest of what was stored with the document.
        point_id: The store's own key for it, where that differs from ``id`` (Qdrant's uuid5).
    """

    id: str
    text: str
    score: float
    metadata: Mapping[str, Any] = field(default_factory=dict)
    point_id: str = ""


@dataclass(frozen=True)
class CollectionInfo:
    """What a collection records about how its vectors were made.

    Attributes:
        name: The collection's name.
        model: The model name or path it was made with, where recorded.
        query_instruction: The instruction for queries.
        document_instruction: The instruction its documents were embedded with.
        dimension: Vector length (0 where unknown: an empty collection made outside instructor).
        count: Number of documents stored.
        fingerprint: The model's content fingerprint, where recorded.
        created: When it was created (ISO 8601, UTC), where recorded.
        vectors: Named vectors and their document instructions (Qdrant), else empty.
        max_length: The token limit (instruction + text) its documents were embedded with, where
            recorded (collections made before it was recorded have None).
        layout: The whole layout, where instructor made the collection (None otherwise).
    """

    name: str
    model: str | None
    query_instruction: str
    document_instruction: str
    dimension: int
    count: int
    fingerprint: str | None = None
    created: str | None = None
    vectors: Mapping[str, str] = field(default_factory=dict)
    max_length: int | None = None
    layout: CollectionLayout | None = field(default=None, compare=False, repr=False)


class CollectionMismatchError(StoreError, ValueError):
    """An existing collection does not fit the encoder (dimension, distance, vector names, instructions)."""


#: The key of a layout in a collection's metadata (Qdrant) or layout file (Qdrant Edge).
META_KEY = "instructor"
Quantization = Literal["none", "int8", "binary"]
#: How a search ranks: by the dense vectors, by the keyword (BM25) index, or by both fused.
SearchMode = Literal["dense", "keyword", "hybrid"]
#: How a hybrid search fuses its two lists: reciprocal-rank fusion or distribution-based score fusion.
Fusion = Literal["rrf", "dbsf"]
#: The layout feature a keyword index is (see :meth:`CollectionLayout.features`).
SPARSE_FEATURE = "bm25 sparse-vector"


class NoKeywordTermsWarning(UserWarning):
    """A keyword (or hybrid) search whose query has no keyword terms left after the index's stop words
    and stemming ("the of"): its keyword ranking is empty. The CLI prints it as a note."""

    def __init__(self, query: str) -> None:
        super().__init__(
            f"no keyword terms in the query {query[:100]!r} (none left after stop words and stemming): "
            "its keyword ranking is empty; use other words or --mode dense"
        )


class NoKeywordIndexError(StoreError, ValueError):
    """A keyword or hybrid search of a collection made without a keyword index."""

    def __init__(self, name: str, mode: str) -> None:
        super().__init__(
            f"collection {name!r} has no keyword index, so it cannot be searched with mode {mode!r}: re-ingest "
            "the corpus with --hybrid (hybrid=True) into a new collection, or search with --mode dense"
        )


def layout_features(sparse: str | None, quantization: str) -> list[str]:
    """The store features a collection with a keyword index ``sparse`` ("bm25", or None) and
    ``quantization`` needs: what :attr:`BaseStore.features` must hold."""
    out = [f"{sparse} sparse-vector"] if sparse is not None else []
    return out + ([f"{quantization}-quantized"] if quantization not in (None, "none") else [])


@dataclass(frozen=True)
class CollectionLayout:
    """How a collection's vectors are made: what a store records when it creates one.

    Attributes:
        dimension: Vector length.
        vectors: Named vectors and the document instruction each is made with; empty for one
            unnamed vector made with ``document_instruction``.
        query_instruction: Instruction for queries.
        document_instruction: Instruction for documents (the unnamed vector).
        model: The model name or path, where known.
        fingerprint: The model's content fingerprint, where known.
        created: When the collection was created (ISO 8601, UTC), where known.
        distance: The similarity the store ranks by (instructor collections are cosine).
        loading: How the model was loaded: ``max_length`` (the token limit the documents were
            embedded with: every store records it, and a resume with another is refused, see
            :func:`~instructor_core.ingest.store_ops.check_layout`), ``instructor`` (Chroma's
            embedding-function config, to rebuild the encoder).
        sparse: Sparse vectors beside the dense ones: ``"bm25"``, a keyword index of the raw document
            text that the store computes itself (hybrid search); None: dense only.
        sparse_settings: The keyword index's parameters as the store records them (BM25's ``k``,
            ``b``, ``avg_len``, ``language``).
        quantization: How the dense vectors are kept: ``"none"`` (float32), ``"int8"`` (scalar) or
            ``"binary"`` (1 bit per dimension), beside the float vectors a search rescores with;
            stores that cannot keep them refuse the layout (their ``features``).
    """

    dimension: int
    vectors: Mapping[str, str] = field(default_factory=dict)
    query_instruction: str = ""
    document_instruction: str = ""
    model: str | None = None
    fingerprint: str | None = None
    created: str | None = None
    distance: Literal["cosine"] = "cosine"
    loading: Mapping[str, Any] = field(default_factory=dict, compare=False)
    sparse: Literal["bm25"] | None = None
    sparse_settings: Mapping[str, Any] = field(default_factory=dict, compare=False)
    quantization: Quantization = "none"

    def features(self) -> list[str]:
        """The reserved features this layout asks for (``["bm25 sparse-vector"]``, ``["int8-quantized"]``)."""
        return layout_features(self.sparse, self.quantization)

    def to_metadata(self) -> dict[str, Any]:
        """``{"instructor": {...}}``: the layout as collection metadata (the on-disk format)."""
        stored: dict[str, Any] = {
            "model": self.model,
            "dimension": self.dimension,
            "query_instruction": self.query_instruction,
            "document_instruction": self.document_instruction,
            "vectors": dict(self.vectors),
            "fingerprint": self.fingerprint,
            "created": self.created,
            **({"quantization": self.quantization} if self.quantization != "none" else {}),
        }
        if self.max_length is not None:
            stored["max_length"] = self.max_length
        if self.sparse is not None:  # only then: a dense collection's metadata stays as it was
            stored["sparse"] = {"kind": self.sparse, "settings": dict(self.sparse_settings)}
        return {META_KEY: stored}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any] | None) -> CollectionLayout | None:
        """The layout :meth:`to_metadata` wrote, or None where there is none."""
        stored = (metadata or {}).get(META_KEY)
        if not isinstance(stored, Mapping):
            return None
        sparse = stored.get("sparse")
        sparse = sparse if isinstance(sparse, Mapping) and sparse.get("kind") == "bm25" else None
        return cls(
            dimension=int(stored.get("dimension") or 0),
            vectors=dict(stored.get("vectors") or {}),
            query_instruction=str(stored.get("query_instruction") or ""),
            document_instruction=str(stored.get("document_instruction") or ""),
            model=stored.get("model"),
            fingerprint=stored.get("fingerprint"),
            created=stored.get("created"),
            quantization=_quantization(stored.get("quantization")),
            sparse="bm25" if sparse is not None else None,
            sparse_settings=dict((sparse or {}).get("settings") or {}),
            loading=_loading(stored.get("max_length")),
        )

    @property
    def max_length(self) -> int | None:
        """The token limit the documents were embedded with (``loading["max_length"]``); None where
        not recorded (a collection made before it was)."""
        value = self.loading.get("max_length")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def to_info(self, name: str, count: int) -> CollectionInfo:
        """The protocol's :class:`CollectionInfo` for collection ``name``."""
        return CollectionInfo(
            name=name,
            model=self.model,
            query_instruction=self.query_instruction,
            document_instruction=self.document_instruction,
            dimension=self.dimension,
            count=count,
            fingerprint=self.fingerprint,
            created=self.created,
            vectors=dict(self.vectors),
            max_length=self.max_length,
            layout=self,
        )


def _quantization(value: object) -> Quantization:
    """A recorded quantization mode (absent: ``"none"``).

    Raises:
        ValueError: A value that is not one of the modes.
    """
    if value is None:
        return "none"
    if value not in ("none", "int8", "binary"):
        raise InputError(f"quantization {value!r}: expected none, int8 or binary")
    return value


def _loading(max_length: object) -> dict[str, Any]:
    """The ``loading`` of a recorded layout: its ``max_length`` (absent: not recorded).

    Raises:
        ValueError: A value that is not a positive integer.
    """
    if max_length is None:
        return {}
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise InputError(f"max_length {str(max_length)[:40]!r}: expected a positive integer")
    return {"max_length": max_length}


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


def split_store_url(url: str) -> tuple[str, str]:
    """``"chroma:./db"`` -> ``("chroma", "./db")``; ``"qdrant+http://h:6333"`` -> ``("qdrant", "http://h:6333")``.

    Raises:
        ValueError: Naming the accepted forms.
    """
    forms = "SCHEME:DIR (an embedded store) or SCHEME+http://HOST:PORT (a server), e.g. chroma:./db"
    if not isinstance(url, str):
        raise InputTypeError(f"a store URL must be a str, got {type(url).__name__}")
    plus, colon = url.find("+"), url.find(":")
    if 0 < plus < colon:
        scheme, rest = url[:plus], url[plus + 1 :]
        if not rest.startswith(("http://", "https://")):
            raise InputError(f"store {url!r}: expected {scheme}+http://HOST:PORT")
        return scheme, rest.rstrip("/")
    if colon > 0 and url[colon + 1 :]:
        return url[:colon], url[colon + 1 :]
    raise InputError(f"store {url!r}: expected {forms}")


def store_schemes() -> dict[str, EntryPoint]:
    """The registered stores: ``{scheme: entry point}``."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


_Factory = TypeVar("_Factory", bound=Callable[..., Any])


def store_factory(
    features: frozenset[str] | set[str] = frozenset(),
    feature_notes: Mapping[str, str] | None = None,
    *,
    check_name: Callable[[str, str], object] | None = None,
    marker: tuple[str, str] | None = None,
) -> Callable[[_Factory], _Factory]:
    """Declare on a store's registered factory the checks the core runs before the store is opened
    or created, so that a refusal never leaves a new store folder behind and the core names no
    store: what its collections can hold (:func:`check_features`), its own collection-name rule
    (:func:`check_collection_name`), and the file that marks a folder as its own
    (:func:`check_store_kind`). A factory without a declaration is checked when it is used.

    Args:
        features: The layout features its stores hold (as :attr:`BaseStore.features`).
        feature_notes: Why it lacks one, by feature (as :attr:`BaseStore.feature_notes`).
        check_name: ``check_name(location, name)`` raises an :class:`InputError` naming the rule.
        marker: ``(file name, what it is)``: a file only its embedded folders hold
            (``("chroma.sqlite3", "a Chroma store")``).
    """

    def declare(factory: _Factory) -> _Factory:
        factory.features = frozenset(features)  # type: ignore[attr-defined]
        factory.feature_notes = dict(feature_notes or {})  # type: ignore[attr-defined]
        factory.check_name = check_name  # type: ignore[attr-defined]
        factory.marker = marker  # type: ignore[attr-defined]
        return factory

    return declare


def _declared(scheme: str) -> Any:  # noqa: ANN401 (a factory, or None)
    """The registered factory of ``scheme``, or None (not registered, or its extra missing: opening
    the store says so)."""
    entry = store_schemes().get(scheme)
    if entry is None:
        return None
    try:
        return entry.load()
    except ImportError:
        return None


def check_features(url: str, wanted: Sequence[str]) -> None:
    """Refuse layout features the store ``url`` names has declared it cannot hold
    (:func:`store_factory`), before anything is opened or created. Unknown schemes and factories
    that declare nothing pass (they are asked when the collection is made).

    Raises:
        StoreError: Naming the store, the features and why.
    """
    if not wanted:
        return
    factory = _declared(split_store_url(url)[0])
    held = getattr(factory, "features", None)
    if held is None:
        return
    missing = sorted(set(wanted) - set(held))
    if missing:
        notes = getattr(factory, "feature_notes", {})
        why = [notes[f] for f in missing if f in notes]
        raise StoreError(
            f"--store {url} cannot hold {' or '.join(missing)} collections"
            + (f" ({'; '.join(why)})" if why else "")
            + "; nothing was created"
        )


def check_collection_name(url: str, name: str) -> None:
    """Refuse a collection name the store ``url`` names would refuse, by its declared rule
    (:func:`store_factory`), before the store is opened: a bad name never leaves a new store folder
    behind. Stores that declare no rule check the name when they use it.

    Raises:
        InputError: Naming the rule (a long name cut short).
    """
    scheme, location = split_store_url(url)
    check = getattr(_declared(scheme), "check_name", None)
    if check is not None:
        check(location, name)


def check_store_kind(url: str) -> None:
    """Refuse ``chroma:DIR`` on a folder that holds another store (a Qdrant Edge one, say) before it is
    opened: each registered factory declares the file that marks its folders (:func:`store_factory`),
    and the message names the store that is there and the URL to use.

    Raises:
        InputError: Naming the store the folder holds.
    """
    try:
        scheme, location = split_store_url(url)
    except InputError:
        return  # opening it says what is wrong with the URL
    folder = Path(location).expanduser()
    if location.startswith(("http://", "https://")) or not folder.is_dir():
        return
    own = getattr(_declared(scheme), "marker", None)
    if own is not None and (folder / own[0]).is_file():
        return
    for other in store_schemes():
        theirs = getattr(_declared(other), "marker", None) if other != scheme else None
        if theirs is not None and (folder / theirs[0]).is_file():
            raise InputError(f"--store {url}: {location} is {theirs[1]} ({theirs[0]}); use --store {other}:{location}")


def open_store(url: str, *, create: bool = True) -> Store:
    """Open the store a URL names, through its registered factory.

    A factory is ``open_store(location, *, create=True)``; with ``create=False`` an embedded store
    that does not exist raises :class:`StoreNotFoundError` instead of being made, so reading
    commands (search, collections) never leave an empty store behind a mistyped path. A factory
    without the ``create`` parameter is called with the location alone.

    Args:
        url: ``SCHEME:DIR`` or ``SCHEME+http(s)://HOST:PORT``.
        create: Make an embedded store that does not exist yet (ingest) or refuse (everything else).

    Raises:
        ValueError: A malformed URL or an unknown scheme (the message lists the known ones).
        ImportError: The store's extra is not installed (the message names it).
        StoreNotFoundError: ``create=False`` and there is no store at the location.
        StoreError: The store cannot be opened.
    """
    scheme, location = split_store_url(url)
    schemes = store_schemes()
    if scheme not in schemes:
        known = ", ".join(sorted(schemes)) or "none (is the package installed?)"
        raise InputError(f"store {url!r}: unknown store {scheme!r}; registered stores: {known}")
    factory: Callable[..., Store] = schemes[scheme].load()
    if _accepts_create(factory):
        return factory(location, create=create)
    return factory(location)


def _accepts_create(factory: Callable[..., Any]) -> bool:
    try:
        return "create" in signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or C callable: no signature to read
        return False
