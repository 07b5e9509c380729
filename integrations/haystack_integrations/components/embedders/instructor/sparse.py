"""BM25 sparse embedders: the keyword side of hybrid search, the same BM25 as ``instructor ingest --hybrid``.

The vectors are Qdrant's own BM25 (:class:`instructor_qdrant.bm25.Bm25`): a document carries BM25's
term-frequency weights, a query weighs each of its terms 1, and the collection supplies the IDF, so a
``QdrantDocumentStore`` for them needs ``use_sparse_embeddings=True, sparse_idf=True``. They see the raw
text only: instructions belong to the dense side. Needs ``qdrant-edge-py`` (the ``qdrant`` extra).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.dataclasses import SparseEmbedding

from instructor_core.errors import InputTypeError

from .documents import check_documents, check_meta_fields, document_texts

__all__ = ["InstructorSparseDocumentEmbedder", "InstructorSparseTextEmbedder"]


class _Bm25Settings:
    """BM25's parameters (Qdrant's ``Bm25Config``), the embedder built on first use."""

    def _bm25_setup(self, k: float, b: float, avg_len: float, language: str) -> None:
        from instructor_qdrant.bm25 import Bm25Settings

        self.k, self.b, self.avg_len, self.language = k, b, avg_len, language
        self._settings = Bm25Settings(k=k, b=b, avg_len=avg_len, language=language)
        self._bm25: Any = None

    def warm_up(self) -> None:
        """Build the BM25 embedder (ImportError naming the extra where qdrant-edge-py is missing)."""
        if self._bm25 is None:
            from instructor_qdrant.bm25 import Bm25

            self._bm25 = Bm25(self._settings)

    def _bm25_parameters(self) -> dict[str, Any]:
        return {"k": self.k, "b": self.b, "avg_len": self.avg_len, "language": self.language}


@component
class InstructorSparseTextEmbedder(_Bm25Settings):
    """A query's BM25 sparse vector (each term weighs 1), for ``QdrantHybridRetriever`` or
    ``QdrantSparseEmbeddingRetriever``.

    Args:
        k: Term-frequency saturation.
        b: Length normalization.
        avg_len: Average document length in tokens that ``b`` normalizes against.
        language: Stopwords and stemmer.
    """

    def __init__(self, *, k: float = 1.2, b: float = 0.75, avg_len: float = 256.0, language: str = "english") -> None:
        self._bm25_setup(k, b, avg_len, language)

    def to_dict(self) -> dict[str, Any]:
        """The component as a dictionary (what ``Pipeline.dumps`` writes)."""
        return default_to_dict(self, **self._bm25_parameters())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstructorSparseTextEmbedder:
        """The component ``to_dict`` described."""
        return default_from_dict(cls, data)

    @component.output_types(sparse_embedding=SparseEmbedding)
    def run(self, text: str) -> dict[str, Any]:
        """The query's sparse vector: ``{"sparse_embedding": SparseEmbedding}``.

        Raises:
            TypeError: ``text`` is not a str.
        """
        if not isinstance(text, str):
            raise InputTypeError(
                f"InstructorSparseTextEmbedder.run: text must be a str, got {type(text).__name__}; "
                "embed Documents with InstructorSparseDocumentEmbedder"
            )
        self.warm_up()
        indices, values = self._bm25.embed_query(text)
        return {"sparse_embedding": SparseEmbedding(indices=indices, values=values)}

    @component.output_types(sparse_embedding=SparseEmbedding)
    async def run_async(self, text: str) -> dict[str, Any]:
        """:meth:`run` in a worker thread."""
        return await asyncio.to_thread(self.run, text)


@component
class InstructorSparseDocumentEmbedder(_Bm25Settings):
    """Documents' BM25 sparse vectors (term-frequency weights), set as ``sparse_embedding`` on new
    Documents; each Document is checked before any is embedded.

    Args:
        meta_fields_to_embed: Meta fields embedded with the content, before it, each required.
        embedding_separator: What joins the meta fields and the content.
        k: Term-frequency saturation.
        b: Length normalization.
        avg_len: Average document length in tokens that ``b`` normalizes against.
        language: Stopwords and stemmer.
    """

    def __init__(
        self,
        *,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        k: float = 1.2,
        b: float = 0.75,
        avg_len: float = 256.0,
        language: str = "english",
    ) -> None:
        self._bm25_setup(k, b, avg_len, language)
        self.meta_fields_to_embed = check_meta_fields(meta_fields_to_embed, "InstructorSparseDocumentEmbedder")
        if not isinstance(embedding_separator, str):
            raise InputTypeError(f"embedding_separator must be a str, got {embedding_separator!r:.40}")
        self.embedding_separator = embedding_separator

    def to_dict(self) -> dict[str, Any]:
        """The component as a dictionary (what ``Pipeline.dumps`` writes)."""
        return default_to_dict(
            self,
            meta_fields_to_embed=self.meta_fields_to_embed,
            embedding_separator=self.embedding_separator,
            **self._bm25_parameters(),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstructorSparseDocumentEmbedder:
        """The component ``to_dict`` described."""
        return default_from_dict(cls, data)

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        """New Documents, in order, with ``sparse_embedding`` set.

        Raises:
            TypeError: Not a list of Documents (naming the item).
            ValueError: A Document without content or a field of ``meta_fields_to_embed`` (naming it).
        """
        where = "InstructorSparseDocumentEmbedder.run"
        items = check_documents(documents, where)
        texts = document_texts(items, self.meta_fields_to_embed, self.embedding_separator, where)
        if not items:
            return {"documents": []}
        self.warm_up()
        vectors = self._bm25.embed_documents(texts)
        return {
            "documents": [
                replace(d, sparse_embedding=SparseEmbedding(indices=i, values=v))
                for d, (i, v) in zip(items, vectors, strict=True)
            ]
        }

    @component.output_types(documents=list[Document])
    async def run_async(self, documents: list[Document]) -> dict[str, list[Document]]:
        """:meth:`run` in a worker thread."""
        return await asyncio.to_thread(self.run, documents)
