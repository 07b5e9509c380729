"""Training rows: (query, positive, hard negatives), each side carrying its instruction.

The JSONL layout is the paper's MEDI layout, one object per line::

    {"query": [instruction, text], "pos": [instruction, text],
     "neg": [[instruction, text], ...], "task": "name"}

``neg`` may be absent, null, a single ``[instruction, text]`` pair or a list of pairs; ``task``
may be absent (the task is then "default"). Instructions may be empty; texts may not.

Readers turn common data sets into rows with the instructions you give:

* :func:`rows_from_beir`: one row per relevant (query, document) pair of a BEIR split.
* :func:`rows_from_sts`: STS pairs with a gold score >= ``min_score`` (default 4.0 of 5) as
  (sentence1, sentence2) positives, the same instruction on both sides; lower-scored pairs are
  dropped, since a 3/5 pair is neither a safe positive nor a safe negative.
* :func:`rows_from_classification`: each text with another text of the same label as positive and
  a text of another label as hard negative (both drawn with a seeded RNG); labels with a single
  text are skipped (no positive exists).
"""

from __future__ import annotations

import json
import os
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instructor_core.errors import InstructorError

__all__ = [
    "DataError",
    "Pair",
    "TrainingRow",
    "read_rows",
    "rows_from_beir",
    "rows_from_classification",
    "rows_from_sts",
    "write_rows",
]

Pair = tuple[str, str]


class DataError(InstructorError, ValueError):
    """A training row that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class TrainingRow:
    """One contrastive example.

    Attributes:
        query: ``(instruction, text)`` of the anchor.
        pos: ``(instruction, text)`` of its positive.
        neg: Hard negatives, ``(instruction, text)`` each; may be empty.
        task: Task name; every training batch is drawn from a single task.
    """

    query: Pair
    pos: Pair
    neg: tuple[Pair, ...] = ()
    task: str = "default"

    def __post_init__(self) -> None:
        problem = _row_problem(self)
        if problem:
            raise DataError(problem)

    def texts(self) -> list[str]:
        """The texts of the row (query, positive, negatives), instructions left out."""
        return [self.query[1], self.pos[1], *(n[1] for n in self.neg)]

    def to_json(self) -> dict[str, Any]:
        """The row as a JSON-ready MEDI object."""
        return {
            "query": list(self.query),
            "pos": list(self.pos),
            "neg": [list(n) for n in self.neg],
            "task": self.task,
        }


def _pair_problem(value: object, what: str) -> str | None:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return f"{what} must be an [instruction, text] pair, got {_short(value)}"
    instruction, text = value
    if not isinstance(instruction, str):
        return f"{what}[0] (the instruction) must be a string, got {type(instruction).__name__}"
    if not isinstance(text, str):
        return f"{what}[1] (the text) must be a string, got {type(text).__name__}"
    if not text.strip():
        return f"{what}[1] (the text) is empty"
    return None


def _row_problem(row: TrainingRow) -> str | None:
    for what, value in (("query", row.query), ("pos", row.pos)):
        problem = _pair_problem(value, what)
        if problem:
            return problem
    for index, value in enumerate(row.neg):
        problem = _pair_problem(value, f"neg[{index}]")
        if problem:
            return problem
        if value[1] == row.pos[1]:
            return f"neg[{index}] has the same text as pos"
    if not isinstance(row.task, str) or not row.task:
        return f"task must be a non-empty string, got {_short(row.task)}"
    return None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _row_from_object(obj: object) -> TrainingRow:
    if not isinstance(obj, dict):
        raise DataError(f"expected a JSON object, got {type(obj).__name__}")
    for key in ("query", "pos"):
        if key not in obj:
            raise DataError(f"missing field {key!r}")
    neg_raw = obj.get("neg")
    if neg_raw is None:
        neg_raw = []
    if not isinstance(neg_raw, list):
        raise DataError(f"neg must be a list of [instruction, text] pairs, got {_short(neg_raw)}")
    if len(neg_raw) == 2 and all(isinstance(x, str) for x in neg_raw):
        neg_raw = [neg_raw]  # a single pair
    for what, value in [("query", obj["query"]), ("pos", obj["pos"])] + [
        (f"neg[{i}]", v) for i, v in enumerate(neg_raw)
    ]:
        problem = _pair_problem(value, what)
        if problem:
            raise DataError(problem)
    return TrainingRow(
        query=(obj["query"][0], obj["query"][1]),
        pos=(obj["pos"][0], obj["pos"][1]),
        neg=tuple((n[0], n[1]) for n in neg_raw),
        task=obj.get("task", "default"),
    )


def read_rows(path: str | os.PathLike[str]) -> list[TrainingRow]:
    """Read MEDI-layout JSONL rows; blank lines are skipped.

    Raises:
        DataError: On the first bad line, naming the file and the 1-based line number.
    """
    path = Path(path)
    rows: list[TrainingRow] = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rows.append(_row_from_object(json.loads(line)))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
            except DataError as exc:
                raise DataError(f"{path}:{number}: {exc}") from exc
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def write_rows(rows: Iterable[TrainingRow], path: str | os.PathLike[str]) -> int:
    """Write rows as JSONL; returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row.to_json(), ensure_ascii=False) + "\n")
            count += 1
    return count


def rows_from_beir(
    folder: str | os.PathLike[str],
    split: str = "train",
    *,
    query_instruction: str,
    document_instruction: str,
    task: str | None = None,
) -> list[TrainingRow]:
    """One row per relevant (query, document) pair (qrels score > 0) of a BEIR split.

    Negatives are left empty; fill them with :func:`~instructor_core.training.mine_hard_negatives`.
    The task name defaults to the folder's name.
    """
    from instructor_core.evaluation import load_beir

    data = load_beir(folder, split=split)
    name = task or Path(folder).name
    rows = []
    for qid in sorted(data.qrels):
        if qid not in data.queries:
            continue
        for doc_id, score in sorted(data.qrels[qid].items()):
            if score > 0 and doc_id in data.corpus and data.corpus[doc_id].strip():
                rows.append(
                    TrainingRow(
                        query=(query_instruction, data.queries[qid]),
                        pos=(document_instruction, data.corpus[doc_id]),
                        task=name,
                    )
                )
    return rows


def rows_from_sts(
    path: str | os.PathLike[str], *, instruction: str, min_score: float = 4.0, task: str = "sts"
) -> list[TrainingRow]:
    """Rows from an STS file: pairs scored >= ``min_score`` become (sentence1, sentence2) positives."""
    from instructor_core.evaluation import load_sts

    rows = []
    for first, second, gold in load_sts(path):
        if gold >= min_score and first.strip() and second.strip() and first != second:
            rows.append(TrainingRow(query=(instruction, first), pos=(instruction, second), task=task))
    return rows


def rows_from_classification(
    examples: str | os.PathLike[str] | Sequence[tuple[str, str]],
    *,
    instruction: str,
    task: str = "classification",
    seed: int = 0,
) -> list[TrainingRow]:
    """Rows from labelled texts: positive of the same label, hard negative of another label.

    Args:
        examples: A CSV path (``text,category`` header, as Banking77) or ``[(text, label), ...]``.
        instruction: The instruction on every side.
        task: Task name of the rows.
        seed: Seed of the draws, so the rows are reproducible.
    """
    if isinstance(examples, (str, os.PathLike)):
        from instructor_core.evaluation.classification import load_classification_csv

        examples = load_classification_csv(examples)
    by_label: dict[str, list[str]] = defaultdict(list)
    for text, label in examples:
        if text.strip():
            by_label[label].append(text)
    labels = sorted(by_label)
    if len(labels) < 2:
        raise DataError("classification rows need at least two labels")
    rng = random.Random(seed)
    rows = []
    for label in labels:
        texts = by_label[label]
        if len(set(texts)) < 2:
            continue
        for text in texts:
            positive = text
            while positive == text:
                positive = rng.choice(texts)
            other = rng.choice([name for name in labels if name != label])
            negative = rng.choice(by_label[other])
            rows.append(
                TrainingRow(
                    query=(instruction, text),
                    pos=(instruction, positive),
                    neg=((instruction, negative),),
                    task=task,
                )
            )
    return rows
