"""Qdrant integration: collections, streaming ingest and search with INSTRUCTOR embeddings.

Plain functions over your own ``QdrantClient`` (``":memory:"``, ``path=`` or ``url=``). Point ids
are ``uuid5`` of the document id, so re-running an ingest upserts instead of duplicating; a point's
payload keeps the document ``id`` and ``text`` beside its metadata.

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
from .points import TRANSPORT_ERRORS, Hit, QdrantSink, build_filter, ingest, is_transport_error, search, search_vector
from .store import QdrantStore, open_store

__all__ = [
    "NAMESPACE",
    "TRANSPORT_ERRORS",
    "AsyncQdrantSink",
    "CollectionLayout",
    "CollectionMismatchError",
    "Hit",
    "IngestError",
    "IngestReport",
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
    "open_store",
    "point_id",
    "read_layout",
    "search",
    "search_vector",
]
