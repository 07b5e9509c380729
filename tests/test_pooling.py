"""``instructor_core.model.pooling`` against a naive, loop-based reference: each row pooled token by
token from its own mask, over random batches padded on the right (encoders) and on the left
(Qwen3-style decoders), with unequal lengths and a different instruction length per row. The
vectorised code must give the same vectors in every pooling mode."""

from __future__ import annotations

import math

import pytest
import torch

from instructor_core.model.pooling import pool, pooling_mask

MODES = ("mean", "mean_sqrt_len_tokens", "weightedmean", "max", "cls", "lasttoken")
BATCHES = 40  # random batches per mode and padding side


def _reference_row(tokens: torch.Tensor, mask: list[int], prompt_length: int, mode: str) -> torch.Tensor:
    """One row pooled by hand: its real positions are where ``mask`` is 1 (a contiguous run); the
    first ``prompt_length`` of them are the instruction's and are left out; weighted mean weighs
    the n-th real token (from 1) by n."""
    real = [p for p, m in enumerate(mask) if m]
    start = real[0]
    kept = [p for p in real if p >= start + prompt_length]
    assert kept, "every row keeps at least one token here"
    if mode == "cls":
        return tokens[kept[0]].clone()
    if mode == "lasttoken":
        return tokens[kept[-1]].clone()
    if mode == "max":
        out = tokens[kept[0]].clone()
        for p in kept[1:]:
            out = torch.maximum(out, tokens[p])
        return out
    total = torch.zeros(tokens.shape[1], dtype=tokens.dtype)
    weight_sum = 0.0
    for p in kept:
        weight = float(p - start + 1) if mode == "weightedmean" else 1.0
        total += weight * tokens[p]
        weight_sum += weight
    if mode == "mean_sqrt_len_tokens":
        return total / math.sqrt(len(kept))
    return total / weight_sum


def _random_batch(generator: torch.Generator, side: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(tokens, attention_mask, prompt_lengths)``: 2-7 rows of unequal lengths, padded on ``side``,
    each with an instruction of 0 .. length - 1 tokens."""
    rows = int(torch.randint(2, 8, (1,), generator=generator))
    lengths = torch.randint(1, 13, (rows,), generator=generator)
    lengths[0] = 12  # one row fills the batch, as a tokenizer pads to the longest
    seq, hidden = int(lengths.max()), 5
    mask = torch.zeros(rows, seq, dtype=torch.int64)
    for i, n in enumerate(lengths.tolist()):
        if side == "right":
            mask[i, :n] = 1
        else:
            mask[i, seq - n :] = 1
    prompts = torch.stack([torch.randint(0, n, (1,), generator=generator)[0] for n in lengths.tolist()])
    tokens = torch.randn(rows, seq, hidden, generator=generator, dtype=torch.float64)
    return tokens, mask, prompts


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("mode", MODES)
def test_pool_equals_a_naive_loop_over_each_rows_kept_tokens(mode, side):
    generator = torch.Generator().manual_seed(2 * MODES.index(mode) + (side == "left"))
    unequal_prompts = 0
    for _ in range(BATCHES):
        tokens, mask, prompts = _random_batch(generator, side)
        got = pool(tokens, mask, mode, prompts)
        expected = torch.stack([_reference_row(tokens[i], mask[i].tolist(), int(prompts[i]), mode)
                                for i in range(tokens.shape[0])])  # fmt: skip
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10, msg=f"{mode}, {side}-padded")
        unequal_prompts += len(set(prompts.tolist())) > 1
        # float32 too (the dtype models run in), to float32 precision
        got32 = pool(tokens.float(), mask, mode, prompts)
        torch.testing.assert_close(got32, expected.float(), rtol=1e-5, atol=1e-5)
    assert unequal_prompts >= BATCHES // 2  # the batches mix instruction lengths


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("mode", MODES)
def test_no_prompt_lengths_pools_every_real_token(mode, side):
    generator = torch.Generator().manual_seed(7)
    for _ in range(10):
        tokens, mask, prompts = _random_batch(generator, side)
        expected = torch.stack([_reference_row(tokens[i], mask[i].tolist(), 0, mode) for i in range(tokens.shape[0])])
        torch.testing.assert_close(pool(tokens, mask, mode, None), expected, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(pool(tokens, mask, mode, torch.zeros_like(prompts)), expected)


def test_pooling_mask_drops_each_rows_first_prompt_tokens_counted_from_its_first_real_token():
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 1, 1]])
    kept = pooling_mask(mask, torch.tensor([1, 2, 1]))
    assert kept.tolist() == [[0, 1, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 1]]
    assert pooling_mask(mask, None) is mask
