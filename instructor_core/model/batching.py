"""Batching for inference: token-budget batches over length-sorted inputs, and fast padding.

A fixed count of texts per batch wastes work two ways: short texts get small batches (per-call
overhead dominates) and, when lengths vary inside a batch, padding is computed and thrown away.
Sorting by token length and filling each batch up to a budget of *padded* tokens
(``rows * longest row``) keeps every forward pass about the same size and the padding near zero.
Sorting is stable, so equal-length items keep their input order; the caller scatters results back
by index, so output order never depends on the batching.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from instructor_core.errors import InputError

__all__ = ["pad", "pad_right", "padding_waste", "token_budget_batches"]


def token_budget_batches(
    lengths: Sequence[int],
    max_tokens: int,
    min_rows: int | None = None,
    tolerance: float = 0.9,
) -> list[list[int]]:
    """Group item indices into batches whose padded size stays within a token budget.

    Items are taken longest first (stable for ties), so each batch's padded width is its first
    item's length. A batch closes when adding the next item would make ``rows * width`` exceed
    ``max_tokens``. An item longer than the budget gets a batch of its own.

    Args:
        lengths: Token count of each item.
        max_tokens: Budget of padded tokens per batch (``rows * longest``).
        min_rows: With it, a batch that already holds ``min_rows`` rows only grows while the next
            item is at least ``tolerance`` times the batch's width, so large batches of short
            texts stay nearly free of padding.
        tolerance: See ``min_rows``.

    Returns:
        Lists of indices into ``lengths``; every index appears exactly once.

    Raises:
        ValueError: If ``max_tokens`` is not a positive int.
    """
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise InputError(f"max_tokens must be a positive int, got {max_tokens!r}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    width = 0
    for index in order:
        if current:
            too_ragged = min_rows is not None and len(current) >= min_rows and lengths[index] < tolerance * width
            if too_ragged or (len(current) + 1) * width > max_tokens:
                batches.append(current)
                current = []
        if not current:
            width = max(int(lengths[index]), 1)
        current.append(index)
    if current:
        batches.append(current)
    return batches


def padding_waste(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Fraction of computed positions that are padding, for a given batching (0 = none)."""
    real = sum(int(lengths[i]) for batch in batches for i in batch)
    padded = sum(len(batch) * max(int(lengths[i]) for i in batch) for batch in batches if batch)
    return 0.0 if padded == 0 else 1.0 - real / padded


def pad_right(ids: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token id lists into ``(input_ids, attention_mask)`` int64 tensors in one copy.

    Args:
        ids: Token id lists, at least one, none empty.
        pad_id: Id written into padding positions.
    """
    lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
    width = int(lengths.max())
    mask = np.arange(width)[None, :] < lengths[:, None]
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    input_ids[mask] = np.fromiter((t for row in ids for t in row), dtype=np.int64, count=int(lengths.sum()))
    return torch.from_numpy(input_ids), torch.from_numpy(mask.astype(np.int64))


def pad(ids: Sequence[Sequence[int]], pad_id: int, side: str = "right") -> tuple[torch.Tensor, torch.Tensor]:
    """Pad token id lists on ``side`` ("right", or "left" as decoder tokenizers such as Qwen3's ask)."""
    if side == "right":
        return pad_right(ids, pad_id)
    input_ids, mask = pad_right([list(reversed(row)) for row in ids], pad_id)
    return input_ids.flip(1).contiguous(), mask.flip(1).contiguous()
