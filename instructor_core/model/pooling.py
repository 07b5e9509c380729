"""Masked pooling over token embeddings that can leave each item's instruction tokens out.

Matches sentence-transformers' ``Pooling`` with ``include_prompt=False``: for each item the first
``prompt_length`` positions (the instruction's tokens, counted from the start and including a
leading special token, excluding the instruction's own trailing special token) are removed from
the pooling mask. Unlike sentence-transformers, the count is per item, so one batch may mix
instructions. Inputs are right- or left-padded (a row's first real token is where its mask starts).
"""

from __future__ import annotations

import torch

from instructor_core.errors import InputError
from instructor_core.model.loading import PoolingMode

__all__ = ["pool", "pooling_mask"]


def _starts(attention_mask: torch.Tensor) -> torch.Tensor:
    """Each row's first real position: 0 when right-padded, the padding's width when left-padded."""
    return attention_mask.to(torch.int32).argmax(dim=1)


def pooling_mask(attention_mask: torch.Tensor, prompt_lengths: torch.Tensor | None) -> torch.Tensor:
    """Return the attention mask with each row's first ``prompt_lengths[i]`` real positions zeroed.

    Args:
        attention_mask: ``(batch, seq)`` of 0/1, right- or left-padded.
        prompt_lengths: ``(batch,)`` integer counts, or None to keep every token.
    """
    if prompt_lengths is None:
        return attention_mask
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    first_kept = _starts(attention_mask) + prompt_lengths.to(attention_mask.device)
    keep = positions.unsqueeze(0) >= first_kept.unsqueeze(1)
    return attention_mask * keep.to(attention_mask.dtype)


def _weighted_mean(token_embeddings: torch.Tensor, attention_mask: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Position-weighted mean (weights 1, 2, ... from each row's first real token), as sentence-transformers."""
    accumulate = torch.float32 if token_embeddings.dtype in (torch.float16, torch.bfloat16) else token_embeddings.dtype
    weights = torch.arange(1, token_embeddings.shape[1] + 1, device=token_embeddings.device, dtype=accumulate)
    weights = weights.view(1, -1, 1) - _starts(attention_mask).view(-1, 1, 1).to(accumulate)
    weighted = mask.unsqueeze(-1).to(accumulate) * weights
    summed = (token_embeddings * weighted).sum(dim=1)
    return (summed / torch.clamp(weighted.sum(dim=1), min=1e-9)).to(token_embeddings.dtype)


def pool(
    token_embeddings: torch.Tensor,
    attention_mask: torch.Tensor,
    mode: PoolingMode,
    prompt_lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pool ``(batch, seq, dim)`` token embeddings into ``(batch, dim)`` sentence embeddings.

    Args:
        token_embeddings: The transformer's last hidden state.
        attention_mask: ``(batch, seq)`` 0/1 mask of real tokens, right- or left-padded.
        mode: "mean", "mean_sqrt_len_tokens" (sum over the square root of the count),
            "weightedmean" (weights 1, 2, ... by position), "cls" (first kept token), "max" or
            "lasttoken" (last kept token).
        prompt_lengths: Per-item instruction token counts to leave out, or None.
    """
    mask = pooling_mask(attention_mask, prompt_lengths)
    if mode in ("mean", "mean_sqrt_len_tokens"):
        accumulate = torch.float32 if token_embeddings.dtype in (torch.float16, torch.bfloat16) else None
        weights = mask.unsqueeze(-1).to(token_embeddings.dtype)
        summed = (token_embeddings * weights).sum(dim=1, dtype=accumulate)
        counts = weights.sum(dim=1, dtype=accumulate).clamp(min=1e-9)
        return (summed / (counts if mode == "mean" else counts.sqrt())).to(token_embeddings.dtype)
    if mode == "weightedmean":
        return _weighted_mean(token_embeddings, attention_mask, mask)
    if mode == "max":
        blocked = mask.unsqueeze(-1) == 0
        return token_embeddings.masked_fill(blocked, float("-inf")).max(dim=1).values
    hidden = token_embeddings.shape[-1]
    if mode == "cls":
        index = mask.to(torch.int32).argmax(dim=1)
    elif mode == "lasttoken":
        seq_len = mask.shape[1]
        values, flipped = mask.flip(1).max(dim=1)
        index = torch.where(values == 0, torch.zeros_like(flipped), seq_len - 1 - flipped)
    else:
        raise InputError(f"unknown pooling mode {mode!r}")
    gather = index.view(-1, 1, 1).expand(-1, 1, hidden)
    if mode == "lasttoken":  # a row with no kept token pools to zeros, as in sentence-transformers
        token_embeddings = token_embeddings * mask.unsqueeze(-1).to(token_embeddings.dtype)
    return torch.gather(token_embeddings, 1, gather).squeeze(1)
