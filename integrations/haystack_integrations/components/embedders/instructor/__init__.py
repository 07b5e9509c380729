"""Instructor embedders for Haystack: instruction-conditioned dense vectors and BM25 sparse vectors.

``InstructorTextEmbedder`` (queries, the query instruction) and ``InstructorDocumentEmbedder``
(Documents, the document instruction or each Document's own) follow Haystack's sentence-transformers
embedders, with the instruction left out of pooling where the model says so (every INSTRUCTOR
checkpoint). ``InstructorSparseTextEmbedder`` / ``InstructorSparseDocumentEmbedder`` make the BM25
sparse vectors that ``instructor ingest --hybrid`` stores, for Qdrant's hybrid retrieval.

The import path sits under ``haystack_integrations``, so a pipeline saved with these components loads
with Haystack's default deserialization allowlist; ``instructor_haystack`` is a short alias.
Needs the ``haystack`` extra: from a checkout, ``pip install -e ".[haystack]"``.
"""

from __future__ import annotations

try:
    import haystack  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the Instructor embedders for Haystack need haystack-ai, which is not installed; "
        'from a checkout of instructor: pip install -e ".[haystack]"'
    ) from exc

from .document_embedder import InstructorDocumentEmbedder
from .loading import clear_encoder_cache
from .sparse import InstructorSparseDocumentEmbedder, InstructorSparseTextEmbedder
from .text_embedder import InstructorTextEmbedder

__all__ = [
    "InstructorDocumentEmbedder",
    "InstructorSparseDocumentEmbedder",
    "InstructorSparseTextEmbedder",
    "InstructorTextEmbedder",
    "clear_encoder_cache",
]
