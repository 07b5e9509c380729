"""Chroma integration: an INSTRUCTOR embedding function and a streaming ingest helper.

Importing this package registers :class:`InstructorEmbeddingFunction` with chromadb under the name
``"instructor_chroma"``, so a collection created with it can be reopened in a fresh process without
passing the function again -- as long as that process has imported ``instructor_chroma``.

Install with ``pip install -e ".[chroma]"`` from a checkout.
"""

from __future__ import annotations

from instructor_core.errors import install_hint

try:
    import chromadb  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(f"instructor_chroma needs chromadb; install it with: {install_hint('chroma')}") from exc

from instructor_core.ingest.engine import IngestError
from instructor_core.ingest.records import RecordError

from .embedding import InstructorEmbeddingFunction, clear_encoder_cache
from .ingest import ingest, is_remote, open_collection
from .store import ChromaStore, open_store, where_clause

# What a user calls; the rest stays importable from its module: ``.ingest`` (ChromaSink, CHROMA_RULES,
# is_transport_error), ``instructor_core.ingest.engine`` (IngestReport).
__all__ = [
    "ChromaStore",
    "IngestError",
    "InstructorEmbeddingFunction",
    "RecordError",
    "clear_encoder_cache",
    "ingest",
    "is_remote",
    "open_collection",
    "open_store",
    "where_clause",
]
