"""instructor_langchain: INSTRUCTOR embeddings as a LangChain ``Embeddings``.

``InstructorEmbeddings`` embeds queries with the query instruction and documents with the document
instruction, so it drops into any LangChain vector store, retriever or RAG chain unchanged.

Needs the ``langchain`` extra: ``pip install -e ".[langchain]"`` from a checkout.
"""

from __future__ import annotations

from instructor_core.errors import install_hint

try:
    import langchain_core  # noqa: F401
    import pydantic  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "instructor_langchain needs LangChain (langchain-core), which is not installed. "
        f"Install it with: {install_hint('langchain')}"
    ) from exc

from .embeddings import InstructorEmbeddings

__all__ = ["Bm25SparseEmbeddings", "InstructorEmbeddings"]


def __getattr__(name: str) -> object:
    """Bm25SparseEmbeddings on first use: it needs langchain-qdrant and the qdrant extra, which the dense
    embeddings do not."""
    if name in ("Bm25SparseEmbeddings",):
        from . import sparse

        return getattr(sparse, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
