"""instructor_llamaindex: INSTRUCTOR embeddings as a LlamaIndex ``BaseEmbedding``.

``InstructorEmbedding`` embeds queries with the query instruction and nodes with the document
(text) instruction; set it as ``Settings.embed_model`` or pass it to an index or an
``IngestionPipeline``.

Needs the ``llamaindex`` extra: ``pip install -e ".[llamaindex]"`` from a checkout.
"""

from __future__ import annotations

from instructor_core.errors import install_hint

try:
    import llama_index.core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "instructor_llamaindex needs LlamaIndex (llama-index-core), which is not installed. "
        f"Install it with: {install_hint('llamaindex')}"
    ) from exc

from .embeddings import InstructorEmbedding

__all__ = ["InstructorEmbedding", "SparseFunction", "bm25_functions"]


def __getattr__(name: str) -> object:
    """bm25_functions and SparseFunction on first use: they need the qdrant extra, which the dense
    embedding does not."""
    if name in ("bm25_functions", "SparseFunction"):
        from . import sparse

        return getattr(sparse, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
