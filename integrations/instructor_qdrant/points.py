"""Ingest records into Qdrant and search them, with the encoder's document and query instructions.

Point ids are ``uuid5(NAMESPACE, document_id)`` (``instructor_core.ingest.records.point_id``), so a re-run
upserts instead of duplicating; the payload is ``{"id": ..., "text": ..., **metadata}``, so every
hit maps back to its document.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from qdrant_client import models

from instructor_core.errors import InputTypeError
from instructor_core.ingest.engine import IngestReport, RetryPolicy, run_ingest
from instructor_core.ingest.records import HASH_KEY, Record, RecordRules, point_id
from instructor_core.ingest.store_ops import DEFAULT_BATCH_SIZE, check_search, embed_views
from instructor_core.ingest.stores import Hit, Quantization, hashes_of_payloads, hit_from_payload, payload_of
from instructor_core.model.protocols import Encoder
from instructor_core.validation import check_instruction, check_positive_int

from .collection import CollectionLayout, ensure_collection, layout_from_metadata
from .filters import checked_filters
from .quantization import client_search_params

__all__ = [
    "QDRANT_RULES",
    "TRANSPORT_ERRORS",
    "Hit",
    "QdrantSink",
    "build_filter",
    "ingest",
    "is_transport_error",
    "search",
    "search_vector",
]

#: The payload keeps the document's "id" and "text" beside its metadata; any JSON value is kept.
QDRANT_RULES = RecordRules(metadata_values="json", reserved_keys=("id", "text", HASH_KEY), dotted_keys=False)


def _transport_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        from qdrant_client.http.exceptions import ResponseHandlingException

        errors.append(ResponseHandlingException)
    except ImportError:  # pragma: no cover
        pass
    try:
        import httpx

        errors.append(httpx.TransportError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


#: Errors of the upsert call that are retried (the request may not have reached the server).
TRANSPORT_ERRORS = _transport_errors()


def is_transport_error(exc: BaseException) -> bool:
    """Whether a failed upsert may be retried: the request may not have reached the server."""
    if isinstance(exc, TRANSPORT_ERRORS):
        return True
    try:
        import grpc
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, grpc.RpcError) and getattr(exc, "code", lambda: None)() in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    )


def to_points(records: Sequence[Record], vectors: Sequence[Any]) -> list[models.PointStruct]:
    """Points with ids ``point_id(document id)`` and payload ``{"id", "text", **metadata}`` plus the
    record's content hash (:func:`instructor_core.ingest.stores.payload_of`)."""
    return [
        models.PointStruct(
            id=point_id(r.id),
            vector=v if isinstance(v, Mapping) else (v.tolist() if hasattr(v, "tolist") else list(v)),
            payload=payload_of(r),
        )
        for r, v in zip(records, vectors, strict=True)
    ]


class _PointsSink:
    """What the sync and async Qdrant sinks share: the rules, the vectors, the transport check."""

    rules = QDRANT_RULES
    overlap = True
    max_batch_size: int | None = None

    def __init__(
        self,
        client: Any,
        name: str,
        encoder: Encoder | None = None,
        layout: CollectionLayout | None = None,
        encode_batch_size: int = 32,
    ) -> None:
        self.client, self.name, self.encoder, self.layout = client, name, encoder, layout
        self.encode_batch_size = encode_batch_size

    def embed(self, records: Sequence[Record]) -> list[Any]:
        """Vectors (or named views) for the batch; the engine calls this in a worker thread."""
        if self.encoder is None or self.layout is None:
            raise InputTypeError("this sink writes precomputed vectors: it was made without an encoder")
        return embed_views(records, self.encoder, self.layout, self.encode_batch_size)

    def is_transport_error(self, exc: BaseException) -> bool:
        """See :func:`is_transport_error`."""
        return is_transport_error(exc)


#: What a hash lookup reads of each point: its document id and content hash, no vector.
HASH_PAYLOAD = ["id", HASH_KEY]


def retrieve_args(name: str, ids: Sequence[str]) -> dict[str, Any]:
    """``retrieve`` arguments that read the stored hashes of ``ids`` (sync and async clients)."""
    return {
        "collection_name": name,
        "ids": [point_id(i) for i in dict.fromkeys(ids)],
        "with_payload": list(HASH_PAYLOAD),
        "with_vectors": False,
    }


class QdrantSink(_PointsSink):
    """The ingest engine's view of a Qdrant collection (a ``QdrantClient``): embed with the
    layout's document instruction(s), upsert points by ``point_id`` (a re-run changes nothing).

    Args:
        client: A ``QdrantClient``.
        name: The collection (see :func:`ensure_collection`).
        encoder: The encoder the collection was made with.
        layout: The collection's layout.
        encode_batch_size: Texts per forward pass.
    """

    def write(self, records: Sequence[Record], vectors: Sequence[Any]) -> None:
        """Upsert the batch's points and wait for the store to apply them."""
        self.client.upsert(collection_name=self.name, points=to_points(records, vectors), wait=True)

    def stored_hashes(self, ids: Sequence[str]) -> dict[str, str]:
        """``{document id: content hash}`` of those of ``ids`` stored with a hash (one retrieve call)."""
        if not ids:
            return {}
        return hashes_of_payloads([p.payload for p in self.client.retrieve(**retrieve_args(self.name, ids))])


def check_ingest_args(batch_size: Any, max_attempts: Any) -> None:
    """Refuse a batch size or attempt count that is not a positive int, naming it."""
    check_positive_int(batch_size, "batch_size")
    check_positive_int(max_attempts, "max_attempts")


def ingest(
    client: Any,
    name: str,
    documents: Iterable[Mapping[str, Any]],
    encoder: Encoder,
    *,
    vectors: Mapping[str, str] | None = None,
    model: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    encode_batch_size: int = 32,
    show_progress: bool = True,
    total: int | None = None,
    max_attempts: int = 4,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    on_duplicate: str = "error",
    allow_model_change: bool = False,
    quantization: Quantization | None = None,
    skip_unchanged: bool = True,
) -> IngestReport:
    """Embed records with the document instruction(s) and upsert them into a Qdrant collection.

    The collection is created (or checked, see :func:`ensure_collection`) first, then the core
    ingest engine (:func:`instructor_core.ingest.engine.run_ingest`) runs: ``documents`` is read one batch
    at a time; each batch is validated whole before it is embedded or written (a bad record raises
    ``RecordError`` and nothing of its batch is written); ids are checked for duplicates over the
    whole ingest. Batch k+1 is encoded in a worker thread while batch k is upserted from the
    calling thread; batches are written in order, and after any failure no later batch is written.
    Only the upsert is retried, and only on transport errors, with exponential backoff; a store
    that stays unreachable raises ``instructor_core.ingest.engine.IngestError`` saying what was written.

    Args:
        client: A ``QdrantClient``.
        name: Collection name.
        documents: Records ``{"id": str, "text": str, "metadata": {...}}``; any iterable.
        encoder: The InstructorEncoder; its document instruction makes the (unnamed) vector.
        vectors: Named vectors ``{name: document instruction}``, one view per instruction.
        model: Model name or path, stored in the collection metadata for later searches.
        batch_size: Records per upsert.
        encode_batch_size: Texts per forward pass.
        show_progress: Show a tqdm bar (records).
        total: Number of records, for the progress bar, if known.
        max_attempts: Tries per upsert (1 = no retry).
        backoff: Seconds before the first retry; doubled each time.
        sleep: The wait function (tests pass a fake).
        on_duplicate: An id read twice: "error" (default), "first" or "last" copy kept.
        allow_model_change: Accept an encoder whose model fingerprint differs from the one the
            collection records (``ModelMismatchError`` otherwise), on purpose.
        quantization: Keep a new collection's vectors quantized too, ``"int8"`` or ``"binary"``
            (searches rescore on the float vectors); see :func:`ensure_collection`.
        skip_unchanged: Skip records whose id the collection holds with the same content hash
            (a re-run embeds only what is missing or changed); False embeds and writes them all.

    Returns:
        IngestReport(seen, written, batches, skipped, retried, duplicates).
    """
    check_ingest_args(batch_size, max_attempts)
    layout = ensure_collection(
        client, name, encoder, vectors=vectors, model=model, allow_model_change=allow_model_change,
        quantization=quantization,
    )  # fmt: skip
    return run_ingest(
        documents,
        QdrantSink(client, name, encoder, layout, encode_batch_size),
        batch_size=batch_size,
        retry=RetryPolicy(max_attempts=max_attempts, backoff=backoff),
        on_duplicate=on_duplicate,  # type: ignore[arg-type]
        show_progress=show_progress,
        total=total,
        desc=f"Ingesting into {name}",
        sleep=sleep,
        skip_unchanged=skip_unchanged,
    )


def build_filter(conditions: Mapping[str, Any] | models.Filter | None) -> models.Filter | None:
    """A Qdrant filter from ``{payload key: value}`` (all must match; a list value matches any of
    its items), or a ``models.Filter`` passed through."""
    if conditions is None or isinstance(conditions, models.Filter):
        return conditions
    if not isinstance(conditions, Mapping):
        raise InputTypeError(
            f"filter must be a mapping or a qdrant_client.models.Filter, got {type(conditions).__name__}"
        )
    must: list[Any] = []
    for key, value in checked_filters(conditions):  # what Qdrant cannot match: one line, before it is asked
        if isinstance(value, list):
            match: Any = models.MatchAny(any=value)
        else:
            match = models.MatchValue(value=value)
        must.append(models.FieldCondition(key=key, match=match))
    return models.Filter(must=must)


def search(
    client: Any,
    name: str,
    query: str,
    encoder: Any,
    *,
    limit: int = 10,
    filter: Mapping[str, Any] | models.Filter | None = None,
    vector: str | None = None,
    instruction: str | None = None,
    allow_model_change: bool = False,
) -> list[Hit]:
    """Search a collection with a query embedded under the query instruction.

    Args:
        client: A ``QdrantClient``.
        name: Collection name.
        query: The query text.
        encoder: The InstructorEncoder the collection was made with.
        limit: Number of hits.
        filter: ``{payload key: value}`` or a ``models.Filter``.
        vector: Which named vector to search (named-vector collections).
        instruction: Query instruction; None takes the encoder's.
        allow_model_change: Search with an encoder whose model fingerprint differs from the one
            the collection records (``ModelMismatchError`` otherwise), on purpose.

    Returns:
        Hits, best first.
    """
    prefix = query_prefix(query, instruction)
    info = client.get_collection(name)
    layout = layout_from_metadata(getattr(info.config, "metadata", None))
    check_search(name, layout, encoder, allow_model_change=allow_model_change)
    vec = encoder.encode_queries([query], prefix)[0].tolist()
    params = search_params(client, layout)
    return search_vector(client, name, vec, limit=limit, filter=filter, vector=vector, params=params)


def search_params(client: Any, layout: CollectionLayout | None) -> Any:
    """The ``search_params`` a collection's searches need: rescoring where its vectors are kept
    quantized (see :mod:`instructor_qdrant.quantization`); None otherwise, and in qdrant-client's
    local mode, which searches the float vectors exactly and warns of any search parameter."""
    if layout is None or type(getattr(client, "_client", None)).__name__ in ("QdrantLocal", "AsyncQdrantLocal"):
        return None
    return client_search_params(layout.quantization)


def search_vector(
    client: Any,
    name: str,
    query_vector: Sequence[float],
    *,
    limit: int = 10,
    filter: Mapping[str, Any] | models.Filter | None = None,
    vector: str | None = None,
    params: models.SearchParams | None = None,
) -> list[Hit]:
    """Like :func:`search`, for a query vector made already; ``params``: Qdrant's search parameters
    (:func:`search_params` for the collection's rescoring)."""
    result = client.query_points(**query_request(name, query_vector, limit, filter, vector, params))
    return [hit_from_payload(p.payload, p.score, p.id) for p in result.points]


def query_prefix(query: Any, instruction: str | None) -> str | None:
    """Check a search's query text and instruction; returns the instruction (None: the encoder's)."""
    if not isinstance(query, str):
        raise InputTypeError(f"query must be a str, got {type(query).__name__}")
    return None if instruction is None else check_instruction(instruction)


def query_request(
    name: str,
    query_vector: Sequence[float],
    limit: int,
    filter: Mapping[str, Any] | models.Filter | None,
    vector: str | None,
    params: models.SearchParams | None = None,
) -> dict[str, Any]:
    """The ``query_points`` arguments shared by the sync and async searches, after checking ``limit``."""
    check_positive_int(limit, "limit")
    extra = {"search_params": params} if params is not None else {}
    return {
        **extra,
        "collection_name": name,
        "query": list(query_vector),
        "using": vector,
        "limit": limit,
        "query_filter": build_filter(filter),
        "with_payload": True,
    }
