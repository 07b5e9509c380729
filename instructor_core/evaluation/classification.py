"""Classification accuracy of frozen embeddings: logistic regression on the vectors (MTEB-style).

The encoder embeds the train and test texts with one instruction; a scikit-learn logistic
regression is fitted on the train vectors and scored on the test vectors. The encoder is never
updated. Needs scikit-learn (the ``train`` extra: ``pip install -e ".[train]"`` from a checkout).
"""

from __future__ import annotations

import csv
import os
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from instructor_core.errors import InputError, install_hint

if TYPE_CHECKING:
    from instructor_core.model.encoder import InstructorEncoder

__all__ = ["evaluate_classification", "load_classification_csv"]


def load_classification_csv(
    path: str | os.PathLike[str], *, text_column: str = "text", label_column: str = "category"
) -> list[tuple[str, str]]:
    """Read a labelled CSV with a header (Banking77: ``text,category``) as ``[(text, label), ...]``.

    Raises:
        ValueError: If a column is missing, or a row has an empty text or label (naming the line).
    """
    path = Path(path)
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        for column in (text_column, label_column):
            if column not in header:
                raise InputError(f"{path}: no column {column!r} in the header {header}")
        rows = []
        for row in reader:
            text, label = row.get(text_column), row.get(label_column)
            if not text or not text.strip() or not label:
                raise InputError(f"{path}:{reader.line_num}: empty text or label")
            rows.append((text, label))
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows


def _subsample(rows: Sequence[tuple[str, str]], per_label: int, seed: int) -> list[tuple[str, str]]:
    by_label: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in rows:
        by_label[row[1]].append(row)
    rng = random.Random(seed)
    out = []
    for label in sorted(by_label):
        items = by_label[label]
        out.extend(items if len(items) <= per_label else rng.sample(items, per_label))
    return out


def evaluate_classification(
    encoder: InstructorEncoder,
    train: str | os.PathLike[str] | Sequence[tuple[str, str]],
    test: str | os.PathLike[str] | Sequence[tuple[str, str]],
    *,
    instruction: str | None = None,
    max_per_label: int | None = None,
    max_iter: int = 1000,
    seed: int = 0,
    batch_size: int = 32,
    show_progress: bool = False,
) -> dict[str, float]:
    """Accuracy and macro-F1 of a logistic regression on frozen vectors.

    Args:
        encoder: The encoder to evaluate (frozen).
        train: Train CSV path or ``[(text, label), ...]``.
        test: Test CSV path or ``[(text, label), ...]``.
        instruction: Instruction for every text; None takes the encoder's query instruction.
        max_per_label: Keep at most this many train texts per label (seeded draw); None keeps all.
        max_iter: Iterations of the lbfgs solver.
        seed: Seed of the subsample and the solver.
        batch_size: Texts per forward pass.
        show_progress: Show progress bars while encoding.

    Returns:
        ``{"accuracy", "f1_macro", "train", "test"}`` (the last two are counts).
    """
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import accuracy_score, f1_score
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"classification evaluation needs scikit-learn: {install_hint('train')}") from exc
    train_rows = load_classification_csv(train) if isinstance(train, (str, os.PathLike)) else list(train)
    test_rows = load_classification_csv(test) if isinstance(test, (str, os.PathLike)) else list(test)
    if max_per_label is not None:
        train_rows = _subsample(train_rows, max_per_label, seed)
    if len({label for _, label in train_rows}) < 2:
        raise InputError("classification needs at least two labels in the train set")
    x_train = encoder.encode_queries(
        [t for t, _ in train_rows], instruction, batch_size=batch_size, show_progress=show_progress
    )
    x_test = encoder.encode_queries(
        [t for t, _ in test_rows], instruction, batch_size=batch_size, show_progress=show_progress
    )
    model = LogisticRegression(max_iter=max_iter, random_state=seed)
    model.fit(x_train, [label for _, label in train_rows])
    predicted = model.predict(x_test)
    gold = [label for _, label in test_rows]
    return {
        "accuracy": float(accuracy_score(gold, predicted)),
        "f1_macro": float(f1_score(gold, predicted, average="macro")),
        "train": float(len(train_rows)),
        "test": float(len(test_rows)),
    }
