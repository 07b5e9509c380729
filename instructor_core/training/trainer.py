"""The refit loop: AdamW, linear warmup and decay, clipping, checkpoints that resume bit-identically.

A checkpoint (``output_dir/checkpoint.pt``) holds the model, optimizer, scheduler and RNG states and
the position (epoch, batch index, step). Batches are a pure function of (rows, seed, epoch), so a run
resumed from a checkpoint replays exactly the steps an uninterrupted run would have taken, and ends
with the same weights. The final model is written to ``output_dir/model`` as a sentence-transformers
folder with ``include_prompt: false`` pooling (instructions are left out of pooling, in training and
at inference alike) and the training instructions as its prompts.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import torch
from tqdm.auto import tqdm

from instructor_core.errors import InputError
from instructor_core.instructions import Instructions
from instructor_core.model.encoder import InstructorEncoder
from instructor_core.training.batching import task_batches
from instructor_core.training.data import TrainingRow
from instructor_core.training.gradcache import contrastive_step
from instructor_core.training.loss import InfoNCELoss

__all__ = ["TrainConfig", "TrainResult", "prepare_encoder", "train"]

logger = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
MODEL_DIR = "model"


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a refit.

    Attributes:
        output_dir: Where the checkpoint and the final model (``model/``) go.
        epochs: Passes over the rows.
        batch_size: Rows (triples) per batch; every batch is one task.
        learning_rate: Peak AdamW learning rate.
        weight_decay: AdamW weight decay (not applied to biases and LayerNorm weights).
        warmup_ratio: Share of the steps with linear warmup; then linear decay to 0.
        max_grad_norm: Gradient clipping norm; None turns clipping off.
        temperature: InfoNCE temperature (see :class:`InfoNCELoss`).
        symmetric: Add the positive -> query term to the loss.
        chunk_size: Gradient-caching chunk (texts per forward pass); None: no caching.
        seed: Seed of batches, dropout and initialisation of the run.
        checkpoint_every: Save a checkpoint every this many steps (and at each epoch end); 0: only
            at epoch ends.
        bf16: bfloat16 autocast for the encoder (opt-in; where the device supports it).
        max_time_s: Stop (checkpoint and save) once training has run this many seconds (time
            spent in ``on_epoch_end`` is not counted).
        show_progress: Show a progress bar with the loss.
        instructions: Default instructions saved with the model; None keeps the encoder's.
    """

    output_dir: Path
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 2e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float | None = 1.0
    temperature: float = 0.05
    symmetric: bool = False
    chunk_size: int | None = None
    seed: int = 0
    checkpoint_every: int = 0
    bf16: bool = False
    max_time_s: float | None = None
    show_progress: bool = True
    instructions: Instructions | None = None


@dataclass
class TrainResult:
    """What a run did.

    Attributes:
        steps: Optimizer steps taken in total (including those before a resume).
        losses: Loss of every step, in order (including those before a resume).
        epoch_metrics: What ``on_epoch_end`` returned after each completed epoch.
        stopped_early: Whether ``max_time_s`` ended the run.
        model_path: The saved sentence-transformers folder.
        seconds: Wall time of this call.
    """

    steps: int = 0
    losses: list[float] = field(default_factory=list)
    epoch_metrics: list[dict] = field(default_factory=list)
    stopped_early: bool = False
    model_path: Path | None = None
    seconds: float = 0.0


def prepare_encoder(encoder: InstructorEncoder, instructions: Instructions | None = None) -> None:
    """Make ``encoder`` ready for a refit: torch backend, instructions left out of pooling.

    A base model such as all-MiniLM-L6-v2 pools over the prompt (``include_prompt: true``); a refit
    with instructions must exclude them, in training and in the saved folder alike. An encoder
    loaded with an ONNX backend drops its runtime (with a warning): the export holds the weights of
    the load, and every pass after the refit must run the refit torch weights.
    """
    encoder._model_root, encoder._fingerprint = None, None  # its weights are about to change
    previous = encoder.use_torch_backend()
    if previous != "torch":
        logger.warning(
            "the encoder was loaded with backend=%r; its ONNX Runtime export holds the pre-training weights, "
            "so it is dropped and the encoder runs torch from now on (reload the saved model with backend=%r "
            "for the fast path)",
            previous,
            previous,
        )
    if encoder.spec.include_prompt:
        encoder.spec = dataclasses.replace(encoder.spec, include_prompt=False)
    if instructions is not None:
        encoder.instructions = instructions


def _optimizer(encoder: InstructorEncoder, config: TrainConfig) -> torch.optim.AdamW:
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in encoder.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.learning_rate)


def _schedule(optimizer: torch.optim.Optimizer, total: int, warmup: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _rng_states() -> dict:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "numpy": _numpy_state_to_tensors(cast(tuple, np.random.get_state(legacy=True))),
        "python": random.getstate(),
    }


def _numpy_state_to_tensors(state: tuple) -> tuple:
    # Plain tensors and numbers only, so a checkpoint loads with torch.load(weights_only=True).
    name, keys, pos, has_gauss, cached = state
    return (name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached))


def _numpy_state_from_tensors(state: tuple) -> tuple:
    name, keys, pos, has_gauss, cached = state
    return (name, keys.numpy().astype(np.uint32), pos, has_gauss, cached)


def _restore_rng(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    if states.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    np.random.set_state(_numpy_state_from_tensors(states["numpy"]))
    random.setstate(states["python"])


def _save_checkpoint(path: Path, state: dict) -> None:
    partial = path.with_suffix(".tmp")
    torch.save(state, partial)
    os.replace(partial, path)  # a kill mid-write leaves the previous checkpoint intact


def train(
    encoder: InstructorEncoder,
    rows: Sequence[TrainingRow],
    config: TrainConfig,
    *,
    resume: bool = False,
    on_step: Callable[[int, float], None] | None = None,
    on_epoch_end: Callable[[int, InstructorEncoder], dict] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> TrainResult:
    """Refit ``encoder`` on ``rows`` in place and save it to ``config.output_dir / "model"``.

    Args:
        encoder: The model to train (moved to train mode during the run, eval mode after).
        rows: Training rows (any mix of tasks).
        config: The run's settings.
        resume: Continue from ``output_dir/checkpoint.pt`` if it exists.
        on_step: Called with (step, loss) after each optimizer step (and after any checkpoint
            of that step); an exception raised there stops the run, like a kill.
        on_epoch_end: Called with (epoch, encoder) after each epoch; the dict it returns is kept
            in :attr:`TrainResult.epoch_metrics` (e.g. an nDCG@10 curve).
        clock: Seconds from a monotonic clock, for ``max_time_s`` and :attr:`TrainResult.seconds`
            (tests pass a fake one).
    """
    _check_run(encoder, rows, config)
    started = clock()
    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    prepare_encoder(encoder, config.instructions)
    per_epoch = [task_batches(rows, config.batch_size, seed=config.seed, epoch=e) for e in range(config.epochs)]
    total = sum(len(b) for b in per_epoch)
    optimizer = _optimizer(encoder, config)
    run = _Run(encoder, optimizer, _schedule(optimizer, total, int(config.warmup_ratio * total)), output / CHECKPOINT)
    run.started, run.clock = started, clock
    if resume and run.checkpoint.is_file():
        run.restore()
    else:
        torch.manual_seed(config.seed)
        np.random.seed(config.seed)
        random.seed(config.seed)
    loss_fn = InfoNCELoss(config.temperature, config.symmetric)
    bar = tqdm(total=total, initial=run.result.steps, desc="Training", unit="step", disable=not config.show_progress)
    encoder.train()
    try:
        while run.epoch < config.epochs and not run.result.stopped_early:
            _run_epoch(run, rows, per_epoch[run.epoch], config, loss_fn, bar, on_step, on_epoch_end)
    finally:
        bar.close()
        encoder.eval()
    run.result.model_path = encoder.save_pretrained(output / MODEL_DIR)
    run.result.seconds = run.clock() - run.started
    return run.result


def _check_run(encoder: InstructorEncoder, rows: Sequence[TrainingRow], config: TrainConfig) -> None:
    if not rows:
        raise InputError("no training rows")
    if config.epochs < 1:
        raise InputError(f"epochs must be >= 1, got {config.epochs}")
    if config.bf16 and encoder.device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise InputError("bf16 was asked for, but this GPU does not support bfloat16")


@dataclass
class _Run:
    """One refit's moving parts: what a checkpoint holds, and the position it resumes from.

    ``started`` is the ``clock`` reading the training budget counts from; time spent in
    ``on_epoch_end`` moves it forward, so that time is not counted.
    """

    encoder: InstructorEncoder
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    checkpoint: Path
    result: TrainResult = field(default_factory=TrainResult)
    epoch: int = 0
    position: int = 0
    started: float = 0.0
    clock: Callable[[], float] = time.monotonic

    def restore(self) -> None:
        """Load the checkpoint: weights, optimizer, scheduler, RNG, position and history."""
        state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        self.encoder.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        _restore_rng(state["rng"])
        self.epoch, self.position = state["epoch"], state["position"]
        self.result.steps, self.result.losses = state["steps"], list(state["losses"])
        self.result.epoch_metrics = list(state["epoch_metrics"])

    def save(self) -> None:
        """Checkpoint the run at its current position (the next batch to take)."""
        _save_checkpoint(
            self.checkpoint,
            {
                "model": self.encoder.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": _rng_states(),
                "epoch": self.epoch,
                "position": self.position,
                "steps": self.result.steps,
                "losses": self.result.losses,
                "epoch_metrics": self.result.epoch_metrics,
            },
        )

    def step(self, loss_fn: InfoNCELoss, batch: list[TrainingRow], config: TrainConfig) -> float:
        """One optimizer step on ``batch``; returns its loss."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = contrastive_step(self.encoder, loss_fn, batch, chunk_size=config.chunk_size, bf16=config.bf16)
        if config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.encoder.parameters(), config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        return loss

    def end_epoch(self, on_epoch_end: Callable[[int, InstructorEncoder], dict]) -> None:
        """Call ``on_epoch_end`` in eval mode; its time (an evaluation, a snapshot) is not training
        and is left out of the ``max_time_s`` budget."""
        paused = self.clock()
        self.encoder.eval()
        self.result.epoch_metrics.append(dict(on_epoch_end(self.epoch, self.encoder)))
        self.encoder.train()
        self.started += self.clock() - paused


def _run_epoch(
    run: _Run,
    rows: Sequence[TrainingRow],
    batches: list[list[int]],
    config: TrainConfig,
    loss_fn: InfoNCELoss,
    bar: tqdm,
    on_step: Callable[[int, float], None] | None,
    on_epoch_end: Callable[[int, InstructorEncoder], dict] | None,
) -> None:
    """Take the rest of the current epoch's batches, or stop once the time budget is spent."""
    while run.position < len(batches):
        loss = run.step(loss_fn, [rows[i] for i in batches[run.position]], config)
        run.position += 1
        run.result.steps += 1
        run.result.losses.append(loss)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}", epoch=run.epoch)
        out_of_time = config.max_time_s is not None and run.clock() - run.started >= config.max_time_s
        epoch_done = run.position == len(batches)
        if epoch_done:
            run.epoch, run.position = run.epoch + 1, 0
            if on_epoch_end is not None:
                run.end_epoch(on_epoch_end)
            run.save()
        elif out_of_time or (config.checkpoint_every and run.result.steps % config.checkpoint_every == 0):
            run.save()
        if on_step is not None:
            on_step(run.result.steps, loss)
        if out_of_time:
            run.result.stopped_early = True
            return
        if epoch_done:
            return
