"""Qdrant behind the core's store protocol (``instructor_core.stores.Store``), for the CLI and Ray.

Registered as the ``qdrant`` entry point of ``instructor.stores``: ``qdrant+http(s)://HOST:PORT``
opens a ``QdrantClient(url=...)``; ``qdrant:DIR`` an embedded Qdrant Edge store in a folder
(:mod:`instructor_qdrant.edge`), never qdrant-client's local mode, which unpickles its storage. The
model, its fingerprint and the instructions live in the collection metadata, so a search needs only
the collection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from qdrant_client import QdrantClient

from instructor_core.engine import DuplicatePolicy, IngestReport
from instructor_core.protocols import Encoder
from instructor_core.stores import (
    CollectionInfo,
    CollectionNotFoundError,
    Hit,
    StoreUnavailableError,
)
from instructor_core.validation import check_positive_int

from .collection import read_layout
from .edge import EdgeStore, open_edge_store
from .points import DEFAULT_BATCH_SIZE, check_search_encoder, ingest, is_transport_error, search_vector

__all__ = ["QdrantStore", "open_store"]


class QdrantStore:
    """A ``QdrantClient`` as an ``instructor_core.stores.Store``.

    Args:
        client: A ``QdrantClient``.
        location: The folder or URL it was opened from (for messages).
    """

    def __init__(self, client: Any, location: str) -> None:
        self.client = client
        self.location = location

    def describe(self) -> str:
        """``"qdrant at DIR"`` or ``"qdrant at http://HOST:PORT"``."""
        return f"qdrant at {self.location}"

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if is_transport_error(exc):
                raise StoreUnavailableError(f"cannot reach {self.describe()}: {exc}".splitlines()[0]) from exc
            raise

    def list_collections(self) -> list[str]:
        """Names of the collections."""
        return sorted(c.name for c in self._call(self.client.get_collections).collections)

    def _require(self, name: str) -> None:
        if not self._call(self.client.collection_exists, name):
            raise CollectionNotFoundError(name, self.describe(), self.list_collections())

    def info(self, name: str) -> CollectionInfo:
        """What the collection metadata records, plus its size. A collection made outside instructor
        (or on a server without collection metadata) has ``model=None`` and empty instructions."""
        self._require(name)
        layout = read_layout(self.client, name)
        count = int(self.client.count(name, exact=True).count)
        if layout is None:
            return CollectionInfo(name=name, model=None, query_instruction="", document_instruction="", dimension=0,
                                  count=count)  # fmt: skip
        return layout.to_info(name, count)

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
        """Create (or check) the collection for ``encoder`` and ``model``, then ingest ``documents``."""
        return self._call(
            ingest,
            self.client,
            name,
            documents,
            encoder,
            model=model,
            batch_size=batch_size or DEFAULT_BATCH_SIZE,
            show_progress=show_progress,
            on_duplicate=on_duplicate,
            allow_model_change=allow_model_change,
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
        allow_model_change: bool = False,
    ) -> list[list[Hit]]:
        """Embed ``queries`` with the query instruction and search the collection."""
        check_positive_int(k, "k")
        self._require(name)
        check_search_encoder(name, read_layout(self.client, name), encoder, allow_model_change)
        if not queries:
            return []
        vectors = encoder.encode_queries(list(queries), instruction)
        return [
            search_vector(self.client, name, row.tolist(), limit=k, filter=filters or None, vector=vector)
            for row in vectors
        ]

    def delete(self, name: str) -> None:
        """Delete the collection."""
        self._require(name)
        self.client.delete_collection(name)

    def close(self) -> None:
        """Release the client (and the folder of an embedded store)."""
        self.client.close()


def open_store(location: str, *, create: bool = True) -> QdrantStore | EdgeStore:
    """The ``instructor.stores`` factory: ``http(s)://HOST:PORT`` (a server, ``QdrantClient(url=...)``)
    or ``DIR`` (embedded: Qdrant Edge, :class:`instructor_qdrant.edge.EdgeStore`; a qdrant-client
    local-mode folder is refused, never unpickled).

    Args:
        location: The folder or the server's URL.
        create: Make an embedded store where there is none; False raises
            ``instructor_core.stores.StoreNotFoundError`` instead, creating nothing.
    """
    if location.startswith(("http://", "https://")):
        return QdrantStore(QdrantClient(url=location), location)
    return open_edge_store(location, create=create)
