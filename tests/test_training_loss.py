"""InfoNCE loss: hand-computed values, and gradients that never reach instruction tokens."""

from __future__ import annotations

import math

import pytest
import torch

from instructor_core.model.pooling import pool
from instructor_core.training import InfoNCELoss, TrainingRow, contrastive_step


def _hand_infonce(q, p, n, t):
    """Plain-python InfoNCE over cosine similarities."""

    def cos(a, b):
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        return dot / math.sqrt(sum(x * x for x in a)) / math.sqrt(sum(y * y for y in b))

    candidates = p + n
    total = 0.0
    for i, query in enumerate(q):
        logits = [cos(query, c) / t for c in candidates]
        total += -(logits[i] - math.log(sum(math.exp(v) for v in logits)))
    return total / len(q)


Q = [[1.0, 0.0, 0.0], [0.0, 2.0, 1.0], [1.0, 1.0, 1.0]]
P = [[0.9, 0.1, 0.0], [0.0, 1.0, 1.0], [0.5, -1.0, 2.0]]
N = [[0.0, 0.0, 1.0], [1.0, -1.0, 0.0]]


def test_infonce_matches_hand_computation_3x3():
    loss = InfoNCELoss(temperature=0.05)(torch.tensor(Q), torch.tensor(P))
    assert loss.item() == pytest.approx(_hand_infonce(Q, P, [], 0.05), rel=1e-5)


def test_infonce_with_hard_negatives_and_temperature():
    loss = InfoNCELoss(temperature=0.5)(torch.tensor(Q), torch.tensor(P), torch.tensor(N))
    assert loss.item() == pytest.approx(_hand_infonce(Q, P, N, 0.5), rel=1e-5)
    # a negative raises the loss: it adds a candidate to every softmax
    assert loss.item() > InfoNCELoss(temperature=0.5)(torch.tensor(Q), torch.tensor(P)).item()


def test_symmetric_term_is_the_mean_of_both_directions():
    forward = _hand_infonce(Q, P, [], 0.1)
    backward = _hand_infonce(P, Q, [], 0.1)
    loss = InfoNCELoss(temperature=0.1, symmetric=True)(torch.tensor(Q), torch.tensor(P))
    assert loss.item() == pytest.approx((forward + backward) / 2, rel=1e-5)


def test_temperature_must_be_positive():
    with pytest.raises(ValueError, match="temperature"):
        InfoNCELoss(temperature=0.0)


def test_pool_gives_no_gradient_to_prompt_positions():
    tokens = torch.randn(2, 6, 4, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]])
    pooled = pool(tokens, mask, "mean", torch.tensor([2, 3]))
    pooled.pow(2).sum().backward()
    grad = tokens.grad.abs().sum(-1)
    assert grad[0, :2].sum() == 0 and grad[1, :3].sum() == 0  # instruction tokens
    assert grad[0, 5] == 0  # padding
    assert (grad[0, 2:5] > 0).all() and (grad[1, 3:] > 0).all()  # text tokens


def test_training_step_gives_no_pooling_gradient_to_instruction_tokens(tiny_t5_encoder):
    encoder = tiny_t5_encoder
    assert encoder.spec.include_prompt is False
    passes = []

    def hook(_module, _args, kwargs, output):
        hidden = output[0]
        hidden.retain_grad()
        passes.append((kwargs["input_ids"], hidden))

    instruction = "Represent the science claim for retrieval: "
    rows = [
        TrainingRow(query=(instruction, "the cell gene"), pos=("", "protein data")),
        TrainingRow(query=(instruction, "a red dog runs"), pos=("", "cat plays fast")),
    ]
    prompt = encoder.prompt_length(instruction)
    prefix = encoder.tokenize([(instruction, "x")])[0][:prompt]
    assert prompt > 3
    handle = encoder.transformer.register_forward_hook(hook, with_kwargs=True)
    try:
        contrastive_step(encoder, InfoNCELoss(), rows)
    finally:
        handle.remove()
        encoder.zero_grad(set_to_none=True)
    queries = positives = 0
    for input_ids, hidden in passes:
        grad = hidden.grad.abs().sum(-1)  # (texts, seq)
        for row in range(input_ids.shape[0]):
            if input_ids[row, :prompt].tolist() == prefix:  # a query: its instruction gets no gradient
                queries += 1
                assert grad[row, :prompt].sum().item() == 0.0
                assert (grad[row, prompt : prompt + 2] > 0).all()  # its text tokens do
            else:  # a positive without instruction: its first token counts
                positives += 1
                assert grad[row, 0] > 0
    assert (queries, positives) == (2, 2)
