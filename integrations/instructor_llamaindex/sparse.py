"""BM25 sparse functions for LlamaIndex's Qdrant vector store in hybrid mode.

``QdrantVectorStore(..., enable_hybrid=True, sparse_doc_fn=doc_fn, sparse_query_fn=query_fn,
sparse_config=SparseVectorParams(modifier=Modifier.IDF))`` with ``doc_fn, query_fn = bm25_functions()``:
the dense side is :class:`~instructor_llamaindex.InstructorEmbedding` (with its instructions), the
sparse side Qdrant's own BM25 on the raw text (:mod:`instructor_qdrant.bm25`).

Needs ``llama-index-vector-stores-qdrant`` and the ``qdrant`` extra.
"""

from __future__ import annotations

from collections.abc import Callable

from instructor_qdrant.bm25 import Bm25, Bm25Settings

__all__ = ["SparseFunction", "bm25_functions"]

#: LlamaIndex's ``SparseEncoderCallable``: texts -> (indices per text, values per text).
SparseFunction = Callable[[list[str]], tuple[list[list[int]], list[list[float]]]]


def bm25_functions(settings: Bm25Settings | None = None) -> tuple[SparseFunction, SparseFunction]:
    """``(sparse_doc_fn, sparse_query_fn)`` for ``QdrantVectorStore(enable_hybrid=True, ...)``."""
    bm25 = Bm25(settings)

    def documents(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
        vectors = bm25.embed_documents(texts)
        return [i for i, _ in vectors], [v for _, v in vectors]

    def queries(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
        vectors = bm25.embed_queries(texts)
        return [i for i, _ in vectors], [v for _, v in vectors]

    return documents, queries
