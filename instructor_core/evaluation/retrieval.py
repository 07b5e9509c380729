"""Retrieval evaluation on a BEIR folder: nDCG@10, Recall@100, MRR@10.

The metrics follow BEIR / MTEB (pytrec_eval's definitions): graded gains ``rel`` with a log2
discount, ideal DCG from the qrels; Recall@k over the relevant documents (score > 0); MRR@k of the
first relevant hit. A document's text is ``(title + " " + text).strip()``, as MTEB joins them.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from instructor_core.errors import InputError

if TYPE_CHECKING:
    from instructor_core.model.encoder import InstructorEncoder

__all__ = ["BeirData", "evaluate_retrieval", "load_beir", "rank_by_cosine", "retrieval_metrics"]


@dataclass(frozen=True)
class BeirData:
    """A BEIR split: the corpus, the queries that have judgements in the split, and the judgements.

    Attributes:
        corpus: Document id -> text (title and body joined with a space).
        queries: Query id -> text, only queries judged in the split.
        qrels: Query id -> {document id: relevance}.
    """

    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
    return rows


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Read a BEIR qrels TSV (header ``query-id corpus-id score``)."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:3]] != ["query-id", "corpus-id", "score"]:
            raise InputError(f"{path}: expected a header 'query-id<TAB>corpus-id<TAB>score', got {header!r}")
        for number, row in enumerate(reader, start=2):
            if len(row) < 3:
                raise InputError(f"{path}:{number}: expected 3 tab-separated fields, got {row!r}")
            qrels.setdefault(row[0], {})[row[1]] = int(float(row[2]))
    return qrels


def load_beir(folder: str | os.PathLike[str], split: str = "test") -> BeirData:
    """Load ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/{split}.tsv`` from a BEIR folder."""
    root = Path(folder)
    for needed in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (root / needed).is_file():
            raise FileNotFoundError(f"{root} is not a BEIR folder: {needed} is missing")
    corpus = {
        str(row["_id"]): (str(row.get("title") or "") + " " + str(row.get("text") or "")).strip()
        for row in _read_jsonl(root / "corpus.jsonl")
    }
    qrels = load_qrels(root / "qrels" / f"{split}.tsv")
    all_queries = {str(row["_id"]): str(row["text"]) for row in _read_jsonl(root / "queries.jsonl")}
    missing = [qid for qid in qrels if qid not in all_queries]
    if missing:
        raise InputError(f"{root}: qrels/{split}.tsv names queries absent from queries.jsonl: {missing[:5]}")
    queries = {qid: all_queries[qid] for qid in qrels}
    return BeirData(corpus=corpus, queries=queries, qrels=qrels)


def rank_by_cosine(
    query_vectors: np.ndarray, doc_vectors: np.ndarray, k: int = 100, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-``k`` by cosine similarity.

    Returns:
        ``(indices, scores)``, each ``(n_queries, min(k, n_docs))``, best first.
    """
    q = np.asarray(query_vectors, dtype=np.float32)
    d = np.asarray(doc_vectors, dtype=np.float32)
    q = q / np.clip(np.linalg.norm(q, axis=1, keepdims=True), 1e-12, None)
    d = d / np.clip(np.linalg.norm(d, axis=1, keepdims=True), 1e-12, None)
    k = min(k, d.shape[0])
    all_idx, all_scores = [], []
    for start in range(0, q.shape[0], chunk):
        sims = q[start : start + chunk] @ d.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top_scores = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        all_idx.append(np.take_along_axis(top, order, axis=1))
        all_scores.append(np.take_along_axis(top_scores, order, axis=1))
    if not all_idx:
        return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32)
    return np.concatenate(all_idx), np.concatenate(all_scores)


def retrieval_metrics(
    rankings: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]
) -> dict[str, float]:
    """nDCG@10, Recall@100 and MRR@10 averaged over the judged queries.

    Args:
        rankings: Query id -> document ids, best first (at least 100 for a full Recall@100).
        qrels: Query id -> {document id: relevance}; a query absent from ``rankings`` scores 0.
    """
    ndcg, recall, mrr = [], [], []
    for qid, judged in qrels.items():
        ranked = list(rankings.get(qid, ()))
        relevant = {doc for doc, rel in judged.items() if rel > 0}
        if not relevant:
            continue
        dcg = sum(judged.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:10]))
        ideal_gains = sorted((rel for rel in judged.values() if rel > 0), reverse=True)[:10]
        idcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal_gains))
        ndcg.append(dcg / idcg if idcg else 0.0)
        recall.append(len(relevant & set(ranked[:100])) / len(relevant))
        first = next((rank for rank, doc in enumerate(ranked[:10]) if doc in relevant), None)
        mrr.append(0.0 if first is None else 1.0 / (first + 1))
    if not ndcg:
        raise InputError("no query in qrels has a relevant document")
    return {
        "ndcg@10": float(np.mean(ndcg)),
        "recall@100": float(np.mean(recall)),
        "mrr@10": float(np.mean(mrr)),
    }


def evaluate_retrieval(
    encoder: InstructorEncoder,
    folder: str | os.PathLike[str],
    split: str = "test",
    *,
    query_instruction: str | None = None,
    document_instruction: str | None = None,
    batch_size: int = 32,
    show_progress: bool = False,
) -> dict[str, float]:
    """Encode a BEIR split's corpus and queries and score brute-force cosine retrieval.

    Instructions default to the encoder's own. Returns the metrics of :func:`retrieval_metrics`
    plus ``queries`` and ``documents`` counts.
    """
    data = load_beir(folder, split)
    doc_ids = list(data.corpus)
    query_ids = list(data.queries)
    doc_vectors = encoder.encode_documents(
        [data.corpus[d] for d in doc_ids],
        document_instruction,
        batch_size=batch_size,
        show_progress=show_progress,
    )
    query_vectors = encoder.encode_queries(
        [data.queries[q] for q in query_ids],
        query_instruction,
        batch_size=batch_size,
        show_progress=show_progress,
    )
    indices, _ = rank_by_cosine(query_vectors, doc_vectors, k=100)
    rankings = {qid: [doc_ids[i] for i in row] for qid, row in zip(query_ids, indices, strict=True)}
    scores = retrieval_metrics(rankings, data.qrels)
    return {**scores, "queries": float(len(query_ids)), "documents": float(len(doc_ids))}
