"""BM25 sparse embeddings for langchain-qdrant's hybrid retrieval.

``QdrantVectorStore(embedding=InstructorEmbeddings(...), sparse_embedding=Bm25SparseEmbeddings(),
retrieval_mode=RetrievalMode.HYBRID)``: the dense side carries the instructions, the sparse side is
Qdrant's own BM25 on the raw text (:mod:`instructor_qdrant.bm25`). Create the collection with the
IDF modifier on its sparse vector: ``sparse_vector_params={"modifier": models.Modifier.IDF}``.

Needs ``langchain-qdrant`` and the ``qdrant`` extra.
"""

from __future__ import annotations

from instructor_core.errors import install_hint

try:
    from langchain_qdrant import SparseEmbeddings, SparseVector
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"Bm25SparseEmbeddings needs langchain-qdrant; install it with: {install_hint('langchain,qdrant')}, "
        "then pip install langchain-qdrant"
    ) from exc

from instructor_qdrant.bm25 import Bm25, Bm25Settings

__all__ = ["Bm25SparseEmbeddings"]


class Bm25SparseEmbeddings(SparseEmbeddings):
    """langchain-qdrant ``SparseEmbeddings`` from Qdrant's BM25 (the same vectors a Qdrant server makes).

    Args:
        settings: BM25's parameters (``k``, ``b``, ``avg_len``, ``language``); None: the standard ones.
    """

    def __init__(self, settings: Bm25Settings | None = None) -> None:
        self.bm25 = Bm25(settings)

    def embed_documents(self, texts: list[str]) -> list[SparseVector]:
        """BM25 document vectors, one per text."""
        return [SparseVector(indices=i, values=v) for i, v in self.bm25.embed_documents(texts)]

    def embed_query(self, text: str) -> SparseVector:
        """The query's BM25 vector (the raw query text: no instruction)."""
        indices, values = self.bm25.embed_query(text)
        return SparseVector(indices=indices, values=values)
