"""Batching: one task per batch, no text twice in a batch, reproducible with a seed."""

from __future__ import annotations

from collections import Counter

import pytest

from instructor_core.training import TrainingRow, task_batches


def _rows() -> list[TrainingRow]:
    rows = []
    for i in range(60):  # retrieval: positives shared by several queries
        rows.append(TrainingRow(("q: ", f"query {i}"), ("d: ", f"doc {i % 7}"), (("d: ", f"doc x{i % 5}"),), "retr"))
    for i in range(45):  # sts: some sentences repeat across rows
        rows.append(TrainingRow(("s: ", f"sent {i}"), ("s: ", f"sent {i + 1}"), task="sts"))
    for i in range(30):
        rows.append(TrainingRow(("c: ", f"text {i}"), ("c: ", f"text {(i + 3) % 30}"), task="cls"))
    return rows


def test_batches_are_single_task_without_duplicate_texts():
    rows = _rows()
    batches = task_batches(rows, 8, seed=3)
    assert sorted(i for b in batches for i in b) == list(range(len(rows)))  # every row, once
    for batch in batches:
        assert len({rows[i].task for i in batch}) == 1
        texts = Counter(t for i in batch for t in rows[i].texts())
        assert max(texts.values()) == 1, texts.most_common(2)
        assert 1 <= len(batch) <= 8
    # the mixture is interleaved, not task after task
    tasks = [rows[b[0]].task for b in batches]
    assert tasks != sorted(tasks, key=["cls", "retr", "sts"].index)


def test_batches_are_reproducible_and_change_with_seed_and_epoch():
    rows = _rows()
    first = task_batches(rows, 8, seed=1, epoch=0)
    assert first == task_batches(rows, 8, seed=1, epoch=0)
    assert first != task_batches(rows, 8, seed=2, epoch=0)
    assert first != task_batches(rows, 8, seed=1, epoch=1)


def test_drop_last_keeps_only_full_batches():
    rows = _rows()
    assert all(len(b) == 8 for b in task_batches(rows, 8, seed=0, drop_last=True))


def test_batch_size_must_be_positive():
    with pytest.raises(ValueError, match="batch_size"):
        task_batches(_rows(), 0)
