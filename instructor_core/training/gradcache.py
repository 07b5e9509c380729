"""One contrastive step: embed a batch of rows, compute the loss, accumulate parameter gradients.

With ``chunk_size`` set, the step uses gradient caching (Gao et al., 2021, "Scaling Deep
Contrastive Learning Batch Size under Memory Limited Setup"):

1. embed every text without autograd, ``chunk_size`` texts at a time, saving the RNG state
   before each chunk;
2. compute the loss on those embeddings (a leaf tensor) and its gradient w.r.t. the embeddings;
3. embed each chunk again with autograd, with the RNG restored so dropout draws the same masks,
   and backpropagate the cached embedding gradients through it.

Peak memory is then that of one chunk, whatever the batch size, for about one extra forward pass.
The parameter gradients equal those of a single pass over the whole batch.

Texts go through ``encoder.tokenize`` / ``encoder.collate`` / ``encoder.forward``, exactly as at
inference, so instruction tokens are left out of pooling wherever the model's pooling says so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from types import ModuleType

import torch

from instructor_core.errors import InputError
from instructor_core.model.encoder import InstructorEncoder
from instructor_core.training.data import TrainingRow
from instructor_core.training.loss import InfoNCELoss

__all__ = ["contrastive_step"]


def _autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _device_rng(device: torch.device) -> tuple[list[torch.device], ModuleType | None]:
    """The devices whose RNG dropout draws from besides the CPU's, and their torch module."""
    if device.type == "cpu":
        return [], None
    return [device], torch.get_device_module(device.type)


def _rng_state(device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    devices, module = _device_rng(device)
    return torch.get_rng_state(), (module.get_rng_state(devices[0]) if module is not None else None)


def _set_rng_state(state: tuple[torch.Tensor, torch.Tensor | None], device: torch.device) -> None:
    devices, module = _device_rng(device)
    torch.set_rng_state(state[0])
    if module is not None and state[1] is not None:
        module.set_rng_state(state[1], devices[0])


def contrastive_step(
    encoder: InstructorEncoder,
    loss_fn: InfoNCELoss,
    rows: Sequence[TrainingRow],
    *,
    chunk_size: int | None = None,
    bf16: bool = False,
) -> float:
    """Compute the batch loss and add its gradients to the encoder's ``.grad`` (no optimizer step).

    Args:
        encoder: The model being trained (put it in train mode for dropout).
        loss_fn: The contrastive loss.
        rows: The batch.
        chunk_size: Texts per forward pass with gradient caching; None keeps one autograd graph
            (no caching) over length-grouped passes of ``len(rows)`` texts each.
        bf16: Run the encoder under bfloat16 autocast.

    Returns:
        The loss value.
    """
    if not rows:
        raise InputError("an empty batch")
    if encoder.backend != "torch":
        raise InputError(
            f"the encoder runs backend={encoder.backend!r}, whose ONNX export would not follow the refit weights; "
            "call training.prepare_encoder(encoder) first (train() does), which drops it"
        )
    if chunk_size is not None and chunk_size < 1:
        raise InputError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
    pairs = [r.query for r in rows] + [r.pos for r in rows] + [n for r in rows for n in r.neg]
    size = len(rows)
    ids = encoder.tokenize(pairs)
    device = encoder.device

    def embed(chunk: list[int]) -> torch.Tensor:
        batch = encoder.collate([ids[i] for i in chunk], [pairs[i][0] for i in chunk])
        with _autocast(device, bf16):
            return encoder.forward(batch, normalize=True).float()

    def split_loss(vectors: torch.Tensor) -> torch.Tensor:
        return loss_fn(vectors[:size], vectors[size : 2 * size], vectors[2 * size :])

    # Longest first, so each chunk pads little (short queries are not padded to the abstracts'
    # length); the order is undone when the vectors are assembled.
    order = sorted(range(len(pairs)), key=lambda i: -len(ids[i]))
    if chunk_size is None:  # no caching: one autograd graph over length-grouped passes
        vectors = torch.empty(len(pairs), encoder.dimension, device=device)
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            vectors = vectors.index_put((torch.tensor(chunk, device=device),), embed(chunk))
        loss = split_loss(vectors)
        loss.backward()
        return float(loss.detach())

    chunks = [order[s : s + chunk_size] for s in range(0, len(order), chunk_size)]
    states = []
    cached = torch.empty(len(pairs), encoder.dimension, device=device)
    with torch.no_grad():
        for chunk in chunks:
            states.append(_rng_state(device))
            cached[chunk] = embed(chunk)
    cached.requires_grad_(True)
    loss = split_loss(cached)
    loss.backward()
    grads = cached.grad
    if grads is None:  # the loss does not depend on the embeddings: nothing to replay
        raise RuntimeError("the loss has no gradient with respect to the embeddings")
    # The replay leaves the RNG where the first pass did (as after a step without caching), on the
    # CPU and on the encoder's own device, whatever its type (cuda, mps, xpu, ...).
    devices, _ = _device_rng(device)
    with torch.random.fork_rng(devices=devices, device_type=device.type):
        for chunk, state in zip(chunks, states, strict=True):
            _set_rng_state(state, device)
            vectors = embed(chunk)
            torch.autograd.backward(vectors, grad_tensors=grads[chunk])
    return float(loss.detach())
