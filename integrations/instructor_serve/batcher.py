"""Dynamic batching: the inputs of every request join one bounded queue, and one worker embeds them.

A request's inputs are tokenized on a thread of their own (so tokenizing overlaps the forward pass
running on the model's thread) and queued as items. The worker cuts the queue in arrival order by a
token budget and an input cap, drops the items whose client has gone, sorts the cut by length into
forward passes of at most that many padded tokens, and scatters each pass's vectors back to the
requests. A request that would take the queue past its bound is refused at once (429), before any
work is done for it.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from instructor_core.model.batching import token_budget_batches
from instructor_core.model.encoder import InstructorEncoder
from instructor_serve.errors import ApiError

__all__ = ["Batcher", "Job", "QueueFullError"]


class QueueFullError(ApiError):
    """The queue cannot take a request's inputs now: 429, at once."""

    def __init__(self, asked: int, waiting: int, bound: int) -> None:
        super().__init__(
            429,
            f"the server is busy: {waiting} inputs are waiting and this request adds {asked}, past the queue's "
            f"bound of {bound} (--max-queue-inputs); retry after a short wait",
            type="rate_limit_error",
            code="queue_full",
        )


@dataclass(eq=False)
class Job:
    """One request's inputs on their way through the queue.

    Attributes:
        instruction: The instruction joined before every text.
        normalize: L2-normalize the vectors.
        dim: Keep the first ``dim`` dimensions (None: the model's).
        ids: Token ids of each input (instruction included).
        vectors: The model's pooled output per input, filled as passes finish.
        remaining: Inputs not yet embedded.
        cancelled: The client has gone: its remaining inputs are dropped before any pass.
        done: Set when every input is embedded (or the job failed or was cancelled).
    """

    instruction: str
    normalize: bool
    dim: int | None
    ids: list[list[int]] = field(default_factory=list)
    vectors: np.ndarray | None = None
    remaining: int = 0
    cancelled: bool = False
    error: BaseException | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def tokens(self) -> int:
        """Tokens of the inputs as embedded (instruction included, after any cut)."""
        return sum(len(row) for row in self.ids)


@dataclass(eq=False)
class _Item:
    job: Job
    index: int

    @property
    def length(self) -> int:
        return len(self.job.ids[self.index])


class Batcher:
    """The queue and the worker that embeds it with one :class:`InstructorEncoder`.

    Args:
        encoder: The loaded model.
        max_batch_tokens: Tokens in one cut (and padded tokens in one forward pass).
        max_batch_size: Inputs in one cut.
        max_queue_inputs: Inputs waiting at most.
        observe: Called after each forward pass with (inputs, padded tokens, seconds), for metrics.
        dropped: Called with the number of inputs dropped because their client had gone.
    """

    def __init__(
        self,
        encoder: InstructorEncoder,
        *,
        max_batch_tokens: int,
        max_batch_size: int,
        max_queue_inputs: int,
        observe: Callable[[int, int, float], None] | None = None,
        dropped: Callable[[int], None] | None = None,
    ) -> None:
        self.encoder = encoder
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_size = max_batch_size
        self.max_queue_inputs = max_queue_inputs
        self._observe = observe or (lambda n, tokens, seconds: None)
        self._dropped = dropped or (lambda n: None)
        self._queue: collections.deque[_Item] = collections.deque()
        self._reserved = 0  # inputs admitted, still being tokenized
        self._wake = asyncio.Event()
        self._tokenizer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="instructor-tokenize")
        self._model = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="instructor-forward")
        self._worker: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ admission
    @property
    def waiting(self) -> int:
        """Inputs admitted and not yet embedded or dropped."""
        return len(self._queue) + self._reserved

    def reserve(self, count: int) -> None:
        """Hold ``count`` places in the queue for a request, or refuse it at once.

        Raises:
            QueueFullError: The places are not free.
        """
        if self.waiting + count > self.max_queue_inputs:
            raise QueueFullError(count, self.waiting, self.max_queue_inputs)
        self._reserved += count

    def release(self, count: int) -> None:
        """Give back places :meth:`reserve` held for a request that will not be queued."""
        self._reserved = max(0, self._reserved - count)

    async def tokenize(self, pairs: Sequence[tuple[str, str]]) -> tuple[list[list[int]], list[bool]]:
        """Token ids of each (instruction, text) and whether each was cut, on the tokenizer's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._tokenizer, self.encoder.tokenize_marking_truncation, list(pairs))

    def submit(self, job: Job) -> None:
        """Queue a tokenized job whose places :meth:`reserve` holds."""
        count = len(job.ids)
        self.release(count)
        job.remaining = count
        job.vectors = np.zeros((count, self.encoder.model_dimension), dtype=np.float32)
        self._queue.extend(_Item(job, i) for i in range(count))
        self._wake.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._run())

    # ------------------------------------------------------------------ the worker
    def _cut(self) -> list[_Item]:
        """Items from the front of the queue: up to the token budget and the input cap; the items of
        a cancelled job are dropped on the way."""
        cut: list[_Item] = []
        tokens = 0
        dropped = 0
        while self._queue and len(cut) < self.max_batch_size:
            item = self._queue[0]
            if item.job.cancelled or item.job.error is not None:
                self._queue.popleft()
                dropped += 1
                continue
            if cut and tokens + item.length > self.max_batch_tokens:
                break
            self._queue.popleft()
            cut.append(item)
            tokens += item.length
        if dropped:
            self._dropped(dropped)
        return cut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            cut = self._cut()
            if not cut:
                self._wake.clear()
                if not self._queue:
                    await self._wake.wait()
                continue
            try:
                await loop.run_in_executor(self._model, self._embed, cut)
            except Exception as exc:  # a bug, or the model failing (out of memory): the cut's jobs fail
                for item in cut:
                    item.job.error = exc
                    item.job.done.set()
                continue
            for item in cut:
                job = item.job
                job.remaining -= 1
                if job.remaining == 0:
                    job.done.set()

    def _embed(self, cut: list[_Item]) -> None:
        """Forward passes over a cut, sorted by length (runs on the model's thread)."""
        encoder = self.encoder
        lengths = [item.length for item in cut]
        with encoder._encode_lock, torch.inference_mode():
            for chosen in token_budget_batches(lengths, max_tokens=self.max_batch_tokens):
                items = [cut[i] for i in chosen]
                start = time.perf_counter()
                batch = encoder.collate([it.job.ids[it.index] for it in items], [it.job.instruction for it in items])
                pooled = encoder.forward(batch, normalize=False)
                groups: dict[tuple[bool, int | None], list[int]] = collections.defaultdict(list)
                for row, it in enumerate(items):
                    groups[(it.job.normalize, it.job.dim)].append(row)
                for (normalize, dim), rows in groups.items():
                    vectors = encoder.finish(pooled[rows], normalize=normalize, dim=dim).float().cpu().numpy()
                    for row, vector in zip(rows, vectors, strict=True):
                        it = items[row]
                        assert it.job.vectors is not None
                        it.job.vectors[it.index, : vector.shape[0]] = vector
                self._observe(len(items), len(items) * max(lengths[i] for i in chosen), time.perf_counter() - start)

    def close(self) -> None:
        """Stop the worker and the threads (pending jobs are failed)."""
        if self._worker is not None:
            self._worker.cancel()
        for item in self._queue:
            item.job.error = ApiError(503, "the server is shutting down", type="server_error", code="shutting_down")
            item.job.done.set()
        self._queue.clear()
        self._tokenizer.shutdown(wait=False, cancel_futures=True)
        self._model.shutdown(wait=False, cancel_futures=True)
