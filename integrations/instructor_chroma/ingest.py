"""Open a Chroma collection for an InstructorEmbeddingFunction, and ingest a corpus into it in batches.

The Chroma id of a record is its document id itself (already deterministic and a string), so a
re-run upserts instead of duplicating, and every hit maps back to its document directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tqdm.auto import tqdm

from instructor_core.records import IngestReport, Record, RecordError, pipelined, validated_batches

from .embedding import NAME, InstructorEmbeddingFunction

__all__ = ["ingest", "open_collection"]

DEFAULT_BATCH_SIZE = 256
_RESERVED = ("chroma:document",)


def open_collection(
    client: Any,
    name: str,
    embedding_function: InstructorEmbeddingFunction | None = None,
    *,
    metadata: Mapping[str, Any] | None = None,
    hnsw: Mapping[str, Any] | None = None,
) -> Any:
    """Get or create a cosine collection that embeds with ``embedding_function``.

    With no function, the collection must exist and is opened with the function rebuilt from its
    stored config. With one, an existing collection's stored config must agree on model and
    instructions (else ``ValueError``, see :meth:`InstructorEmbeddingFunction.validate_config_update`).

    Args:
        client: A chromadb client (``PersistentClient``, ``HttpClient``, ``EphemeralClient``).
        name: Collection name.
        embedding_function: The function for a new collection, or to check against an existing one.
        metadata: Collection metadata for a new collection.
        hnsw: Extra HNSW settings for a new collection (e.g. ``{"ef_search": 200}``); space is cosine.
    """
    if embedding_function is None:
        collection = client.get_collection(name)
        stored = (collection.configuration_json or {}).get("embedding_function") or {}
        if stored.get("name") != NAME:
            raise ValueError(
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
            embedding_function.validate_config_update(old, embedding_function.get_config())
        return collection
    configuration: dict[str, Any] = {"hnsw": {"space": "cosine", **dict(hnsw or {})}}
    return client.create_collection(
        name,
        configuration=configuration,
        metadata=dict(metadata) if metadata else None,
        embedding_function=embedding_function,
    )


def _embedding_function_of(collection: Any) -> Any:
    ef = getattr(collection, "_embedding_function", None)
    if ef is not None and ef.name() != "default":
        return ef
    ef = collection.configuration.get("embedding_function")
    if ef is None:
        raise ValueError(f"collection {collection.name!r} has no embedding function; pass embedding_function=")
    return ef


def _stored_dimension(collection: Any) -> int | None:
    """Length of the vectors already in the collection (None while it is empty)."""
    sample = collection.get(limit=1, include=["embeddings"])
    embeddings = sample.get("embeddings")
    if embeddings is None or len(embeddings) == 0:
        return None
    return len(embeddings[0])


def _is_remote(collection: Any) -> bool:
    """Whether the collection lives behind a Chroma server (``HttpClient``), not in this process."""
    return type(getattr(collection, "_client", None)).__name__ in ("FastAPI", "AsyncFastAPI")


def ingest(
    collection: Any,
    documents: Iterable[Mapping[str, Any]],
    *,
    embedding_function: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    show_progress: bool = True,
    total: int | None = None,
) -> IngestReport:
    """Embed records with the document instruction and upsert them into a Chroma collection.

    Streams: ``documents`` is read one batch at a time, each batch is validated whole before it is
    embedded or written (a bad record raises :class:`RecordError` and nothing of its batch is
    written), then upserted by document id. With a remote (HTTP) client, batch k+1 is embedded in a
    worker thread while batch k is upserted from the calling thread; an embedded client embeds and
    writes one batch after the other. Batches are written in order and none after a failure. A run
    that stopped midway can simply be run again.

    Args:
        collection: A chromadb collection (see :func:`open_collection`).
        documents: Records ``{"id": str, "text": str, "metadata": {...}}``; any iterable.
        embedding_function: Embeds the documents; None uses the collection's own.
        batch_size: Records per upsert, capped at the client's ``get_max_batch_size()``.
        show_progress: Show a tqdm bar (records).
        total: Number of records, for the progress bar, if known.

    Returns:
        IngestReport(seen, written, batches).
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    ef = embedding_function if embedding_function is not None else _embedding_function_of(collection)
    server = getattr(collection, "_client", None)
    if server is not None and hasattr(server, "get_max_batch_size"):
        batch_size = min(batch_size, int(server.get_max_batch_size()))
    if total is None and hasattr(documents, "__len__"):
        total = len(documents)  # type: ignore[arg-type]
    dimension = _stored_dimension(collection)
    written = batches = 0
    desc = f"Ingesting into {collection.name}"
    with tqdm(total=total, desc=desc, unit="doc", disable=not show_progress) as bar:

        def write(batch: tuple[int, list[Record]], embeddings: Any) -> None:
            nonlocal dimension, written, batches
            start, records = batch
            if dimension is not None and len(embeddings) and len(embeddings[0]) != dimension:
                raise RecordError(
                    f"the collection {collection.name!r} holds {dimension}-dimensional vectors, the embedding"
                    f" function makes {len(embeddings[0])}-dimensional ones; nothing of this batch was"
                    " written",
                    index=start,
                    record_id=records[0].id,
                )
            collection.upsert(
                ids=[r.id for r in records],
                documents=[r.text for r in records],
                embeddings=embeddings,
                metadatas=[dict(r.metadata) or None for r in records],
            )
            dimension = len(embeddings[0]) if len(embeddings) else dimension
            written += len(records)
            batches += 1
            bar.update(len(records))

        # Against a server, batch k+1 is embedded in a worker thread while batch k is upserted (the
        # upsert waits on the network). Embedded, the upsert's own threads need the encoder's cores:
        # one after the other measured faster (benchmarks/ingest.py, docs/performance.md).
        overlap = _is_remote(collection)
        chunks = validated_batches(documents, batch_size, metadata_values="scalar", reserved_metadata_keys=_RESERVED)
        pipelined(chunks, lambda batch: ef([r.text for r in batch[1]]), write, overlap=overlap)
    # every batch read was written, or the call raised
    return IngestReport(seen=written, written=written, batches=batches)
