"""What a collection is made with and what a search returns: :class:`CollectionLayout` (the model, its
fingerprint, the instructions, the dimension, the max length, a keyword index, the quantization),
:class:`CollectionInfo` and :class:`Hit`; the layout's on-disk codec."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from instructor_core.errors import InputError

__all__ = [
    "CollectionInfo",
    "CollectionLayout",
    "Fusion",
    "Hit",
    "META_KEY",
    "Quantization",
    "SPARSE_FEATURE",
    "SearchMode",
    "layout_features",
]


@dataclass(frozen=True)
class Hit:
    """One search result.

    Attributes:
        id: The document id.
        text: The document text.
        score: Cosine similarity to the query.
        metadata: The rest of what was stored with the document.
        point_id: The store's own key for it, where that differs from ``id`` (Qdrant's uuid5).
    """

    id: str
    text: str
    score: float
    metadata: Mapping[str, Any] = field(default_factory=dict)
    point_id: str = ""


@dataclass(frozen=True)
class CollectionInfo:
    """What a collection records about how its vectors were made.

    Attributes:
        name: The collection's name.
        model: The model name or path it was made with, where recorded.
        query_instruction: The instruction for queries.
        document_instruction: The instruction its documents were embedded with.
        dimension: Vector length (0 where unknown: an empty collection made outside instructor).
        count: Number of documents stored.
        fingerprint: The model's content fingerprint, where recorded.
        created: When it was created (ISO 8601, UTC), where recorded.
        vectors: Named vectors and their document instructions (Qdrant), else empty.
        max_length: The token limit (instruction + text) its documents were embedded with, where
            recorded (collections made before it was recorded have None).
        layout: The whole layout, where instructor made the collection (None otherwise).
    """

    name: str
    model: str | None
    query_instruction: str
    document_instruction: str
    dimension: int
    count: int
    fingerprint: str | None = None
    created: str | None = None
    vectors: Mapping[str, str] = field(default_factory=dict)
    max_length: int | None = None
    layout: CollectionLayout | None = field(default=None, compare=False, repr=False)


#: The key of a layout in a collection's metadata (Qdrant) or layout file (Qdrant Edge).
META_KEY = "instructor"
Quantization = Literal["none", "int8", "binary"]
#: How a search ranks: by the dense vectors, by the keyword (BM25) index, or by both fused.
SearchMode = Literal["dense", "keyword", "hybrid"]
#: How a hybrid search fuses its two lists: reciprocal-rank fusion or distribution-based score fusion.
Fusion = Literal["rrf", "dbsf"]
#: The layout feature a keyword index is (see :meth:`CollectionLayout.features`).
SPARSE_FEATURE = "bm25 sparse-vector"


def layout_features(sparse: str | None, quantization: str) -> list[str]:
    """The store features a collection with a keyword index ``sparse`` ("bm25", or None) and
    ``quantization`` needs: what :attr:`BaseStore.features` must hold."""
    out = [f"{sparse} sparse-vector"] if sparse is not None else []
    return out + ([f"{quantization}-quantized"] if quantization not in (None, "none") else [])


@dataclass(frozen=True)
class CollectionLayout:
    """How a collection's vectors are made: what a store records when it creates one.

    Attributes:
        dimension: Vector length.
        vectors: Named vectors and the document instruction each is made with; empty for one
            unnamed vector made with ``document_instruction``.
        query_instruction: Instruction for queries.
        document_instruction: Instruction for documents (the unnamed vector).
        model: The model name or path, where known.
        fingerprint: The model's content fingerprint, where known.
        created: When the collection was created (ISO 8601, UTC), where known.
        distance: The similarity the store ranks by (instructor collections are cosine).
        loading: How the model was loaded: ``max_length`` (the token limit the documents were
            embedded with: every store records it, and a resume with another is refused, see
            :func:`~instructor_core.ingest.store_ops.check_layout`), ``instructor`` (Chroma's
            embedding-function config, to rebuild the encoder).
        sparse: Sparse vectors beside the dense ones: ``"bm25"``, a keyword index of the raw document
            text that the store computes itself (hybrid search); None: dense only.
        sparse_settings: The keyword index's parameters as the store records them (BM25's ``k``,
            ``b``, ``avg_len``, ``language``).
        quantization: How the dense vectors are kept: ``"none"`` (float32), ``"int8"`` (scalar) or
            ``"binary"`` (1 bit per dimension), beside the float vectors a search rescores with;
            stores that cannot keep them refuse the layout (their ``features``).
    """

    dimension: int
    vectors: Mapping[str, str] = field(default_factory=dict)
    query_instruction: str = ""
    document_instruction: str = ""
    model: str | None = None
    fingerprint: str | None = None
    created: str | None = None
    distance: Literal["cosine"] = "cosine"
    loading: Mapping[str, Any] = field(default_factory=dict, compare=False)
    sparse: Literal["bm25"] | None = None
    sparse_settings: Mapping[str, Any] = field(default_factory=dict, compare=False)
    quantization: Quantization = "none"

    def features(self) -> list[str]:
        """The reserved features this layout asks for (``["bm25 sparse-vector"]``, ``["int8-quantized"]``)."""
        return layout_features(self.sparse, self.quantization)

    def to_metadata(self) -> dict[str, Any]:
        """``{"instructor": {...}}``: the layout as collection metadata (the on-disk format)."""
        stored: dict[str, Any] = {
            "model": self.model,
            "dimension": self.dimension,
            "query_instruction": self.query_instruction,
            "document_instruction": self.document_instruction,
            "vectors": dict(self.vectors),
            "fingerprint": self.fingerprint,
            "created": self.created,
            **({"quantization": self.quantization} if self.quantization != "none" else {}),
        }
        if self.max_length is not None:
            stored["max_length"] = self.max_length
        if self.sparse is not None:  # only then: a dense collection's metadata stays as it was
            stored["sparse"] = {"kind": self.sparse, "settings": dict(self.sparse_settings)}
        return {META_KEY: stored}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any] | None) -> CollectionLayout | None:
        """The layout :meth:`to_metadata` wrote, or None where there is none."""
        stored = (metadata or {}).get(META_KEY)
        if not isinstance(stored, Mapping):
            return None
        sparse = stored.get("sparse")
        sparse = sparse if isinstance(sparse, Mapping) and sparse.get("kind") == "bm25" else None
        return cls(
            dimension=int(stored.get("dimension") or 0),
            vectors=dict(stored.get("vectors") or {}),
            query_instruction=str(stored.get("query_instruction") or ""),
            document_instruction=str(stored.get("document_instruction") or ""),
            model=stored.get("model"),
            fingerprint=stored.get("fingerprint"),
            created=stored.get("created"),
            quantization=_quantization(stored.get("quantization")),
            sparse="bm25" if sparse is not None else None,
            sparse_settings=dict((sparse or {}).get("settings") or {}),
            loading=_loading(stored.get("max_length")),
        )

    @property
    def max_length(self) -> int | None:
        """The token limit the documents were embedded with (``loading["max_length"]``); None where
        not recorded (a collection made before it was)."""
        value = self.loading.get("max_length")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def to_info(self, name: str, count: int) -> CollectionInfo:
        """The protocol's :class:`CollectionInfo` for collection ``name``."""
        return CollectionInfo(
            name=name,
            model=self.model,
            query_instruction=self.query_instruction,
            document_instruction=self.document_instruction,
            dimension=self.dimension,
            count=count,
            fingerprint=self.fingerprint,
            created=self.created,
            vectors=dict(self.vectors),
            max_length=self.max_length,
            layout=self,
        )


def _quantization(value: object) -> Quantization:
    """A recorded quantization mode (absent: ``"none"``).

    Raises:
        ValueError: A value that is not one of the modes.
    """
    if value is None:
        return "none"
    if value not in ("none", "int8", "binary"):
        raise InputError(f"quantization {value!r}: expected none, int8 or binary")
    return value


def _loading(max_length: object) -> dict[str, Any]:
    """The ``loading`` of a recorded layout: its ``max_length`` (absent: not recorded).

    Raises:
        ValueError: A value that is not a positive integer.
    """
    if max_length is None:
        return {}
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise InputError(f"max_length {str(max_length)[:40]!r}: expected a positive integer")
    return {"max_length": max_length}
