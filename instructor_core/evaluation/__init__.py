"""Evaluation on real data: retrieval (nDCG@10, Recall@100, MRR@10) and STS (Spearman)."""

from __future__ import annotations

from instructor_core.evaluation.classification import evaluate_classification, load_classification_csv
from instructor_core.evaluation.retrieval import (
    BeirData,
    evaluate_retrieval,
    load_beir,
    load_qrels,
    rank_by_cosine,
    retrieval_metrics,
)
from instructor_core.evaluation.sts import evaluate_sts, load_sts, spearman

__all__ = [
    "BeirData",
    "evaluate_classification",
    "evaluate_retrieval",
    "evaluate_sts",
    "load_beir",
    "load_classification_csv",
    "load_qrels",
    "load_sts",
    "rank_by_cosine",
    "retrieval_metrics",
    "spearman",
]
