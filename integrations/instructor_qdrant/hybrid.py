"""Keyword (BM25) and hybrid search in this package's own Qdrant stores, Edge and server alike.

A collection made with ``CollectionLayout.sparse = "bm25"`` (``instructor ingest --hybrid``,
``store_ops.ingest(..., hybrid=True)``) holds, beside each dense vector, a sparse vector named
:data:`SPARSE_NAME` with the IDF modifier: BM25 term weights of the document's raw text, computed
where the store writes (the sink), by :class:`instructor_qdrant.bm25.Bm25` (Qdrant's own BM25, so an
Edge shard and a server collection hold the same vectors). The instruction never reaches it.

A search ranks by the dense vector (``mode="dense"``), by the sparse one (``"keyword"``, the raw
query text) or by both, fused by Qdrant (``"hybrid"``: a dense and a sparse prefetch of ``k`` each,
then reciprocal-rank fusion, ``1 / (rank + 2)`` with ranks from 0, or distribution-based score
fusion). Filters apply to both prefetches; on a quantized collection the dense prefetch is rescored on
the float vectors with the same oversampling as a dense search (:mod:`instructor_qdrant.quantization`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from instructor_core.errors import InputError
from instructor_core.ingest.records import Record, point_id
from instructor_core.ingest.stores import CollectionLayout, Hit, NoKeywordTermsWarning, hit_from_payload, payload_of
from instructor_core.messages import short_repr

from .bm25 import Bm25, Bm25Settings, SparseVector
from .quantization import edge_search_params

__all__ = [
    "RRF_K",
    "SPARSE_NAME",
    "HybridEdgeSink",
    "HybridServerSink",
    "bm25_for",
    "check_keyword_index",
    "edge_sparse_config",
    "query_edge",
    "query_server",
    "server_sparse_config",
    "sparse_layout",
]

#: The sparse vector's name in a collection with a keyword index.
SPARSE_NAME = "bm25"
#: Qdrant's reciprocal-rank-fusion constant: a hit at rank r (from 0) of a list adds ``1 / (r + RRF_K)``.
RRF_K = 2


def _query_terms(bm25: Bm25, text: str) -> SparseVector:
    """The query's BM25 terms; none left (stop words only) is said, as a :class:`NoKeywordTermsWarning`."""
    vector = bm25.embed_query(text)
    if not len(vector[0]):
        warnings.warn(NoKeywordTermsWarning(text), stacklevel=3)
    return vector


def sparse_layout(layout: CollectionLayout) -> CollectionLayout:
    """``layout`` with the BM25 settings this store uses recorded (where it asks for a keyword index)."""
    from dataclasses import replace

    if layout.sparse is None or layout.sparse_settings:
        return layout
    if SPARSE_NAME in layout.vectors:
        raise InputError(f"a collection with a keyword index cannot have a named vector {SPARSE_NAME!r}")
    return replace(layout, sparse_settings=Bm25Settings().as_dict())


def _settings(layout: CollectionLayout) -> Bm25Settings:
    known = {k: v for k, v in dict(layout.sparse_settings).items() if k in ("k", "b", "avg_len", "language")}
    return Bm25Settings(**known)


#: Each number BM25 takes: its test, and what the message says it should be.
_NUMBER_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "k": (lambda v: v >= 0, "a number from 0 up"),
    "b": (lambda v: 0 <= v <= 1, "a number from 0 to 1"),
    "avg_len": (lambda v: v > 0, "a number above 0"),
}


def check_keyword_index(layout: CollectionLayout) -> None:
    """Check the BM25 settings a collection's layout records (a store file or metadata someone may have
    edited), before any of them reaches the BM25 engine.

    Raises:
        InputError: One line naming the field and the value: ``keyword index setting language 'klingon':
            not a language Qdrant's BM25 knows``. The caller adds the collection.
    """
    if layout.sparse is None:
        return
    settings = dict(layout.sparse_settings)
    for key, (rule, wanted) in _NUMBER_RULES.items():
        if key not in settings:
            continue
        value = settings[key]
        number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not number:
            raise InputError(f"keyword index setting {key} {short_repr(value)}: expected a finite number ({wanted})")
        if not rule(value):
            raise InputError(f"keyword index setting {key} {short_repr(value)}: expected {wanted}")
    language = settings.get("language", Bm25Settings.language)
    if not isinstance(language, str):
        raise InputError(f"keyword index setting language {short_repr(language)}: expected a language name")
    try:
        bm25_for(layout)
    except ValueError as exc:  # the engine's own refusal: a language it has no stemmer or stopwords for
        raise InputError(
            f"keyword index setting language {short_repr(language)}: not a language Qdrant's BM25 knows ({exc})"
        ) from None


@lru_cache(maxsize=8)
def _bm25(settings: Bm25Settings) -> Bm25:
    return Bm25(settings)


def bm25_for(layout: CollectionLayout) -> Bm25:
    """The BM25 embedder with the settings the collection records."""
    return _bm25(_settings(layout))


def _with_sparse(dense: Any, sparse: Any) -> dict[str, Any]:
    """A point's vectors: the dense one (unnamed: ``""``) or named ones, and the sparse one."""
    out = {key: _plain(v) for key, v in dense.items()} if isinstance(dense, Mapping) else {"": _plain(dense)}
    out[SPARSE_NAME] = sparse
    return out


def _plain(vector: Any) -> list[float]:
    return vector.tolist() if hasattr(vector, "tolist") else list(vector)


# ---------------------------------------------------------------------------------------------- Edge
def edge_sparse_config(edge: Any) -> dict[str, Any]:
    """The Edge shard's sparse vectors: BM25 with the IDF modifier."""
    return {SPARSE_NAME: edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf)}


class _HybridSink:
    """What both stores' hybrid writers share: the plain sink they wrap (its rules, overlap, batch
    limit, transport errors and ``finish``) and the BM25 vectors of a batch's raw texts."""

    def __init__(self, sink: Any, layout: CollectionLayout) -> None:
        self.sink, self.bm25 = sink, bm25_for(layout)
        self.rules, self.overlap, self.max_batch_size = sink.rules, sink.overlap, sink.max_batch_size

    def _sparse(self, records: Sequence[Record]) -> list[SparseVector]:
        return self.bm25.embed_documents([r.text for r in records])

    def is_transport_error(self, exc: BaseException) -> bool:
        """The plain sink's judgement."""
        return bool(self.sink.is_transport_error(exc))

    def stored_hashes(self, ids: Sequence[str]) -> dict[str, str]:
        """The plain sink's stored content hashes (the sparse vector follows the text, which the hash covers)."""
        return dict(self.sink.stored_hashes(ids))

    def finish(self) -> None:
        """The plain sink's ``finish`` after the last write (a quantized shard's optimize), if it has one."""
        finish = getattr(self.sink, "finish", None)
        if finish is not None:
            finish()


class HybridEdgeSink(_HybridSink):
    """An Edge shard's writer that adds each record's BM25 sparse vector (of its raw text).

    Args:
        sink: The shard's plain sink (:class:`instructor_qdrant.edge.EdgeSink`).
        layout: The collection's layout (its BM25 settings).
    """

    def write(self, records: Sequence[Record], vectors: Sequence[Any]) -> None:
        """Upsert the batch's points with their dense and sparse vectors (one update)."""
        import qdrant_edge as edge

        sparse = self._sparse(records)
        points = [
            edge.Point(
                point_id(r.id),
                _with_sparse(v, edge.SparseVector(*s)),
                payload_of(r),
            )
            for r, v, s in zip(records, vectors, sparse, strict=True)
        ]
        self.sink.shard.update(edge.UpdateOperation.upsert_points(points))


def _edge_fusion(edge: Any, fusion: str) -> Any:
    return edge.Fusion.Rrf(RRF_K) if fusion == "rrf" else edge.Fusion.Dbsf()


def query_edge(
    shard: Any,
    layout: CollectionLayout,
    vectors: list[list[float]],
    texts: list[str],
    *,
    k: int,
    where: Any,
    vector: str | None,
    mode: str,
    fusion: str,
) -> list[list[Hit]]:
    """Keyword or hybrid hits from an Edge shard, one list per query text."""
    import qdrant_edge as edge

    bm25, out = bm25_for(layout), []
    params = edge_search_params(edge, layout.quantization)  # the dense prefetch rescored, as a dense search is
    for i, text in enumerate(texts):
        sparse = edge.Query.Nearest(edge.SparseVector(*_query_terms(bm25, text)), using=SPARSE_NAME)
        if mode == "keyword":
            request = edge.QueryRequest(limit=k, query=sparse, filter=where, with_payload=True)
        else:
            dense = edge.Query.Nearest(vectors[i], using=vector)
            prefetches = [
                edge.Prefetch(limit=k, query=dense, filter=where, params=params),
                edge.Prefetch(limit=k, query=sparse, filter=where),
            ]
            request = edge.QueryRequest(
                limit=k, prefetches=prefetches, query=_edge_fusion(edge, fusion), filter=where, with_payload=True
            )
        out.append([hit_from_payload(p.payload, p.score, p.id) for p in shard.query(request)])
    return out


# ---------------------------------------------------------------------------------------------- server
def server_sparse_config() -> dict[str, Any]:
    """A server collection's sparse vectors: BM25 with the IDF modifier."""
    from qdrant_client import models

    return {SPARSE_NAME: models.SparseVectorParams(modifier=models.Modifier.IDF)}


class HybridServerSink(_HybridSink):
    """A ``QdrantSink`` that adds each record's BM25 sparse vector (of its raw text).

    Args:
        sink: The collection's plain sink (:class:`instructor_qdrant.points.QdrantSink`).
        layout: The collection's layout (its BM25 settings).
    """

    def write(self, records: Sequence[Record], vectors: Sequence[Any]) -> None:
        """Upsert the batch's points with their dense and sparse vectors."""
        from qdrant_client import models

        sparse = self._sparse(records)
        merged = [
            _with_sparse(v, models.SparseVector(indices=s[0], values=s[1]))
            for v, s in zip(vectors, sparse, strict=True)
        ]
        self.sink.write(records, merged)


def query_server(
    client: Any,
    name: str,
    layout: CollectionLayout,
    vectors: list[list[float]],
    texts: list[str],
    *,
    k: int,
    filters: Mapping[str, Any] | None,
    vector: str | None,
    mode: str,
    fusion: str,
) -> list[list[Hit]]:
    """Keyword or hybrid hits from a Qdrant server (or qdrant-client's local mode), one list per text."""
    from qdrant_client import models

    from .points import build_filter, search_params

    bm25, where, out = bm25_for(layout), build_filter(filters), []
    params = search_params(client, layout)  # the dense prefetch rescored, as a dense search is (None: local mode)
    for i, text in enumerate(texts):
        indices, values = _query_terms(bm25, text)
        sparse = models.SparseVector(indices=indices, values=values)
        if mode == "keyword":
            result = client.query_points(
                name, query=sparse, using=SPARSE_NAME, limit=k, query_filter=where, with_payload=True
            )
        else:
            prefetch = [
                models.Prefetch(query=vectors[i], using=vector, limit=k, filter=where, params=params),
                models.Prefetch(query=sparse, using=SPARSE_NAME, limit=k, filter=where),
            ]
            method = models.Fusion.RRF if fusion == "rrf" else models.Fusion.DBSF
            result = client.query_points(
                name, prefetch=prefetch, query=models.FusionQuery(fusion=method), limit=k, query_filter=where,
                with_payload=True,
            )  # fmt: skip
        out.append([hit_from_payload(p.payload, p.score, p.id) for p in result.points])
    return out
