"""Chroma behind the core's store protocol (``instructor_core.stores.Store``), for the CLI and Ray.

Registered as the ``chroma`` entry point of ``instructor.stores``: ``chroma:DIR`` opens an embedded
``PersistentClient``, ``chroma+http://HOST:PORT`` an ``HttpClient``. The model and both instructions
live in the collection's embedding-function configuration, so a search needs only the collection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import chromadb
from chromadb.config import Settings
from chromadb.errors import NotFoundError

from instructor_core.engine import DuplicatePolicy, IngestReport
from instructor_core.protocols import Encoder
from instructor_core.stores import (
    CollectionInfo,
    CollectionNotFoundError,
    Hit,
    StoreNotFoundError,
    StoreUnavailableError,
)
from instructor_core.validation import check_positive_int

from .embedding import NAME, InstructorEmbeddingFunction
from .ingest import DEFAULT_BATCH_SIZE, _stored_dimension, ingest, is_transport_error, open_collection

__all__ = ["ChromaStore", "open_store", "where_clause"]

CREATED_KEY = "instructor_created"


def where_clause(filters: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A Chroma ``where`` for ``{key: value}`` filters (all must match)."""
    if not filters:
        return None
    if len(filters) == 1:
        return dict(filters)
    return {"$and": [{key: value} for key, value in filters.items()]}


class ChromaStore:
    """A Chroma client (embedded folder or server) as an ``instructor_core.stores.Store``.

    Args:
        client: A chromadb client.
        location: The folder or URL it was opened from (for messages).
        remote: Whether the client talks to a server (its writes then overlap the encoding).
    """

    def __init__(self, client: Any, location: str, *, remote: bool) -> None:
        self.client = client
        self.location = location
        self.remote = remote

    def describe(self) -> str:
        """``"chroma at DIR"`` or ``"chroma at http://HOST:PORT"``."""
        return f"chroma at {self.location}"

    def list_collections(self) -> list[str]:
        """Names of the collections."""
        return sorted(c if isinstance(c, str) else c.name for c in self.client.list_collections())

    def _collection(self, name: str, embedding_function: Any = None) -> Any:
        try:
            if embedding_function is None:
                return self.client.get_collection(name)
            return self.client.get_collection(name, embedding_function=embedding_function)
        except NotFoundError:
            raise CollectionNotFoundError(name, self.describe(), self.list_collections()) from None

    def _config(self, name: str, collection: Any) -> dict[str, Any]:
        stored = (collection.configuration_json or {}).get("embedding_function") or {}
        if stored.get("name") != NAME:
            raise StoreUnavailableError(
                f"collection {name!r} in {self.describe()} was not made with instructor (its embedding "
                f"function: {stored.get('name', 'none')!r})"
            )
        config = dict(stored.get("config") or {})
        InstructorEmbeddingFunction.validate_config(config)
        return config

    def info(self, name: str) -> CollectionInfo:
        """What the collection's embedding-function config records, plus its size."""
        if name not in self.list_collections():
            raise CollectionNotFoundError(name, self.describe(), self.list_collections())
        collection = self._raw_collection(name)
        config = self._config(name, collection)
        return CollectionInfo(
            name=name,
            model=config["model"],
            query_instruction=config["query_instruction"],
            document_instruction=config["document_instruction"],
            dimension=_stored_dimension(collection) or 0,
            count=int(collection.count()),
            fingerprint=config.get("fingerprint"),
            created=(collection.metadata or {}).get(CREATED_KEY),
        )

    def _raw_collection(self, name: str) -> Any:
        """The collection without rebuilding its embedding function (no model load): chromadb's
        ``get_collection`` builds it from the config, so the model-free path lists the model."""
        for collection in self.client.list_collections():
            if not isinstance(collection, str) and collection.name == name:
                return collection
        return self._collection(name)

    def _function(self, encoder: Encoder, model: str) -> InstructorEmbeddingFunction:
        return InstructorEmbeddingFunction(
            model,
            query_instruction=encoder.instructions.query,
            document_instruction=encoder.instructions.document,
            encoder=encoder,
        )

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
    ) -> IngestReport:
        """Create (or check) the collection for ``encoder`` and ``model``, then ingest ``documents``."""
        ef = self._function(encoder, model)
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        collection = open_collection(self.client, name, ef, metadata={CREATED_KEY: created})
        return ingest(
            collection,
            documents,
            embedding_function=ef,
            batch_size=batch_size or DEFAULT_BATCH_SIZE,
            show_progress=show_progress,
            overlap=self.remote,
            on_duplicate=on_duplicate,
        )

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
    ) -> list[list[Hit]]:
        """Embed ``queries`` with the query instruction and query the collection."""
        check_positive_int(k, "k")
        if vector is not None:
            raise ValueError("Chroma collections have one vector per document; drop the named vector")
        collection = self._raw_collection(name)
        if not queries:
            return []
        vectors = encoder.encode_queries(list(queries), instruction)
        result = collection.query(query_embeddings=vectors, n_results=k, where=where_clause(filters))
        return [
            [
                Hit(id=i, text=t or "", score=1.0 - float(d), metadata=dict(m or {}))
                for i, d, t, m in zip(ids, distances, texts, metas, strict=True)
            ]
            for ids, distances, texts, metas in zip(
                result["ids"], result["distances"], result["documents"], result["metadatas"], strict=True
            )
        ]

    def delete(self, name: str) -> None:
        """Delete the collection."""
        if name not in self.list_collections():
            raise CollectionNotFoundError(name, self.describe(), self.list_collections())
        self.client.delete_collection(name)

    def close(self) -> None:
        """Release the client."""
        close = getattr(self.client, "close", None)
        if close is not None:
            close()


#: The file an embedded Chroma store keeps in its folder.
SQLITE_FILE = "chroma.sqlite3"


def open_store(location: str, *, create: bool = True) -> ChromaStore:
    """The ``instructor.stores`` factory: ``DIR`` (embedded) or ``http(s)://HOST:PORT`` (a server).

    Args:
        location: The folder or the server's URL.
        create: Make an embedded store where there is none; False raises
            ``instructor_core.stores.StoreNotFoundError`` instead, creating nothing.
    """
    settings = Settings(anonymized_telemetry=False)
    if location.startswith(("http://", "https://")):
        url = urlparse(location)
        if not url.hostname:
            raise ValueError(f"store chroma+{location!r}: expected chroma+http://HOST:PORT")
        try:
            client = chromadb.HttpClient(
                host=url.hostname,
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=settings,
            )
        except Exception as exc:  # chromadb checks the server at construction
            if is_transport_error(exc) or isinstance(exc, ValueError):
                raise StoreUnavailableError(f"cannot reach chroma at {location}: {exc}".splitlines()[0]) from exc
            raise
        return ChromaStore(client, location, remote=True)
    if not create:
        folder = Path(location).expanduser()
        if not folder.is_dir():
            raise StoreNotFoundError(location)
        if not (folder / SQLITE_FILE).is_file():
            raise StoreNotFoundError(location, f"the folder holds no Chroma store: no {SQLITE_FILE} in it")
    return ChromaStore(chromadb.PersistentClient(path=location, settings=settings), location, remote=False)
