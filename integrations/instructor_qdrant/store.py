"""Qdrant behind the core's store protocol (``instructor_core.ingest.stores.Store``), for the CLI and Ray.

Registered as the ``qdrant`` entry point of ``instructor.stores``: ``qdrant+http(s)://HOST:PORT``
opens a ``QdrantClient(url=...)``; ``qdrant:DIR`` an embedded Qdrant Edge store in a folder
(:mod:`instructor_qdrant.edge`), never qdrant-client's local mode, which unpickles its storage. The
model, its fingerprint and the instructions live in the collection metadata, so a search needs only
the collection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qdrant_client import QdrantClient
from qdrant_client.http.exceptions import UnexpectedResponse

from instructor_core.errors import InputError
from instructor_core.ingest.stores import (
    SPARSE_FEATURE,
    BaseStore,
    CollectionLayout,
    Hit,
    StoreUnavailableError,
    store_factory,
)

from . import hybrid
from .collection import check_vector_params, create_args, read_layout
from .edge import MARKER, EdgeStore, check_collection_name, open_edge_store
from .points import QdrantSink, is_transport_error, search_params, search_vector
from .quantization import QUANTIZED_FEATURES

__all__ = ["QdrantStore", "open_store"]


class QdrantStore(BaseStore):
    """A ``QdrantClient`` (a server) as an ``instructor_core.ingest.stores.Store``.

    Args:
        client: A ``QdrantClient``.
        location: The URL it was opened from (for messages).
    """

    scheme = "qdrant"
    store_errors = (UnexpectedResponse,)
    features = QUANTIZED_FEATURES | {SPARSE_FEATURE}  # quantization; a keyword index: instructor_qdrant.hybrid

    def __init__(self, client: Any, location: str) -> None:
        self.client = client
        self.location = location

    def is_transport_error(self, exc: BaseException) -> bool:
        """See :func:`instructor_qdrant.is_transport_error`."""
        return is_transport_error(exc)

    def _names(self) -> list[str]:
        return [c.name for c in self.client.get_collections().collections]

    def _exists(self, name: str) -> bool:
        return bool(self.client.collection_exists(name))

    def _layout(self, name: str) -> CollectionLayout | None:
        layout = read_layout(self.client, name)
        if layout is not None:
            try:
                hybrid.check_keyword_index(layout)
            except InputError as exc:
                raise StoreUnavailableError(f"collection {name!r} in {self.describe()}: its metadata: {exc}") from None
        return layout

    def _count(self, name: str) -> int:
        return int(self.client.count(name, exact=True).count)

    def _create(self, name: str, layout: CollectionLayout) -> None:
        layout = hybrid.sparse_layout(layout)
        sparse = hybrid.server_sparse_config() if layout.sparse else None
        self.client.create_collection(name, **create_args(layout, False), sparse_vectors_config=sparse)

    def _check_existing(self, name: str, layout: CollectionLayout) -> None:
        check_vector_params(name, self.client.get_collection(name).config.params.vectors, layout)

    def _drop(self, name: str) -> None:
        self.client.delete_collection(name)

    def _sink(self, name: str) -> QdrantSink:
        sink, layout = QdrantSink(self.client, name), self._layout(name)
        if layout is not None and layout.sparse:
            return hybrid.HybridServerSink(sink, layout)  # type: ignore[return-value]
        return sink

    def _query_keyword(
        self, name: str, vectors: list[list[float]], texts: list[str], k: int, filters: Mapping[str, Any] | None,
        vector: str | None, mode: str, fusion: str,
    ) -> list[list[Hit]]:  # fmt: skip
        """Keyword or hybrid hits (:func:`instructor_qdrant.hybrid.query_server`)."""
        layout = self._layout(name) or CollectionLayout(dimension=0, sparse="bm25")
        return hybrid.query_server(self.client, name, layout, vectors, texts, k=k, filters=filters, vector=vector,
                                   mode=mode, fusion=fusion)  # fmt: skip

    def _query(
        self, name: str, vectors: list[list[float]], k: int, filters: Mapping[str, Any] | None, vector: str | None
    ) -> list[list[Hit]]:
        params = search_params(self.client, read_layout(self.client, name))  # rescoring a quantized collection
        return [
            search_vector(self.client, name, row, limit=k, filter=filters, vector=vector, params=params)
            for row in vectors
        ]

    def _release(self) -> None:
        self.client.close()


def _check_name(location: str, name: str) -> None:
    """An embedded store's collection is a folder: its name must be a safe folder name. A server
    checks names itself."""
    if not location.startswith(("http://", "https://")):
        check_collection_name(name)


@store_factory(QdrantStore.features, check_name=_check_name, marker=(MARKER, "a Qdrant Edge store"))  # Edge: same
def open_store(location: str, *, create: bool = True) -> QdrantStore | EdgeStore:
    """The ``instructor.stores`` factory: ``http(s)://HOST:PORT`` (a server, ``QdrantClient(url=...)``)
    or ``DIR`` (embedded: Qdrant Edge, :class:`instructor_qdrant.edge.EdgeStore`; a qdrant-client
    local-mode folder is refused, never unpickled).

    Args:
        location: The folder or the server's URL.
        create: Make an embedded store where there is none; False raises
            ``instructor_core.ingest.stores.StoreNotFoundError`` instead, creating nothing.
    """
    if location.startswith(("http://", "https://")):
        return QdrantStore(QdrantClient(url=location), location)
    return open_edge_store(location, create=create)


def open_local_mode(path: str) -> QdrantStore:
    """A qdrant-client local-mode folder (``QdrantClient(path=)``) as a store. qdrant-client
    unpickles its storage: for folders you trust only (tests, ``instructor_ray.QdrantDatasink(path=)``)."""
    return QdrantStore(QdrantClient(path=path), path)
