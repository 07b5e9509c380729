"""Async variants for ``AsyncQdrantClient``: the same checks, ids, payloads and retries as the sync
functions. Encoding runs in a worker thread (``asyncio.to_thread``) so the event loop stays free."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from qdrant_client import models

from instructor_core.ingest.engine import IngestReport, RetryPolicy, arun_ingest
from instructor_core.ingest.records import Record
from instructor_core.ingest.store_ops import check_search
from instructor_core.ingest.stores import Quantization, hashes_of_payloads, hit_from_payload
from instructor_core.model.protocols import Encoder

from .collection import aensure_collection, layout_from_metadata
from .points import (
    DEFAULT_BATCH_SIZE,
    Hit,
    _PointsSink,
    check_ingest_args,
    query_prefix,
    query_request,
    retrieve_args,
    search_params,
    to_points,
)

__all__ = ["AsyncQdrantSink", "aingest", "asearch", "asearch_vector"]


class AsyncQdrantSink(_PointsSink):
    """:class:`instructor_qdrant.QdrantSink` for an ``AsyncQdrantClient``: the same vectors, ids
    and payloads; the upsert is awaited."""

    async def write(self, records: Sequence[Record], vectors: Sequence[Any]) -> None:
        """Upsert the batch's points and wait for the store to apply them."""
        await self.client.upsert(collection_name=self.name, points=to_points(records, vectors), wait=True)

    async def stored_hashes(self, ids: Sequence[str]) -> dict[str, str]:
        """``{document id: content hash}`` of those of ``ids`` stored with a hash (one retrieve call)."""
        if not ids:
            return {}
        points = await self.client.retrieve(**retrieve_args(self.name, ids))
        return hashes_of_payloads([p.payload for p in points])


async def aingest(
    client: Any,
    name: str,
    documents: Iterable[Mapping[str, Any]],
    encoder: Encoder,
    *,
    vectors: Mapping[str, str] | None = None,
    model: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    encode_batch_size: int = 32,
    max_attempts: int = 4,
    backoff: float = 0.5,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_duplicate: str = "error",
    allow_model_change: bool = False,
    quantization: Quantization | None = None,
    skip_unchanged: bool = True,
) -> IngestReport:
    """:func:`instructor_qdrant.ingest` for an ``AsyncQdrantClient`` (no progress bar).

    Runs the core engine's async path (:func:`instructor_core.ingest.engine.arun_ingest`): the same
    validation, duplicate check, ordering and retries; batch k+1 is encoded in a worker thread
    while batch k's upsert is awaited.
    """
    check_ingest_args(batch_size, max_attempts)
    layout = await aensure_collection(
        client, name, encoder, vectors=vectors, model=model, allow_model_change=allow_model_change,
        quantization=quantization,
    )  # fmt: skip
    return await arun_ingest(
        documents,
        AsyncQdrantSink(client, name, encoder, layout, encode_batch_size),
        batch_size=batch_size,
        retry=RetryPolicy(max_attempts=max_attempts, backoff=backoff),
        on_duplicate=on_duplicate,  # type: ignore[arg-type]
        sleep=sleep,
        skip_unchanged=skip_unchanged,
    )


async def asearch(
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
    """:func:`instructor_qdrant.search` for an ``AsyncQdrantClient`` (same checks)."""
    prefix = query_prefix(query, instruction)
    info = await client.get_collection(name)
    layout = layout_from_metadata(getattr(info.config, "metadata", None))
    check_search(name, layout, encoder, allow_model_change=allow_model_change)
    matrix = await asyncio.to_thread(encoder.encode_queries, [query], prefix)
    params = search_params(client, layout)
    return await asearch_vector(
        client, name, matrix[0].tolist(), limit=limit, filter=filter, vector=vector, params=params
    )


async def asearch_vector(
    client: Any,
    name: str,
    query_vector: Sequence[float],
    *,
    limit: int = 10,
    filter: Mapping[str, Any] | models.Filter | None = None,
    vector: str | None = None,
    params: models.SearchParams | None = None,
) -> list[Hit]:
    """:func:`instructor_qdrant.search_vector` for an ``AsyncQdrantClient``."""
    result = await client.query_points(**query_request(name, query_vector, limit, filter, vector, params))
    return [hit_from_payload(p.payload, p.score, p.id) for p in result.points]
