"""Single-task batches with no text twice, shuffled with a seed.

In-batch negatives are only true negatives if no text of one row appears in another row of the
same batch (two rows with the same positive would otherwise push that positive away from its own
query). Rows are grouped by task, shuffled with ``seed`` and ``epoch``, and packed greedily: a row
that would repeat a text already in the open batch waits for a later batch of its task. The list of
batches is then shuffled across tasks, so the mixture is interleaved but each batch is one task.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from instructor_core.errors import InputError
from instructor_core.training.data import TrainingRow

__all__ = ["task_batches"]


def _pack(indices: list[int], rows: Sequence[TrainingRow], batch_size: int) -> list[list[int]]:
    batches: list[list[int]] = []
    pending = indices
    while pending:
        batch: list[int] = []
        seen: set[str] = set()
        waiting: list[int] = []
        taken = 0
        for index in pending:
            taken += 1
            texts = set(rows[index].texts())
            if texts.isdisjoint(seen):
                batch.append(index)
                seen |= texts
                if len(batch) == batch_size:
                    break
            else:
                waiting.append(index)
        batches.append(batch)
        pending = waiting + pending[taken:]
    return batches


def task_batches(
    rows: Sequence[TrainingRow],
    batch_size: int,
    *,
    seed: int = 0,
    epoch: int = 0,
    drop_last: bool = False,
) -> list[list[int]]:
    """Split row indices into batches: one task per batch, no text repeated within a batch.

    Args:
        rows: The training rows.
        batch_size: Rows per batch (the last batch of a task may be smaller).
        seed: Seed of the shuffle; the same seed and epoch give the same batches.
        epoch: Epoch number, mixed into the seed so every epoch has its own order.
        drop_last: Drop each task's batches smaller than ``batch_size``.

    Returns:
        Lists of indices into ``rows``.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive int, got {batch_size!r}")
    rng = random.Random(f"{seed}:{epoch}")
    by_task: dict[str, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        by_task[row.task].append(index)
    batches: list[list[int]] = []
    for task in sorted(by_task):
        indices = by_task[task]
        rng.shuffle(indices)
        packed = _pack(indices, rows, batch_size)
        batches.extend(b for b in packed if len(b) == batch_size or not drop_last)
    rng.shuffle(batches)
    return batches
