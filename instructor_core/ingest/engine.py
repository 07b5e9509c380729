"""The ingest engine: one path from records to a store, shared by every store and both engines.

A record flows one way: reader -> validation (the whole batch, before any write) -> duplicate check
over the whole ingest -> records stored unchanged skipped -> ``embed`` (the document instruction) ->
``write`` (deterministic ids; transport errors retried with bounded backoff) -> report. The engine
runs over a :class:`BatchSink` (or :class:`AsyncBatchSink`): how to embed a batch and how to write
it. A store's own sink only writes; :class:`instructor_core.ingest.store_ops.EngineSink` pairs it with
the encoder. The engine encodes batch k+1 in a worker thread while batch k is written from the
calling thread, so a client bound to its thread (an embedded, SQLite-backed store) is only ever
used from one thread.

No vector-store import happens here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, NoReturn, Protocol, TypeVar

from tqdm.auto import tqdm

from instructor_core.errors import InputError, InstructorError
from instructor_core.ingest.ids import SeenIds
from instructor_core.ingest.records import Record, RecordError, RecordRules, batched, content_hash, validate_batch
from instructor_core.validation import check_positive_int

__all__ = [
    "AsyncBatchSink",
    "BatchSink",
    "DuplicatePolicy",
    "IngestError",
    "IngestInterrupted",
    "IngestReport",
    "RetryPolicy",
    "acall_with_retry",
    "arun_ingest",
    "call_with_retry",
    "pipelined",
    "run_ingest",
]

T = TypeVar("T")
P = TypeVar("P")
V = TypeVar("V")

#: What to do with a record whose id was already seen in this ingest: refuse it (the default,
#: naming both positions), keep the first copy (later ones are skipped), or keep the last one.
DuplicatePolicy = Literal["error", "first", "last"]
DUPLICATE_POLICIES: tuple[str, ...] = ("error", "first", "last")


@dataclass(frozen=True)
class IngestReport:
    """What an ingest did.

    Attributes:
        seen: Records read from the input (valid ones; a bad record stops the ingest).
        written: Records upserted into the store (a record written twice counts twice).
        batches: Write calls that succeeded.
        skipped: Records read but not written: later copies of an id under ``on_duplicate="first"``,
            earlier copies within one batch under ``"last"``.
        retried: Write attempts that failed with a transport error and were tried again.
        duplicates: Records whose id had already been read in this ingest.
        unchanged: Records neither embedded nor written because the store holds their id with the
            same content hash already (a re-run; ``skip_unchanged=False`` turns the check off).
        embedded: Records embedded in this ingest (by this process, or, for Ray, by the cluster).
        truncated: Records whose text was longer than the model's max length and was cut to it (counted
            where the encoder says so: the local encoder; 0 elsewhere).
        first_truncated: The id of the first of them.
        max_length: The model's max length in tokens, where known (for the summary).
    """

    seen: int
    written: int
    batches: int
    skipped: int = 0
    retried: int = 0
    duplicates: int = 0
    unchanged: int = 0
    embedded: int = 0
    truncated: int = 0
    first_truncated: str | None = None
    max_length: int | None = None

    def summary(self) -> str:
        """One line for people: ``"wrote 3 of 3 records in 1 batch"`` plus what else happened; on a
        re-run, ``"wrote 3 of 10 records in 1 batch: 7 unchanged (skipped), 3 embedded"``; texts cut at
        the model's max length are counted, ``"(2 cut at the model's max length (256 tokens), the first 'a')"``."""
        text = f"wrote {self.written} of {self.seen} records in {self.batches} batch{'es' if self.batches != 1 else ''}"
        if self.unchanged:
            text += f": {self.unchanged} unchanged (skipped), {self.embedded} embedded"
        extras = [
            f"{n} {what}"
            for n, what in (
                (self.duplicates, "duplicate ids"),
                (self.skipped, "skipped"),
                (self.retried, "retried writes"),
            )
            if n
        ]
        if self.truncated:
            limit = f" ({self.max_length} tokens)" if self.max_length else ""
            extras.append(f"{self.truncated} cut at the model's max length{limit}, the first {self.first_truncated!r}")
        return f"{text} ({', '.join(extras)})" if extras else text


class IngestError(InstructorError, RuntimeError):
    """The store stayed unreachable (a transport error on every try of a write); says what was
    written before it, and that running the same ingest again resumes it without duplicates. The
    transport error is its ``__cause__``. Other write errors (a rejection by the store) propagate
    unchanged.

    Attributes:
        report: What was done before the failure.
    """

    def __init__(self, message: str, report: IngestReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries of a store write that failed in transport (the request may not have arrived).

    Attributes:
        max_attempts: Tries per write, the first included (1: no retry).
        backoff: Seconds before the first retry; doubled after each failure.
        max_backoff: Longest single wait.
    """

    max_attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 8.0

    def __post_init__(self) -> None:
        check_positive_int(self.max_attempts, "max_attempts")
        if self.backoff < 0 or self.max_backoff < 0:
            raise InputError(f"backoff and max_backoff must be >= 0, got {self.backoff}, {self.max_backoff}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.backoff * 2 ** (attempt - 1), self.max_backoff)


def call_with_retry(
    fn: Callable[[], T],
    *,
    is_transport_error: Callable[[BaseException], bool],
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[T, int]:
    """``fn()``, tried again after transport errors as ``policy`` allows; returns ``(result, retries)``.

    Any other error, and the last transport error, propagate unchanged. Local computation is never
    passed here: only the write that crosses to the store.
    """
    for attempt in range(1, policy.max_attempts + 1):
        try:
            return fn(), attempt - 1
        except Exception as exc:
            if attempt == policy.max_attempts or not is_transport_error(exc):
                raise
            sleep(policy.delay(attempt))
    raise AssertionError("unreachable")  # pragma: no cover


async def acall_with_retry(
    fn: Callable[[], Awaitable[T]],
    *,
    is_transport_error: Callable[[BaseException], bool],
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> tuple[T, int]:
    """:func:`call_with_retry` for a coroutine function."""
    for attempt in range(1, policy.max_attempts + 1):
        try:
            return await fn(), attempt - 1
        except Exception as exc:
            if attempt == policy.max_attempts or not is_transport_error(exc):
                raise
            await sleep(policy.delay(attempt))
    raise AssertionError("unreachable")  # pragma: no cover


class BatchSink(Protocol[V]):
    """What a store supplies to :func:`run_ingest`.

    ``embed`` runs in a worker thread, one batch ahead of ``write``; ``write`` runs in the calling
    thread, in order, and upserts by deterministic id (so writing a batch again changes nothing).
    """

    @property
    def rules(self) -> RecordRules:
        """What the store accepts as metadata (checked for the whole batch before any write)."""
        ...

    def embed(self, records: Sequence[Record]) -> V:
        """The vectors (or whatever ``write`` needs) for a validated batch."""
        ...

    def write(self, records: Sequence[Record], vectors: V) -> None:
        """Upsert the batch; raise on failure (transport errors are retried by the engine)."""
        ...

    def is_transport_error(self, exc: BaseException) -> bool:
        """Whether a failed write may be retried: the request may not have reached the store."""
        ...


class AsyncBatchSink(Protocol[V]):
    """:class:`BatchSink` for an async client: ``write`` is a coroutine; ``embed`` runs in a thread."""

    @property
    def rules(self) -> RecordRules:
        """What the store accepts as metadata."""
        ...

    def embed(self, records: Sequence[Record]) -> V:
        """The vectors for a validated batch (called in a worker thread)."""
        ...

    async def write(self, records: Sequence[Record], vectors: V) -> None:
        """Upsert the batch."""
        ...

    def is_transport_error(self, exc: BaseException) -> bool:
        """Whether a failed write may be retried."""
        ...


def pipelined(
    chunks: Iterable[T], prepare: Callable[[T], P], write: Callable[[T, P], None], *, overlap: bool = True
) -> None:
    """``write(chunk, prepare(chunk))`` for every chunk in order, with ``prepare`` of the next chunk
    (the encoding) running in a worker thread while the current one is written.

    ``overlap=False`` runs both in the calling thread, one after the other: the choice for a store
    whose writes compete with the encoder for the same cores (embedded Chroma; see
    docs/performance.md). Writes happen in the calling thread, in order. No error is lost and
    nothing is written out of order:

    - if reading a chunk raises, the chunk already prepared is written first, then the error
      propagates: everything read and valid before the failure is stored;
    - if ``prepare`` or ``write`` raises, no later chunk is written.
    """
    if not overlap:
        for chunk in chunks:
            write(chunk, prepare(chunk))
        return
    iterator = iter(chunks)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="instructor-encode") as pool:
        pending = None
        while True:
            try:
                chunk = next(iterator)
            except StopIteration:
                break
            except BaseException:
                if pending is not None:
                    write(pending[0], pending[1].result())
                raise
            future = pool.submit(prepare, chunk)
            if pending is not None:
                try:
                    write(pending[0], pending[1].result())
                except BaseException:
                    future.cancel()
                    raise
            pending = (chunk, future)
        if pending is not None:
            write(pending[0], pending[1].result())


async def apipelined(
    chunks: Iterable[T],
    prepare: Callable[[T], P],
    write: Callable[[T, P], Awaitable[None]],
    select: Callable[[T], Awaitable[T | None]] | None = None,
) -> None:
    """:func:`pipelined` for an async writer: ``prepare`` runs in a worker thread
    (``asyncio.to_thread``) for chunk k+1 while chunk k's ``write`` is awaited; same ordering and
    failure rules. ``select`` (awaited on the loop as each chunk is read, a failure counting as
    one of reading) returns the part of the chunk to prepare, or None to drop it."""
    iterator = iter(chunks)
    pending: tuple[T, asyncio.Future[P]] | None = None
    try:
        while True:
            try:
                read = next(iterator)
                chosen = read if select is None else await select(read)
                if chosen is None:
                    continue
                chunk = chosen
            except StopIteration:
                break
            except BaseException:
                if pending is not None:
                    current, pending = pending, None
                    await write(current[0], await current[1])
                raise
            future = asyncio.ensure_future(asyncio.to_thread(prepare, chunk))
            previous: tuple[T, asyncio.Future[P]] | None = pending
            pending = (chunk, future)
            if previous is not None:
                await write(previous[0], await previous[1])
        if pending is not None:
            current, pending = pending, None
            await write(current[0], await current[1])
    finally:
        if pending is not None:  # a failure left an encoding running: let it finish, drop it
            await asyncio.gather(pending[1], return_exceptions=True)


@dataclass(frozen=True)
class _Batch:
    """Valid records to write, and the stream position of the batch they were read in.

    Attributes:
        repeated: Ids of ``records`` read before in this ingest (``on_duplicate="last"``): never
            skipped as unchanged, since an earlier copy of this ingest may be on its way to the store.
    """

    start: int
    records: list[Record]
    repeated: frozenset[str] = frozenset()


def _placed(error: RecordError, batch: _Batch) -> RecordError:
    """A store's RecordError about a whole batch, placed at the batch's first record."""
    if error.index is not None:
        return error
    first = batch.records[0].id if batch.records else None
    return RecordError(error.reason, index=batch.start, record_id=error.record_id or first)


@dataclass
class _Counts:
    seen: int = 0
    written: int = 0
    batches: int = 0
    skipped: int = 0
    retried: int = 0
    duplicates: int = 0
    unchanged: int = 0
    embedded: int = 0

    def wrote(self, records: int, retries: int) -> None:
        self.written += records
        self.batches += 1
        self.retried += retries

    def report(self) -> IngestReport:
        return IngestReport(
            self.seen, self.written, self.batches, self.skipped, self.retried, self.duplicates, self.unchanged,
            self.embedded,
        )  # fmt: skip


def _checked_batches(
    documents: Iterable[Any],
    batch_size: int,
    rules: RecordRules,
    on_duplicate: DuplicatePolicy,
    seen_ids: SeenIds,
    counts: _Counts,
) -> Iterator[_Batch]:
    """Batches of valid records with duplicates handled per ``on_duplicate`` over the whole stream."""
    start = 0
    for chunk in batched(documents, batch_size):
        records = validate_batch(chunk, start=start, rules=rules, check_duplicates=False)
        kept: dict[str, tuple[int, Record]] = {}
        repeated: set[str] = set()
        for offset, record in enumerate(records):
            index = start + offset
            earlier = kept[record.id][0] if record.id in kept else seen_ids.get(record.id)
            if earlier is None:
                kept[record.id] = (index, record)
                continue
            counts.duplicates += 1
            if on_duplicate == "error":
                raise RecordError(
                    f"duplicate id (also record {earlier}); pass on_duplicate='first' or 'last' "
                    "(CLI: --on-duplicate) to keep one copy",
                    index=index,
                    record_id=record.id,
                )
            if on_duplicate == "first":
                counts.skipped += 1
            else:  # "last": this copy replaces the earlier one (in the batch) or overwrites it (stored)
                repeated.add(record.id)
                if record.id in kept:
                    counts.skipped += 1
                    del kept[record.id]  # re-inserted below, so the batch keeps stream order
                kept[record.id] = (index, record)
        counts.seen += len(records)
        seen_ids.add_many((index, rid) for rid, (index, _) in kept.items())
        if kept:
            yield _Batch(start, [record for _, record in kept.values()], frozenset(repeated))
        start += len(records)


def _lookup(sink: object, skip_unchanged: bool) -> Callable[[Sequence[str]], Any] | None:
    """The sink's ``stored_hashes`` where the ingest skips unchanged records and the sink has one."""
    lookup = getattr(sink, "stored_hashes", None) if skip_unchanged else None
    return lookup if callable(lookup) else None


def _keep_changed(batch: _Batch, stored: Mapping[str, str], counts: _Counts) -> _Batch | None:
    """The batch without the records stored with their content hash unchanged (None: nothing left)."""
    records = [r for r in batch.records if r.id in batch.repeated or stored.get(r.id) != content_hash(r)]
    counts.unchanged += len(batch.records) - len(records)
    if not records:
        return None
    return batch if len(records) == len(batch.records) else _Batch(batch.start, records, batch.repeated)


def _candidates(batch: _Batch) -> list[str]:
    """The ids of a batch whose stored hash is worth reading (not repeated in this ingest)."""
    return [r.id for r in batch.records if r.id not in batch.repeated]


def _changed_batches(
    batches: Iterable[_Batch],
    lookup: Callable[[Sequence[str]], Any] | None,
    counts: _Counts,
    is_transport_error: Callable[[BaseException], bool],
    retry: RetryPolicy,
    sleep: Callable[[float], None],
) -> Iterator[_Batch]:
    """``batches`` without the records the store holds unchanged: one ``lookup`` (the sink's
    ``stored_hashes``) per batch, before anything of it is embedded; transport errors retried."""
    if lookup is None:
        yield from batches
        return
    for batch in batches:
        ids = _candidates(batch)
        if not ids:
            yield batch
            continue
        try:
            stored, _ = call_with_retry(partial(lookup, ids), is_transport_error=is_transport_error, policy=retry,
                                        sleep=sleep)  # fmt: skip
        except Exception as exc:
            if is_transport_error(exc):
                raise _failed(exc, counts, retry) from exc
            raise
        kept = _keep_changed(batch, stored, counts)
        if kept is not None:
            yield kept


class IngestInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) stopped an ingest; still a ``KeyboardInterrupt``, that also says how many
    records were written before it (a re-run of the same ingest completes it, without duplicates).

    Attributes:
        report: What was done before the interruption.
    """

    def __init__(self, report: IngestReport) -> None:
        super().__init__(f"interrupted: {report.written} records written; re-run the same command to complete")
        self.report = report


@contextmanager
def _counted(counts: _Counts) -> Iterator[None]:
    """Say in a bad record's error (and on Ctrl-C) how many records were written before it."""
    try:
        yield
    except RecordError as exc:
        if type(exc) is not RecordError:  # a subclass carries more than its message: leave it be
            raise
        raise RecordError(
            f"{exc.reason} ({counts.written} records before it were written; run again once it is fixed "
            "to complete the ingest)",
            index=exc.index,
            record_id=exc.record_id,
        ) from exc.__cause__
    except IngestInterrupted:
        raise
    except KeyboardInterrupt:
        raise IngestInterrupted(counts.report()) from None


def _check_args(batch_size: int, on_duplicate: str) -> None:
    check_positive_int(batch_size, "batch_size")
    if on_duplicate not in DUPLICATE_POLICIES:
        raise InputError(f"on_duplicate must be one of {DUPLICATE_POLICIES}, got {on_duplicate!r}")


def _failed(exc: BaseException, counts: _Counts, retry: RetryPolicy) -> IngestError:
    report = counts.report()
    cause = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    tries = f" after {retry.max_attempts} attempts" if retry.max_attempts > 1 else ""
    return IngestError(
        f"the store could not be reached{tries} ({cause}); {report.written} of {report.seen} records read so far were "
        "written. Run the same ingest again to resume: ids are deterministic, nothing is duplicated.",
        report,
    )


def _raise_write_error(
    exc: Exception, batch: _Batch, sink: BatchSink[Any] | AsyncBatchSink[Any], counts: _Counts, retry: RetryPolicy
) -> NoReturn:
    """Re-raise a failed write: a store's RecordError placed at its batch, a transport error that
    outlived the retries as an IngestError, anything else (a rejection, a local error) as it is."""
    if isinstance(exc, RecordError):
        raise _placed(exc, batch) from None
    if sink.is_transport_error(exc):
        raise _failed(exc, counts, retry) from exc
    raise exc


def run_ingest(
    documents: Iterable[Any],
    sink: BatchSink[Any],
    *,
    batch_size: int,
    overlap: bool = True,
    retry: RetryPolicy | None = None,
    on_duplicate: DuplicatePolicy = "error",
    show_progress: bool = True,
    total: int | None = None,
    desc: str = "Ingesting",
    sleep: Callable[[float], None] = time.sleep,
    max_ids_in_memory: int = 1_000_000,
    skip_unchanged: bool = True,
) -> IngestReport:
    """Read, validate, embed and write ``documents`` through ``sink``, one batch ahead.

    A sink with the optional ``stored_hashes(ids) -> {id: content hash}`` (every store of this
    package) is asked once per batch, after validation and the duplicate check and before
    embedding, which of its ids are stored with the same content
    (:func:`~instructor_core.ingest.records.content_hash`): those are skipped (``unchanged`` in the
    report), so a re-run embeds only what is missing or changed.

    Args:
        documents: Records ``{"id": str, "text": str, "metadata": {...}}``; any iterable, read lazily.
        sink: The store's embed and write steps.
        batch_size: Records per write.
        overlap: Embed batch k+1 in a worker thread while batch k is written.
        retry: Retries of a write that failed in transport; None: :class:`RetryPolicy` defaults.
        on_duplicate: A record whose id was already read in this ingest: "error" (the default,
            naming both positions, nothing of its batch written), "first" or "last" (which copy
            the store keeps).
        show_progress: A tqdm bar (records).
        total: Number of records, for the bar, if known.
        desc: The bar's label.
        sleep: The wait between retries (tests pass a fake).
        max_ids_in_memory: Ids held in memory for the duplicate check before it moves to a
            temporary SQLite file.
        skip_unchanged: Skip records the store holds with the same content hash; False embeds and
            writes every record (CLI: ``--reembed``).

    Returns:
        What was done.

    Raises:
        RecordError: A bad record (validation or a duplicate id); earlier batches are written.
        IngestError: A write failed for good; says what was written and how to resume.
    """
    _check_args(batch_size, on_duplicate)
    retry = retry or RetryPolicy()
    if total is None and hasattr(documents, "__len__"):
        total = len(documents)  # type: ignore[arg-type]
    counts = _Counts()
    with (
        SeenIds(max_in_memory=max_ids_in_memory) as seen_ids,
        tqdm(total=total, desc=desc, unit="doc", disable=not show_progress) as bar,
    ):

        def write(batch: _Batch, vectors: object) -> None:
            records = batch.records
            try:
                _, retries = call_with_retry(
                    lambda: sink.write(records, vectors),
                    is_transport_error=sink.is_transport_error,
                    policy=retry,
                    sleep=sleep,
                )
            except Exception as exc:
                _raise_write_error(exc, batch, sink, counts, retry)
            counts.wrote(len(records), retries)
            bar.update(counts.written + counts.unchanged - bar.n)  # the records skipped unchanged count as done

        def embed(batch: _Batch) -> object:
            vectors = sink.embed(batch.records)
            counts.embedded += len(batch.records)
            return vectors

        checked = _checked_batches(documents, batch_size, sink.rules, on_duplicate, seen_ids, counts)
        chunks = _changed_batches(checked, _lookup(sink, skip_unchanged), counts, sink.is_transport_error, retry, sleep)
        with _counted(counts):
            pipelined(chunks, embed, write, overlap=overlap)
        bar.update(counts.written + counts.unchanged - bar.n)
    return counts.report()


async def arun_ingest(
    documents: Iterable[Any],
    sink: AsyncBatchSink[Any],
    *,
    batch_size: int,
    retry: RetryPolicy | None = None,
    on_duplicate: DuplicatePolicy = "error",
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    max_ids_in_memory: int = 1_000_000,
    skip_unchanged: bool = True,
) -> IngestReport:
    """:func:`run_ingest` for an async store client: embedding runs in a worker thread one batch
    ahead of the awaited write, so the event loop stays free. Same checks, retries and errors; the
    sink's optional ``stored_hashes`` is a coroutine function here."""
    _check_args(batch_size, on_duplicate)
    retry = retry or RetryPolicy()
    counts = _Counts()

    async def write(batch: _Batch, vectors: object) -> None:
        records = batch.records
        try:
            _, retries = await acall_with_retry(
                lambda: sink.write(records, vectors),
                is_transport_error=sink.is_transport_error,
                policy=retry,
                sleep=sleep,
            )
        except Exception as exc:
            _raise_write_error(exc, batch, sink, counts, retry)
        counts.wrote(len(records), retries)

    lookup = _lookup(sink, skip_unchanged)

    async def select(batch: _Batch) -> _Batch | None:
        ids = _candidates(batch) if lookup is not None else []
        if lookup is None or not ids:
            return batch
        try:
            stored, _ = await acall_with_retry(
                lambda: lookup(ids), is_transport_error=sink.is_transport_error, policy=retry, sleep=sleep
            )
        except Exception as exc:
            if sink.is_transport_error(exc):
                raise _failed(exc, counts, retry) from exc
            raise
        return _keep_changed(batch, stored, counts)

    def embed(batch: _Batch) -> object:
        vectors = sink.embed(batch.records)
        counts.embedded += len(batch.records)
        return vectors

    with SeenIds(max_in_memory=max_ids_in_memory) as seen_ids:
        chunks = _checked_batches(documents, batch_size, sink.rules, on_duplicate, seen_ids, counts)
        with _counted(counts):
            await apipelined(chunks, embed, write, select)
    return counts.report()
