"""Async variants for ``AsyncQdrantClient``: the same checks, ids, payloads and retries as the sync
functions. Encoding runs in a worker thread (``asyncio.to_thread``) so the event loop stays free."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from qdrant_client import models

from instructor_core.records import IngestReport, validated_batches

from .collection import aensure_collection
from .points import (
    _RESERVED,
    DEFAULT_BATCH_SIZE,
    Hit,
    _to_hit,
    check_ingest_args,
    is_transport_error,
    make_points,
    query_prefix,
    query_request,
)

__all__ = ["aingest", "asearch", "asearch_vector"]


async def _upsert(
    client: Any, name: str, points: list[Any], max_attempts: int, backoff: float, sleep: Callable[[float], Awaitable]
) -> None:
    for attempt in range(1, max_attempts + 1):
        try:
            await client.upsert(collection_name=name, points=points, wait=True)
            return
        except Exception as exc:
            if not is_transport_error(exc) or attempt == max_attempts:
                raise
            await sleep(backoff * 2 ** (attempt - 1))


async def aingest(
    client: Any,
    name: str,
    documents: Iterable[Mapping[str, Any]],
    encoder: Any,
    *,
    vectors: Mapping[str, str] | None = None,
    model: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    encode_batch_size: int = 32,
    max_attempts: int = 4,
    backoff: float = 0.5,
    sleep: Callable[[float], Awaitable] = asyncio.sleep,
) -> IngestReport:
    """:func:`instructor_qdrant.ingest` for an ``AsyncQdrantClient`` (no progress bar).

    ``documents`` is a plain iterable, read one batch at a time; each batch is validated whole,
    encoded in a worker thread, then upserted (retried only on transport errors). Batch k+1 is
    encoded while batch k is upserted; batches are written in order, and after any failure no later
    batch is written (an error reading the input still lets the batch already encoded be written).
    """
    check_ingest_args(batch_size, max_attempts)
    layout = await aensure_collection(client, name, encoder, vectors=vectors, model=model)
    written = batches = 0
    pending: tuple[list, asyncio.Future] | None = None

    async def write(records: list, encoding: asyncio.Future) -> None:
        nonlocal written, batches
        await _upsert(client, name, await encoding, max_attempts, backoff, sleep)
        written += len(records)
        batches += 1

    iterator = validated_batches(documents, batch_size, reserved_metadata_keys=_RESERVED)
    try:
        while True:
            try:
                batch = next(iterator, None)
                if batch is None:
                    break
            except Exception:
                if pending is not None:
                    await write(*pending)
                    pending = None
                raise
            records = batch[1]
            encoding = asyncio.ensure_future(
                asyncio.to_thread(make_points, records, encoder, layout, encode_batch_size)
            )
            if pending is not None:
                current, pending = pending, (records, encoding)
                await write(*current)
            else:
                pending = (records, encoding)
        if pending is not None:
            current, pending = pending, None
            await write(*current)
    finally:
        if pending is not None:  # a failure left an encoding running: let it finish, drop it
            await asyncio.gather(pending[1], return_exceptions=True)
    # every batch read was written, or the call raised
    return IngestReport(seen=written, written=written, batches=batches)


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
) -> list[Hit]:
    """:func:`instructor_qdrant.search` for an ``AsyncQdrantClient``."""
    prefix = query_prefix(query, instruction)
    matrix = await asyncio.to_thread(encoder.encode_queries, [query], prefix)
    return await asearch_vector(client, name, matrix[0].tolist(), limit=limit, filter=filter, vector=vector)


async def asearch_vector(
    client: Any,
    name: str,
    query_vector: Sequence[float],
    *,
    limit: int = 10,
    filter: Mapping[str, Any] | models.Filter | None = None,
    vector: str | None = None,
) -> list[Hit]:
    """:func:`instructor_qdrant.search_vector` for an ``AsyncQdrantClient``."""
    result = await client.query_points(**query_request(name, query_vector, limit, filter, vector))
    return [_to_hit(p) for p in result.points]
