"""Where a Ray job writes: a picklable description of a store and collection, and the writer a worker
(or the driver) opens from it.

The collection is created or checked on the driver with the single-process helpers' own functions
(``instructor_chroma.open_collection``, ``instructor_qdrant.ensure_collection``: the same model,
instruction and dimension checks). Workers only write precomputed vectors, with the same ids and
payload as the single-process path, so they never load a model for writing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlparse

import numpy as np

from instructor_core.records import Record

__all__ = ["StoreTarget", "Writer", "open_writer", "prepare_collection"]


@dataclass(frozen=True)
class StoreTarget:
    """A collection in a store, as plain data (it travels to the Ray workers).

    Attributes:
        kind: "chroma" or "qdrant".
        collection: Collection name.
        url: Server URL (``http://host:port``), or None for an embedded store.
        path: Folder of an embedded store (``chroma:DIR``, ``qdrant:DIR``), or None.
    """

    kind: Literal["chroma", "qdrant"]
    collection: str
    url: str | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("chroma", "qdrant"):
            raise ValueError(f'store kind must be "chroma" or "qdrant", got {self.kind!r}')
        if (self.url is None) == (self.path is None):
            raise ValueError("give exactly one of url (a server) or path (an embedded store)")
        if not isinstance(self.collection, str) or not self.collection:
            raise ValueError(f"collection must be a non-empty str, got {self.collection!r}")

    @property
    def embedded(self) -> bool:
        """Whether one process must own the store (a folder), so only the driver may write it."""
        return self.path is not None

    def describe(self) -> str:
        return f"{self.kind} at {self.url or self.path}"

    @classmethod
    def from_url(cls, store: str, collection: str) -> StoreTarget:
        """From a CLI store URL: ``chroma:DIR``, ``qdrant:DIR``, ``chroma+http://H:P``, ``qdrant+http://H:P``."""
        from instructor_core.commands.store import parse_store

        spec = parse_store(store)
        return cls(spec.kind, collection, url=spec.url, path=spec.path)


def _chroma_client(target: StoreTarget) -> Any:
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    if target.path is not None:
        return chromadb.PersistentClient(path=target.path, settings=settings)
    url = urlparse(target.url)
    return chromadb.HttpClient(
        host=url.hostname,
        port=url.port or (443 if url.scheme == "https" else 8000),
        ssl=url.scheme == "https",
        settings=settings,
    )


def _qdrant_client(target: StoreTarget) -> Any:
    from qdrant_client import QdrantClient

    return QdrantClient(path=target.path) if target.path is not None else QdrantClient(url=target.url)


class Writer:
    """Writes validated records with their precomputed document vectors into one collection.

    Attributes:
        metadata_values: What metadata values the store holds ("scalar" or "json").
        reserved_metadata_keys: Metadata keys the store uses itself.
    """

    metadata_values = "json"
    reserved_metadata_keys: tuple[str, ...] = ()

    def write(self, records: Sequence[Record], vectors: np.ndarray) -> None:
        raise NotImplementedError

    def is_transport_error(self, exc: BaseException) -> bool:
        raise NotImplementedError

    def count(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        """Release the client (an embedded store's folder lock)."""


class _ChromaWriter(Writer):
    metadata_values = "scalar"
    reserved_metadata_keys = ("chroma:document",)

    def __init__(self, target: StoreTarget, client: Any = None, collection: Any = None) -> None:
        self.client = client if client is not None else _chroma_client(target)
        # No embedding function: vectors come precomputed, so a worker never loads the model.
        self.collection = (
            collection
            if collection is not None
            else self.client.get_collection(target.collection, embedding_function=None)
        )

    def write(self, records: Sequence[Record], vectors: np.ndarray) -> None:
        self.collection.upsert(
            ids=[r.id for r in records],
            documents=[r.text for r in records],
            embeddings=np.asarray(vectors, dtype=np.float32),
            metadatas=[dict(r.metadata) or None for r in records],
        )

    def is_transport_error(self, exc: BaseException) -> bool:
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return True
        try:
            import httpx
        except ImportError:  # pragma: no cover
            return False
        return isinstance(exc, httpx.TransportError)

    def count(self) -> int:
        return int(self.collection.count())


class _QdrantWriter(Writer):
    reserved_metadata_keys = ("id", "text")

    def __init__(self, target: StoreTarget) -> None:
        self.client = _qdrant_client(target)
        self.name = target.collection

    def write(self, records: Sequence[Record], vectors: np.ndarray) -> None:
        from qdrant_client import models

        from instructor_core.records import point_id

        points = [
            models.PointStruct(
                id=point_id(r.id),
                vector=np.asarray(v, dtype=np.float32).tolist(),
                payload={"id": r.id, "text": r.text, **dict(r.metadata)},
            )
            for r, v in zip(records, vectors, strict=True)
        ]
        self.client.upsert(collection_name=self.name, points=points, wait=True)

    def is_transport_error(self, exc: BaseException) -> bool:
        from instructor_qdrant.points import is_transport_error

        return is_transport_error(exc)

    def count(self) -> int:
        return int(self.client.count(self.name, exact=True).count)

    def close(self) -> None:
        self.client.close()


def open_writer(target: StoreTarget) -> Writer:
    """A writer for ``target``'s existing collection (in a worker, or on the driver for an embedded store)."""
    return _ChromaWriter(target) if target.kind == "chroma" else _QdrantWriter(target)


def prepare_collection(target: StoreTarget, encoder: Any, model: str) -> tuple[int, Writer]:
    """Create ``target``'s collection for ``encoder`` or check the existing one (model, instructions,
    dimension), on the driver, before any worker writes.

    Returns:
        ``(points already in the collection, a writer)``. For a server store the caller closes the
        writer; for an embedded store it is the one writer the driver uses.
    """
    if target.kind == "chroma":
        from instructor_chroma import InstructorEmbeddingFunction, open_collection
        from instructor_chroma.ingest import _stored_dimension

        ef = InstructorEmbeddingFunction(
            model,
            encoder=encoder,
            document_instruction=encoder.instructions.document,
            query_instruction=encoder.instructions.query,
        )
        client = _chroma_client(target)
        collection = open_collection(client, target.collection, ef)
        stored = _stored_dimension(collection)
        if stored is not None and stored != encoder.dimension:
            raise ValueError(
                f"collection {target.collection!r} holds {stored}-dimensional vectors, the model makes "
                f"{encoder.dimension}-dimensional ones; nothing was written"
            )
        writer: Writer = _ChromaWriter(target, client=client, collection=collection)
    else:
        from instructor_qdrant import ensure_collection

        writer = _QdrantWriter(target)
        try:
            ensure_collection(writer.client, target.collection, encoder, model=model)
        except BaseException:
            writer.close()
            raise
    return writer.count(), writer
