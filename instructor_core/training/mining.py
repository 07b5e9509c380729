"""Hard-negative mining with any encoder.

For each distinct query, the corpus is ranked by cosine similarity; the documents at ranks
``[start, end)`` (0-based, counted over the whole ranking, known positives included) that are not
known positives of that query are its hard-negative candidates, and the first ``num_negatives``
of them are taken. Skipping the top ``start`` ranks leaves out the likeliest false negatives
(relevant documents the qrels do not list), as in the INSTRUCTOR / E5 / GTE recipes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

import torch

from instructor_core.errors import InputError
from instructor_core.model.encoder import InstructorEncoder
from instructor_core.training.data import DataError, TrainingRow

__all__ = ["mine_hard_negatives"]


def mine_hard_negatives(
    encoder: InstructorEncoder,
    rows: Sequence[TrainingRow],
    corpus: Sequence[str] | None = None,
    *,
    document_instruction: str | None = None,
    start: int = 10,
    end: int = 50,
    num_negatives: int = 1,
    rank_with_instructions: bool = True,
    batch_size: int = 32,
    show_progress: bool = False,
) -> list[TrainingRow]:
    """Return ``rows`` with hard negatives mined from ``corpus`` (existing negatives are kept).

    Every row that shares a query (same instruction and text) shares the same known positives:
    the ``pos`` texts of all of them are never taken as negatives.

    Args:
        encoder: Any encoder; its vectors rank the corpus.
        rows: Training rows, typically with no negatives yet.
        corpus: Candidate documents; None takes the distinct positive texts of ``rows``.
        document_instruction: Instruction for the corpus documents (and for the negatives
            written into the rows); None takes the first row's positive instruction.
        start: First rank (0-based) that may give a negative.
        end: Rank after the last that may give a negative.
        num_negatives: Negatives to add per row, at most.
        rank_with_instructions: Encode queries and corpus with their instructions; False ranks the
            bare texts (for a base model trained without instructions), while the rows still get
            ``document_instruction`` on their negatives.
        batch_size: Texts per forward pass while encoding.
        show_progress: Show progress bars.
    """
    if not rows:
        return []
    if not 0 <= start < end:
        raise InputError(f"need 0 <= start < end, got start={start}, end={end}")
    if num_negatives < 1:
        raise InputError(f"num_negatives must be >= 1, got {num_negatives}")
    instruction = rows[0].pos[0] if document_instruction is None else document_instruction
    documents = list(dict.fromkeys(r.pos[1] for r in rows)) if corpus is None else list(corpus)
    if not documents:
        raise DataError("the corpus is empty")
    positives: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in rows:
        positives[row.query].add(row.pos[1])
    queries = list(positives)
    doc_pairs = [(instruction if rank_with_instructions else "", d) for d in documents]
    query_pairs = [(q[0] if rank_with_instructions else "", q[1]) for q in queries]
    doc_vectors = torch.from_numpy(encoder.encode(doc_pairs, batch_size=batch_size, show_progress=show_progress))
    query_vectors = torch.from_numpy(encoder.encode(query_pairs, batch_size=batch_size, show_progress=show_progress))
    depth = min(end, len(documents))
    mined: dict[tuple[str, str], list[str]] = {}
    for begin in range(0, len(queries), 256):
        scores = query_vectors[begin : begin + 256] @ doc_vectors.T
        top = torch.topk(scores, depth, dim=1).indices.numpy()
        for offset, ranked in enumerate(top):
            query = queries[begin + offset]
            known = positives[query]
            picked = []
            for index in ranked[start:depth]:
                text = documents[int(index)]
                if text not in known and text != query[1] and text not in picked:
                    picked.append(text)
                if len(picked) == num_negatives:
                    break
            mined[query] = picked
    out = []
    for row in rows:
        have = {n[1] for n in row.neg}
        extra = tuple((instruction, t) for t in mined[row.query] if t not in have)
        out.append(replace(row, neg=row.neg + extra))
    return out
