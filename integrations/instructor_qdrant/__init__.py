"""Qdrant integration: collections, streaming ingest and search with INSTRUCTOR embeddings.

Plain functions over your own ``QdrantClient`` (``url=``, ``":memory:"``, or ``path=`` for a folder
you trust: qdrant-client's local mode unpickles its storage). Point ids
are ``uuid5`` of the document id, so re-running an ingest upserts instead of duplicating; a point's
payload keeps the document ``id`` and ``text`` beside its metadata.

``qdrant:DIR`` in the CLI and ``open_store`` is an embedded Qdrant Edge store
(:mod:`instructor_qdrant.edge`), which reads no pickle.

Async variants (``aingest``, ``asearch``, ...) take an ``AsyncQdrantClient``.

Install with ``pip install -e ".[qdrant]"`` from a checkout.
"""

from __future__ import annotations

from instructor_core.errors import install_hint

try:
    import qdrant_client  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(f"instructor_qdrant needs qdrant-client; install it with: {install_hint('qdrant')}") from exc

from instructor_core.ingest.records import RecordError, point_id

from .aio import aingest, asearch
from .collection import CollectionMismatchError, aread_layout, ensure_collection, read_layout
from .points import build_filter, ingest, search
from .store import open_store

# What a user calls; the rest stays importable from its module: ``.points`` (search_vector, QdrantSink,
# is_transport_error, TRANSPORT_ERRORS), ``.aio`` (asearch_vector, AsyncQdrantSink), ``.collection``
# (aensure_collection, CollectionLayout), ``.edge`` (EdgeStore, EdgeSink, EDGE_RULES, open_edge_store,
# LocalModeStoreError), ``.store`` (QdrantStore).
__all__ = [
    "CollectionMismatchError",
    "RecordError",
    "aingest",
    "aread_layout",
    "asearch",
    "build_filter",
    "ensure_collection",
    "ingest",
    "open_store",
    "point_id",
    "read_layout",
    "search",
]
