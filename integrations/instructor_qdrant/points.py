"""Ingest records into Qdrant and search them, with the encoder's document and query instructions.

Point ids are ``uuid5(NAMESPACE, document_id)`` (``instructor_core.records.point_id``), so a re-run
upserts instead of duplicating; the payload is ``{"id": ..., "text": ..., **metadata}``, so every
hit maps back to its document.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qdrant_client import models
from tqdm.auto import tqdm

from instructor_core.records import IngestReport, Record, pipelined, point_id, validated_batches
from instructor_core.validation import check_instruction

from .collection import CollectionLayout, ensure_collection

__all__ = ["Hit", "TRANSPORT_ERRORS", "build_filter", "ingest", "search", "search_vector"]

#: Records per upsert. Each batch is also one ``encode_documents`` call, and the encoder sorts a
#: call's texts by length: larger batches waste less padding (256 ~ 1 MB of float vectors per request).
DEFAULT_BATCH_SIZE = 256
_RESERVED = ("id", "text")


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


@dataclass(frozen=True)
class Hit:
    """One search result.

    Attributes:
        id: The document id.
        text: The document text.
        metadata: The rest of the payload.
        score: Cosine similarity to the query.
        point_id: The Qdrant point id.
    """

    id: str
    text: str
    score: float
    metadata: Mapping[str, Any] = field(default_factory=dict)
    point_id: str = ""


def _upsert(
    client: Any,
    name: str,
    points: list[models.PointStruct],
    *,
    max_attempts: int,
    backoff: float,
    sleep: Callable[[float], None],
) -> None:
    for attempt in range(1, max_attempts + 1):
        try:
            client.upsert(collection_name=name, points=points, wait=True)
            return
        except Exception as exc:
            if not is_transport_error(exc) or attempt == max_attempts:
                raise
            sleep(backoff * 2 ** (attempt - 1))


def make_points(records: Sequence[Record], encoder: Any, layout: CollectionLayout, batch_size: int) -> list[Any]:
    """Points for validated records: vectors under the layout's document instruction(s), ids
    ``point_id(document id)``, payload ``{"id", "text", **metadata}``."""
    texts = [r.text for r in records]
    if layout.vectors:
        views = {
            key: encoder.encode_documents(texts, instruction, batch_size=batch_size)
            for key, instruction in layout.vectors.items()
        }
        vectors: list[Any] = [{key: views[key][i].tolist() for key in views} for i in range(len(records))]
    else:
        matrix = encoder.encode_documents(texts, layout.document_instruction, batch_size=batch_size)
        vectors = [row.tolist() for row in matrix]
    return [
        models.PointStruct(id=point_id(r.id), vector=v, payload={"id": r.id, "text": r.text, **dict(r.metadata)})
        for r, v in zip(records, vectors, strict=True)
    ]


def check_ingest_args(batch_size: Any, max_attempts: Any) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not isinstance(max_attempts, int) or isinstance(max_attempts, bool) or max_attempts < 1:
        raise ValueError(f"max_attempts must be an int >= 1, got {max_attempts!r}")


def ingest(
    client: Any,
    name: str,
    documents: Iterable[Mapping[str, Any]],
    encoder: Any,
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
) -> IngestReport:
    """Embed records with the document instruction(s) and upsert them into a Qdrant collection.

    The collection is created (or checked, see :func:`ensure_collection`) first. ``documents`` is
    read one batch at a time; each batch is validated whole before it is embedded or written (a bad
    record raises ``RecordError`` and nothing of its batch is written). Batch k+1 is encoded in a
    worker thread while batch k is upserted from the calling thread; batches are written in order,
    and after any failure no later batch is written (an error reading the input still lets the
    batch already encoded be written first). Only the upsert call is retried, and only on transport
    errors, with exponential backoff; encoding is never retried.

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

    Returns:
        IngestReport(seen, written, batches).
    """
    check_ingest_args(batch_size, max_attempts)
    layout = ensure_collection(client, name, encoder, vectors=vectors, model=model)
    if total is None and hasattr(documents, "__len__"):
        total = len(documents)  # type: ignore[arg-type]
    written = batches = 0
    with tqdm(total=total, desc=f"Ingesting into {name}", unit="doc", disable=not show_progress) as bar:

        def write(batch: tuple[int, list[Record]], points: list[Any]) -> None:
            nonlocal written, batches
            records = batch[1]
            _upsert(client, name, points, max_attempts=max_attempts, backoff=backoff, sleep=sleep)
            written += len(records)
            batches += 1
            bar.update(len(records))

        # Batch k+1 is encoded in a worker thread while batch k is upserted from this thread.
        chunks = validated_batches(documents, batch_size, reserved_metadata_keys=_RESERVED)
        pipelined(chunks, lambda batch: make_points(batch[1], encoder, layout, encode_batch_size), write)
    # every batch read was written, or the call raised
    return IngestReport(seen=written, written=written, batches=batches)


def build_filter(conditions: Mapping[str, Any] | models.Filter | None) -> models.Filter | None:
    """A Qdrant filter from ``{payload key: value}`` (all must match; a list value matches any of
    its items), or a ``models.Filter`` passed through."""
    if conditions is None or isinstance(conditions, models.Filter):
        return conditions
    if not isinstance(conditions, Mapping):
        raise TypeError(f"filter must be a mapping or a qdrant_client.models.Filter, got {type(conditions).__name__}")
    must: list[Any] = []
    for key, value in conditions.items():
        if isinstance(value, (list, tuple)):
            match: Any = models.MatchAny(any=list(value))
        else:
            match = models.MatchValue(value=value)
        must.append(models.FieldCondition(key=key, match=match))
    return models.Filter(must=must)


def _to_hit(point: Any) -> Hit:
    payload = dict(point.payload or {})
    doc_id = payload.pop("id", None)
    text = payload.pop("text", "")
    return Hit(id=str(doc_id), text=text, score=float(point.score), metadata=payload, point_id=str(point.id))


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

    Returns:
        Hits, best first.
    """
    prefix = query_prefix(query, instruction)
    vec = encoder.encode_queries([query], prefix)[0].tolist()
    return search_vector(client, name, vec, limit=limit, filter=filter, vector=vector)


def search_vector(
    client: Any,
    name: str,
    query_vector: Sequence[float],
    *,
    limit: int = 10,
    filter: Mapping[str, Any] | models.Filter | None = None,
    vector: str | None = None,
) -> list[Hit]:
    """Like :func:`search`, for a query vector made already."""
    result = client.query_points(**query_request(name, query_vector, limit, filter, vector))
    return [_to_hit(p) for p in result.points]


def query_prefix(query: Any, instruction: str | None) -> str | None:
    """Check a search's query text and instruction; returns the instruction (None: the encoder's)."""
    if not isinstance(query, str):
        raise TypeError(f"query must be a str, got {type(query).__name__}")
    return None if instruction is None else check_instruction(instruction)


def query_request(
    name: str,
    query_vector: Sequence[float],
    limit: int,
    filter: Mapping[str, Any] | models.Filter | None,
    vector: str | None,
) -> dict[str, Any]:
    """The ``query_points`` arguments shared by the sync and async searches, after checking ``limit``."""
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"limit must be a positive int, got {limit!r}")
    return {
        "collection_name": name,
        "query": list(query_vector),
        "using": vector,
        "limit": limit,
        "query_filter": build_filter(filter),
        "with_payload": True,
    }
