"""Qdrant integration: collections, streaming ingest and search with INSTRUCTOR embeddings.

Plain functions over your own ``QdrantClient`` (``url=``, ``":memory:"``, or ``path=`` for a folder
you trust: qdrant-client's local mode unpickles its storage). Point ids
are ``uuid5`` of the document id, so re-running an ingest upserts instead of duplicating; a point's
payload keeps the document ``id`` and ``text`` beside its metadata.

``qdrant:DIR`` in the CLI and ``open_store`` is an embedded Qdrant Edge store
(:mod:`instructor_qdrant.edge`), which reads no pickle.

Async variants (``aingest``, ``asearch``, ...) take an ``AsyncQdrantClient``.

Install with ``pip install "instructor[qdrant]"``.
"""

from __future__ import annotations

try:
    import qdrant_client  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        'instructor_qdrant needs qdrant-client; install it with: pip install "instructor[qdrant]"'
    ) from exc

from instructor_core.engine import IngestError, IngestReport
from instructor_core.records import NAMESPACE, RecordError, point_id

from .aio import AsyncQdrantSink, aingest, asearch, asearch_vector
from .collection import (
    CollectionLayout,
    CollectionMismatchError,
    aensure_collection,
    aread_layout,
    ensure_collection,
    read_layout,
)
from .edge import EDGE_RULES, EdgeSink, EdgeStore, LocalModeStoreError, open_edge_store
from .points import TRANSPORT_ERRORS, Hit, QdrantSink, build_filter, ingest, is_transport_error, search, search_vector
from .store import QdrantStore, open_store

__all__ = [
    "NAMESPACE",
    "TRANSPORT_ERRORS",
    "EDGE_RULES",
    "AsyncQdrantSink",
    "CollectionLayout",
    "CollectionMismatchError",
    "EdgeSink",
    "EdgeStore",
    "Hit",
    "IngestError",
    "IngestReport",
    "LocalModeStoreError",
    "QdrantSink",
    "QdrantStore",
    "RecordError",
    "aensure_collection",
    "aingest",
    "aread_layout",
    "asearch",
    "asearch_vector",
    "build_filter",
    "ensure_collection",
    "ingest",
    "is_transport_error",
    "open_edge_store",
    "open_store",
    "point_id",
    "read_layout",
    "search",
    "search_vector",
]
