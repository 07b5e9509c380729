"""BM25 sparse vectors made by Qdrant's own embedded engine (``qdrant_edge.Bm25``).

Its token ids and term weights are those a Qdrant server's BM25 makes, so a sparse vector made here
fits a collection on a server, in qdrant-client's local mode or in a Qdrant Edge shard alike. The
document side carries BM25's term-frequency weights (``k``, ``b``, ``avg_len``); the query side
weighs each term 1; the IDF comes from the collection, whose sparse vector must be created with the
IDF modifier (:data:`MODIFIER`). The keyword side always sees the raw text: instructions belong to
the dense side only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from instructor_core.errors import install_hint
from instructor_core.validation import check_texts

__all__ = ["IDF_SPARSE_PARAMS", "MODIFIER", "Bm25", "Bm25Settings", "SparseVector", "check_idf", "idf_sparse_config"]

#: The modifier a BM25 sparse vector needs on its collection (Qdrant computes the IDF).
MODIFIER = "idf"

#: The sparse vector's parameters as langchain-qdrant takes them:
#: ``QdrantVectorStore.from_documents(..., sparse_vector_params=IDF_SPARSE_PARAMS)``. Without the IDF
#: modifier every term weighs alike, and keyword rankings silently change.
IDF_SPARSE_PARAMS: dict[str, Any] = {"modifier": MODIFIER}


def idf_sparse_config() -> Any:  # noqa: ANN401 (qdrant_client.models.SparseVectorParams)
    """The sparse vector's parameters as LlamaIndex's Qdrant store takes them:
    ``QdrantVectorStore(..., enable_hybrid=True, sparse_config=idf_sparse_config())``."""
    from qdrant_client import models

    return models.SparseVectorParams(modifier=models.Modifier.IDF)


def check_idf(client: Any, collection: str, vector_name: str) -> bool:  # noqa: ANN401 (a QdrantClient)
    """Whether ``collection``'s sparse vector ``vector_name`` has the IDF modifier BM25 needs; a
    ``UserWarning`` saying how to make it so where it does not (langchain-qdrant names its sparse
    vector ``langchain-sparse``, LlamaIndex ``text-sparse-new``).

    Raises:
        InputError: The collection has no sparse vector of that name.
    """
    import warnings

    from instructor_core.errors import InputError

    sparse = client.get_collection(collection).config.params.sparse_vectors or {}
    if vector_name not in sparse:
        raise InputError(
            f"collection {collection!r} has no sparse vector {vector_name!r} (it has: {', '.join(sparse) or 'none'})"
        )
    modifier = getattr(sparse[vector_name], "modifier", None)
    if str(getattr(modifier, "value", modifier)).lower() == MODIFIER:
        return True
    warnings.warn(
        f"collection {collection!r}: sparse vector {vector_name!r} has no IDF modifier, so BM25 weighs every term "
        "alike and keyword rankings change; recreate it with sparse_vector_params=IDF_SPARSE_PARAMS (LangChain) or "
        "sparse_config=idf_sparse_config() (LlamaIndex), from instructor_qdrant.bm25",
        UserWarning,
        stacklevel=2,
    )
    return False


#: ``(indices, values)``: one sparse vector.
SparseVector = tuple[list[int], list[float]]


@dataclass(frozen=True)
class Bm25Settings:
    """BM25's parameters, as Qdrant's ``Bm25Config`` names them.

    Attributes:
        k: Term-frequency saturation (1.2, the standard).
        b: Length normalization (0.75).
        avg_len: Average document length in tokens that ``b`` normalizes against (256).
        language: Stopwords and stemmer ("english").
    """

    k: float = 1.2
    b: float = 0.75
    avg_len: float = 256.0
    language: str = "english"

    def as_dict(self) -> dict[str, Any]:
        """The settings as a collection records them."""
        return {"k": self.k, "b": self.b, "avg_len": self.avg_len, "language": self.language}


class Bm25:
    """Sparse BM25 vectors for documents and queries (qdrant-edge's embedder).

    Args:
        settings: BM25's parameters; None takes the standard ones.

    Raises:
        ImportError: qdrant-edge-py is missing (``pip install -e ".[qdrant]"`` from a checkout).
    """

    def __init__(self, settings: Bm25Settings | None = None) -> None:
        try:
            from qdrant_edge import Bm25 as EdgeBm25
            from qdrant_edge import Bm25Config
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(f"BM25 needs qdrant-edge-py; install it with: {install_hint('qdrant')}") from exc
        self.settings = settings or Bm25Settings()
        s = self.settings
        self._model = EdgeBm25(Bm25Config(k=s.k, b=s.b, avg_len=s.avg_len, language=s.language))

    def embed_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        """One sparse vector per document (BM25 term-frequency weights)."""
        return [_pair(self._model.embed_document(text)) for text in check_texts(texts, "texts")]

    def embed_query(self, text: str) -> SparseVector:
        """The query's sparse vector (each term weighs 1; the collection's IDF does the rest)."""
        (checked,) = check_texts([text], "text")
        return _pair(self._model.embed_query(checked))

    def embed_queries(self, texts: Sequence[str]) -> list[SparseVector]:
        """One sparse vector per query."""
        return [self.embed_query(text) for text in check_texts(texts, "texts")]


def _pair(vector: Any) -> SparseVector:
    return [int(i) for i in vector.indices], [float(v) for v in vector.values]
