"""Vector stores behind one protocol, found by entry point, so the CLI only dispatches.

A store is opened from a URL: ``SCHEME:DIR`` for an embedded store (``chroma:./db``, ``qdrant:./db``)
or ``SCHEME+http(s)://HOST:PORT`` for a server. The scheme names an entry point in the group
``instructor.stores`` whose value is a factory ``open_store(location: str, *, create: bool = True) -> Store``
(``create=False``: refuse to make an embedded store that does not exist; optional); this package
registers ``chroma`` (``instructor_chroma``) and ``qdrant`` (``instructor_qdrant``), and a third
party adds a store (pgvector, LanceDB, ...) by shipping its own entry point::

    [project.entry-points."instructor.stores"]
    lancedb = "instructor_lancedb:open_store"

No vector-store import happens here: the factory imports its stack when it is called.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from inspect import signature
from typing import Any, Protocol

from .engine import DuplicatePolicy, IngestReport
from .errors import InstructorError
from .protocols import Encoder

__all__ = [
    "ENTRY_POINT_GROUP",
    "CollectionInfo",
    "CollectionNotFoundError",
    "Hit",
    "ModelMismatchError",
    "Store",
    "StoreError",
    "StoreNotFoundError",
    "StoreUnavailableError",
    "check_model",
    "encoder_fingerprint",
    "lock_timeout_s",
    "open_store",
    "replace_empty_collection",
    "split_store_url",
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
        raise ValueError(f"INSTRUCTOR_LOCK_TIMEOUT={raw!r}: expected a number of seconds >= 0")
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

    def __init__(self, collection: str | None, stored: str, current: str) -> None:
        which = f"collection {collection!r}" if collection else "the collection"
        super().__init__(
            f"{which} was made with model fingerprint {stored}, the encoder at hand has "
            f"{current} (other weights or configuration, even under the same path): their vectors do not "
            "compare. Use the model it was made with or a new collection, or pass allow_model_change=True "
            "(CLI: --allow-model-change) to mix them on purpose"
        )
        self.collection = collection
        self.stored = stored
        self.current = current


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


class Store(Protocol):
    """A vector store the CLI and :mod:`instructor_ray` can use: one implementation per integration.

    Every method raises :class:`StoreError` (or a subclass) for expected failures, with a one-line
    message; a bad record raises ``instructor_core.records.RecordError``.
    """

    def describe(self) -> str:
        """Where the store is, for messages: ``"chroma at ./db"``."""
        ...

    def list_collections(self) -> list[str]:
        """Names of the collections in the store."""
        ...

    def info(self, name: str) -> CollectionInfo:
        """What the collection records; :class:`CollectionNotFoundError` if it does not exist."""
        ...

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
    ) -> IngestReport:
        """Create the collection (or check that it fits ``encoder`` and ``model``: dimension,
        instructions, model fingerprint unless ``allow_model_change``), then embed and upsert
        ``documents`` with the encoder's document instruction."""
        ...

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
        """The best ``k`` hits for each query, embedded with the query instruction (or
        ``instruction``); ``filters`` are ``{metadata key: value}``, all of which must match. An
        encoder of another fingerprint than the collection's is refused unless ``allow_model_change``."""
        ...

    def delete(self, name: str) -> None:
        """Delete the collection; :class:`CollectionNotFoundError` if it does not exist."""
        ...

    def close(self) -> None:
        """Release the client (and the lock on an embedded store's folder, held from open to close)."""
        ...


def split_store_url(url: str) -> tuple[str, str]:
    """``"chroma:./db"`` -> ``("chroma", "./db")``; ``"qdrant+http://h:6333"`` -> ``("qdrant", "http://h:6333")``.

    Raises:
        ValueError: Naming the accepted forms.
    """
    forms = "SCHEME:DIR (an embedded store) or SCHEME+http://HOST:PORT (a server), e.g. chroma:./db"
    if not isinstance(url, str):
        raise TypeError(f"a store URL must be a str, got {type(url).__name__}")
    plus, colon = url.find("+"), url.find(":")
    if 0 < plus < colon:
        scheme, rest = url[:plus], url[plus + 1 :]
        if not rest.startswith(("http://", "https://")):
            raise ValueError(f"store {url!r}: expected {scheme}+http://HOST:PORT")
        return scheme, rest.rstrip("/")
    if colon > 0 and url[colon + 1 :]:
        return url[:colon], url[colon + 1 :]
    raise ValueError(f"store {url!r}: expected {forms}")


def store_schemes() -> dict[str, EntryPoint]:
    """The registered stores: ``{scheme: entry point}``."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


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
        raise ValueError(f"store {url!r}: unknown store {scheme!r}; registered stores: {known}")
    factory: Callable[..., Store] = schemes[scheme].load()
    if _accepts_create(factory):
        return factory(location, create=create)
    return factory(location)


def _accepts_create(factory: Callable[..., Any]) -> bool:
    try:
        return "create" in signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or C callable: no signature to read
        return False


def _differences(info: CollectionInfo, encoder: Encoder, model: str) -> list[str]:
    """What ``info`` records that the encoder at hand would not make (names of the fields)."""
    out = []
    if info.model is not None and info.model != model:
        out.append("model")
    if info.query_instruction != encoder.instructions.query:
        out.append("query_instruction")
    if info.vectors or info.document_instruction != encoder.instructions.document:
        out.append("document_instruction")
    if info.dimension and info.dimension != encoder.dimension:
        out.append("dimension")
    if info.fingerprint is not None and not out:
        try:
            current = getattr(encoder, "fingerprint", None)
        except ValueError:  # an encoder not loaded from a folder has none
            current = None
        if isinstance(current, str) and current != info.fingerprint:
            out.append("fingerprint")
    return out


def replace_empty_collection(store: Store, name: str, encoder: Encoder, *, model: str) -> list[str]:
    """Delete a collection that holds nothing and was made for another model or other instructions,
    so the ingest about to run makes it anew for ``encoder``.

    A first ingest that failed before its first write (a bad record in the first batch, a wrong
    instruction noticed at once) leaves an empty collection that records the model and
    instructions of that run; without this, every retry with other ones is refused although no
    vector would be mixed. A collection with documents, one made outside instructor (no recorded
    model), or one that already fits is left alone; ``store.ingest`` checks those as usual.

    Returns:
        The recorded fields that differed (``["document_instruction"]``), empty where nothing was
        deleted.
    """
    if name not in store.list_collections():  # (an unreachable store raises here, as it should)
        return []
    try:
        info = store.info(name)
    except StoreError:  # not made by instructor: the ingest decides
        return []
    if info.count != 0 or info.model is None:
        return []
    differing = _differences(info, encoder, model)
    if differing:
        store.delete(name)
    return differing
