"""Open a Chroma collection for an InstructorEmbeddingFunction, and ingest a corpus into it in batches.

The Chroma id of a record is its document id itself (already deterministic and a string), so a
re-run upserts instead of duplicating, and every hit maps back to its document directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from instructor_core.errors import InputError
from instructor_core.ingest.engine import IngestReport, RetryPolicy, run_ingest
from instructor_core.ingest.records import HASH_KEY, Record, RecordError, RecordRules, content_hash
from instructor_core.ingest.stores import check_model
from instructor_core.validation import check_positive_int

from .embedding import NAME, InstructorEmbeddingFunction

__all__ = ["CHROMA_RULES", "ChromaSink", "ingest", "is_transport_error", "open_collection"]

DEFAULT_BATCH_SIZE = 256

#: What Chroma keeps faithfully in metadata: anything else it would drop or change without a word
#: (NaN and infinities, keys starting with "chroma:", integers past int64, empty keys, nested values).
CHROMA_RULES = RecordRules(
    metadata_values="scalar",
    reserved_keys=("chroma:document", HASH_KEY),
    reserved_prefixes=("chroma:",),
    finite_numbers=True,
    int_bits=64,
    empty_keys=False,
)


def open_collection(
    client: Any,
    name: str,
    embedding_function: InstructorEmbeddingFunction | None = None,
    *,
    metadata: Mapping[str, Any] | None = None,
    hnsw: Mapping[str, Any] | None = None,
    allow_model_change: bool = False,
) -> Any:
    """Get or create a cosine collection that embeds with ``embedding_function``.

    With no function, the collection must exist and is opened with the function rebuilt from its
    stored config. With one, an existing collection's stored config must agree on model (its
    fingerprint: ``ModelMismatchError`` naming both, else its name) and instructions (else
    ``ValueError``, see :meth:`InstructorEmbeddingFunction.validate_config_update`).

    chromadb's own ``client.get_collection(name, embedding_function=f)`` compares only the
    function's registered name, not its model: open collections through this function (or pass no
    function and let chromadb rebuild the stored one) to have the model checked.

    Args:
        client: A chromadb client (``PersistentClient``, ``HttpClient``, ``EphemeralClient``).
        name: Collection name.
        embedding_function: The function for a new collection, or to check against an existing one.
        metadata: Collection metadata for a new collection.
        hnsw: Extra HNSW settings for a new collection (e.g. ``{"ef_search": 200}``); space is cosine.
        allow_model_change: Accept a function of another model than the collection records, on
            purpose (the instructions must still agree).
    """
    if embedding_function is None:
        collection = client.get_collection(name)
        stored = (collection.configuration_json or {}).get("embedding_function") or {}
        if stored.get("name") != NAME:
            raise InputError(
                f"collection {name!r} was not made with {NAME} (its embedding function: "
                f"{stored.get('name', 'none')!r}); pass the embedding function explicitly"
            )
        return collection
    existing = {c.name if hasattr(c, "name") else c for c in client.list_collections()}
    if name in existing:
        collection = client.get_collection(name, embedding_function=embedding_function)
        stored = (collection.configuration_json or {}).get("embedding_function") or {}
        if stored.get("name") == NAME:
            old = stored.get("config") or {}
            new = embedding_function.get_config()
            if allow_model_change:
                new = {k: v for k, v in new.items() if k not in ("model", "fingerprint")}
            embedding_function.validate_config_update(old, new)
        return collection
    configuration: dict[str, Any] = {"hnsw": {"space": "cosine", **dict(hnsw or {})}}
    return client.create_collection(
        name,
        configuration=configuration,
        metadata=dict(metadata) if metadata else None,
        embedding_function=embedding_function,
    )


def _embedding_function_of(collection: Any) -> Any:
    """The function the collection stores in its configuration (rebuilt from it by chromadb)."""
    ef = collection.configuration.get("embedding_function")
    if ef is None or not hasattr(ef, "embed_query"):
        raise InputError(f"collection {collection.name!r} has no embedding function; pass embedding_function=")
    return ef


def stored_dimension(collection: Any) -> int | None:
    """Length of the vectors already in the collection (None while it is empty)."""
    sample = collection.get(limit=1, include=["embeddings"])
    embeddings = sample.get("embeddings")
    if embeddings is None or len(embeddings) == 0:
        return None
    return len(embeddings[0])


def is_remote(collection: Any) -> bool:
    """Whether the collection lives behind a Chroma server (``HttpClient``), not in this process.

    chromadb has no public way to ask a collection for its client: this reads the private
    ``collection._client``. Pass ``overlap=`` to :func:`ingest` to avoid it.
    """
    return type(getattr(collection, "_client", None)).__name__ in ("FastAPI", "AsyncFastAPI")


def _transport_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        import httpx

        errors.append(httpx.TransportError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


_TRANSPORT_ERRORS = _transport_errors()


def is_transport_error(exc: BaseException) -> bool:
    """Whether a failed Chroma call may be retried: the server could not be reached or did not
    answer (the request may not have arrived). chromadb's HTTP client raises httpx's errors."""
    return isinstance(exc, _TRANSPORT_ERRORS)


class ChromaSink:
    """The ingest engine's view of a Chroma collection: embed with the document instruction,
    upsert by document id (a re-run changes nothing), refuse metadata Chroma would not keep.

    Args:
        collection: A chromadb collection.
        embedding_function: Embeds documents (an :class:`InstructorEmbeddingFunction`).
    """

    rules = CHROMA_RULES
    #: Embed the next batch while this one is written (a server: set by the store).
    overlap = False

    def __init__(self, collection: Any, embedding_function: Any) -> None:
        self.collection = collection
        self.embedding_function = embedding_function
        self._dimension = stored_dimension(collection)
        self.max_batch_size = _max_batch_size(collection)

    def embed(self, records: Sequence[Record]) -> list[np.ndarray]:
        """Document vectors for the batch."""
        return list(self.embedding_function([r.text for r in records]))

    def write(self, records: Sequence[Record], vectors: Sequence[Any]) -> None:
        """Upsert the batch by document id, after checking the vectors' length against the store's."""
        width = len(vectors[0]) if len(vectors) else None
        if self._dimension is not None and width is not None and width != self._dimension:
            raise RecordError(
                f"the collection {self.collection.name!r} holds {self._dimension}-dimensional vectors, the "
                f"embedding function makes {width}-dimensional ones; nothing of this batch was written",
                record_id=records[0].id,
            )
        self.collection.upsert(
            ids=[r.id for r in records],
            documents=[r.text for r in records],
            embeddings=[np.asarray(v, dtype=np.float32) for v in vectors],
            metadatas=[{**dict(r.metadata), HASH_KEY: content_hash(r)} for r in records],
        )
        self._dimension = width if width is not None else self._dimension

    def stored_hashes(self, ids: Sequence[str]) -> dict[str, str]:
        """``{document id: content hash}`` of those of ``ids`` stored with a hash (one ``get``)."""
        if not ids:
            return {}
        found = self.collection.get(ids=list(dict.fromkeys(ids)), include=["metadatas"])
        out: dict[str, str] = {}
        for doc_id, metadata in zip(found["ids"], found.get("metadatas") or [], strict=False):
            stored = (metadata or {}).get(HASH_KEY)
            if isinstance(stored, str):
                out[doc_id] = stored
        return out

    def is_transport_error(self, exc: BaseException) -> bool:
        """See :func:`is_transport_error`."""
        return is_transport_error(exc)


def ingest(
    collection: Any,
    documents: Iterable[Mapping[str, Any]],
    *,
    embedding_function: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    show_progress: bool = True,
    total: int | None = None,
    overlap: bool | None = None,
    on_duplicate: str = "error",
    retry: RetryPolicy | None = None,
    allow_model_change: bool = False,
    skip_unchanged: bool = True,
) -> IngestReport:
    """Embed records with the document instruction and upsert them into a Chroma collection.

    Runs the core ingest engine (:func:`instructor_core.ingest.engine.run_ingest`): ``documents`` is read
    one batch at a time, each batch is validated whole before it is embedded or written (a bad
    record raises :class:`RecordError` and nothing of its batch is written), ids are checked for
    duplicates over the whole ingest, and batches are upserted by document id, in order, none after
    a failure. Transport errors of a server are retried with bounded backoff. A run that stopped
    midway can simply be run again.

    Args:
        collection: A chromadb collection (see :func:`open_collection`).
        documents: Records ``{"id": str, "text": str, "metadata": {...}}``; any iterable.
        embedding_function: Embeds the documents; None uses the collection's own.
        batch_size: Records per upsert, capped at the client's ``get_max_batch_size()``.
        show_progress: Show a tqdm bar (records).
        total: Number of records, for the progress bar, if known.
        overlap: Embed batch k+1 while batch k is upserted. None: yes against a server (the upsert
            waits on the network), no for an embedded client (its writes need the encoder's cores;
            one after the other measured faster, docs/performance.md).
        on_duplicate: An id read twice: "error" (default), "first" or "last" copy kept.
        retry: Retries of an upsert that failed in transport; None: the engine's defaults.
        allow_model_change: Ingest with an ``embedding_function`` whose model fingerprint differs
            from the one the collection records (``ModelMismatchError`` otherwise), on purpose.
        skip_unchanged: Skip records whose id the collection holds with the same content hash
            (a re-run embeds only what is missing or changed); False embeds and writes them all.

    Returns:
        IngestReport(seen, written, batches, skipped, retried, duplicates, unchanged, embedded).
    """
    check_positive_int(batch_size, "batch_size")
    if embedding_function is not None:
        stored = (collection.configuration_json or {}).get("embedding_function") or {}
        if stored.get("name") == NAME:
            recorded = (stored.get("config") or {}).get("fingerprint")
            current = getattr(embedding_function, "fingerprint", None)
            check_model(collection.name, recorded, current, allow_model_change=allow_model_change)
    ef = embedding_function if embedding_function is not None else _embedding_function_of(collection)
    remote = is_remote(collection) if overlap is None else overlap
    limit = _max_batch_size(collection)
    if limit is not None:
        batch_size = min(batch_size, limit)
    return run_ingest(
        documents,
        ChromaSink(collection, ef),
        batch_size=batch_size,
        overlap=remote,
        retry=retry,
        on_duplicate=on_duplicate,  # type: ignore[arg-type]
        show_progress=show_progress,
        total=total,
        desc=f"Ingesting into {collection.name}",
        skip_unchanged=skip_unchanged,
    )


def _max_batch_size(collection: Any) -> int | None:
    """The client's upsert limit. chromadb exposes it on the client only (``get_max_batch_size``);
    a collection reaches its client through the private ``_client``, the one place left that does."""
    client = getattr(collection, "_client", None)
    if client is not None and hasattr(client, "get_max_batch_size"):
        return int(client.get_max_batch_size())
    return None
