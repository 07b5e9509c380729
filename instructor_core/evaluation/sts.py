"""Semantic textual similarity: Spearman correlation of cosine similarity with gold scores.

Reads the STS Benchmark's tab-separated files (genre, file, year, id, score, sentence1, sentence2,
and sometimes extra source columns), as MTEB's STSBenchmark does with the same pairs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from instructor_core.errors import InputError

if TYPE_CHECKING:
    from instructor_core.model.encoder import InstructorEncoder

__all__ = ["evaluate_sts", "load_sts", "spearman"]


def load_sts(path: str | os.PathLike[str]) -> list[tuple[str, str, float]]:
    """Read an STS Benchmark file into ``(sentence1, sentence2, gold score)`` triples."""
    triples = []
    with Path(path).open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            line = line.rstrip("\n")
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) < 7:
                raise InputError(f"{path}:{number}: expected at least 7 tab-separated fields, got {len(fields)}")
            try:
                score = float(fields[4])
            except ValueError as exc:
                raise InputError(f"{path}:{number}: score {fields[4]!r} is not a number") from exc
            triples.append((fields[5], fields[6], score))
    return triples


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks with ties (as scipy.stats.rankdata)."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation with average ranks for ties."""
    ra, rb = _ranks(np.asarray(a, dtype=np.float64)), _ranks(np.asarray(b, dtype=np.float64))
    return float(np.corrcoef(ra, rb)[0, 1])


def evaluate_sts(
    encoder: InstructorEncoder,
    path: str | os.PathLike[str],
    *,
    instruction: str | None = None,
    batch_size: int = 32,
    show_progress: bool = False,
) -> dict[str, float]:
    """Spearman of cosine similarity against gold scores; sentences use the document instruction
    (or ``instruction``). Returns ``{"spearman": ..., "pairs": n}``."""
    triples = load_sts(path)
    first = encoder.encode_documents(
        [t[0] for t in triples], instruction, batch_size=batch_size, show_progress=show_progress
    )
    second = encoder.encode_documents(
        [t[1] for t in triples], instruction, batch_size=batch_size, show_progress=show_progress
    )
    first = first / np.clip(np.linalg.norm(first, axis=1, keepdims=True), 1e-12, None)
    second = second / np.clip(np.linalg.norm(second, axis=1, keepdims=True), 1e-12, None)
    cosine = np.sum(first * second, axis=1)
    return {"spearman": spearman(cosine, np.array([t[2] for t in triples])), "pairs": float(len(triples))}
