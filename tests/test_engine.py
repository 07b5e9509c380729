"""instructor_core.ingest.engine: the one ingest path every store and both engines share."""

from __future__ import annotations

import asyncio
import math
import threading

import pytest

from instructor_core.ingest.engine import (
    IngestError,
    IngestReport,
    RetryPolicy,
    apipelined,
    arun_ingest,
    call_with_retry,
    pipelined,
    run_ingest,
)
from instructor_core.ingest.ids import SeenIds
from instructor_core.ingest.records import RecordError, RecordRules, validate_batch


class _Log:
    """Records prepare/write calls with their threads."""

    def __init__(self, fail_prepare: int | None = None, fail_write: int | None = None) -> None:
        self.events: list[tuple[str, int]] = []
        self.threads: dict[str, set[int]] = {"prepare": set(), "write": set()}
        self.fail_prepare, self.fail_write = fail_prepare, fail_write

    def prepare(self, chunk: int) -> int:
        self.threads["prepare"].add(threading.get_ident())
        if chunk == self.fail_prepare:
            raise RuntimeError(f"prepare {chunk}")
        return chunk * 10

    def write(self, chunk: int, prepared: int) -> None:
        self.threads["write"].add(threading.get_ident())
        assert prepared == chunk * 10
        if chunk == self.fail_write:
            raise RuntimeError(f"write {chunk}")
        self.events.append(("write", chunk))


def test_pipelined_writes_in_order_from_the_calling_thread():
    log = _Log()
    pipelined(range(5), log.prepare, log.write)
    assert log.events == [("write", i) for i in range(5)]
    assert log.threads["write"] == {threading.get_ident()}
    assert threading.get_ident() not in log.threads["prepare"]


def test_pipelined_prepares_the_next_chunk_while_writing():
    started = {i: threading.Event() for i in range(3)}

    def prepare(chunk: int) -> int:
        started[chunk].set()
        return chunk

    overlapped = []

    def write(chunk: int, _: int) -> None:
        if chunk + 1 in started:  # the next chunk's preparation runs while this one is written
            overlapped.append(started[chunk + 1].wait(timeout=10))

    pipelined(range(3), prepare, write)
    assert overlapped == [True, True]


def test_pipelined_read_error_writes_what_was_read_first():
    log = _Log()

    def chunks():
        yield 0
        yield 1
        raise ValueError("bad record 2")

    with pytest.raises(ValueError, match="bad record 2"):
        pipelined(chunks(), log.prepare, log.write)
    assert log.events == [("write", 0), ("write", 1)]


@pytest.mark.parametrize(("failing", "written"), [({"fail_prepare": 2}, [0, 1]), ({"fail_write": 1}, [0])])
def test_pipelined_writes_nothing_after_a_failure(failing, written):
    log = _Log(**failing)
    with pytest.raises(RuntimeError):
        pipelined(range(5), log.prepare, log.write)
    assert log.events == [("write", i) for i in written]


def test_pipelined_without_overlap_runs_in_the_calling_thread():
    log = _Log(fail_write=3)
    with pytest.raises(RuntimeError):
        pipelined(range(5), log.prepare, log.write, overlap=False)
    assert log.events == [("write", i) for i in range(3)]
    assert log.threads["prepare"] == log.threads["write"] == {threading.get_ident()}


class Flaky(ConnectionError):
    """Stands for a store's transport error."""


class MemorySink:
    """A store in a dict: embeds a text as its length, fails ``failures`` writes in transport."""

    rules = RecordRules()

    def __init__(self, failures: int = 0, reject: bool = False) -> None:
        self.rows: dict[str, str] = {}
        self.writes: list[list[str]] = []
        self.failures, self.reject = failures, reject

    def embed(self, records):
        return [[float(len(r.text))] for r in records]

    def write(self, records, vectors):
        if self.reject:
            raise ValueError("rejected by the store")
        if self.failures:
            self.failures -= 1
            raise Flaky("connection reset")
        assert [v[0] for v in vectors] == [len(r.text) for r in records]
        self.writes.append([r.id for r in records])
        self.rows.update({r.id: r.text for r in records})

    def is_transport_error(self, exc):
        return isinstance(exc, Flaky)


def docs(*pairs):
    return [{"id": i, "text": t} for i, t in pairs]


def test_report_counts_what_happened():
    sink = MemorySink(failures=2)
    waits: list[float] = []
    report = run_ingest(docs(("a", "x"), ("b", "yy"), ("c", "z")), sink, batch_size=2, show_progress=False,
                        sleep=waits.append, retry=RetryPolicy(backoff=0.25))  # fmt: skip
    assert report == IngestReport(seen=3, written=3, batches=2, skipped=0, retried=2, duplicates=0, embedded=3)
    assert waits == [0.25, 0.5] and sink.writes == [["a", "b"], ["c"]]
    assert report.summary() == "wrote 3 of 3 records in 2 batches (2 retried writes)"


def test_duplicate_across_batches_names_both_records_and_writes_nothing_of_its_batch():
    sink = MemorySink()
    corpus = docs(("a", "first"), ("b", "x"), ("c", "y"), ("a", "later"))
    with pytest.raises(RecordError, match=r"record 3, id 'a': duplicate id \(also record 0\)"):
        run_ingest(corpus, sink, batch_size=2, show_progress=False)
    assert sink.rows == {"a": "first", "b": "x"}  # the second batch (c, a) was not written


@pytest.mark.parametrize(
    ("policy", "text", "skipped", "written"),
    [("first", "first", 2, 3), ("last", "third", 1, 4)],
)
def test_on_duplicate_keeps_the_chosen_copy(policy, text, skipped, written):
    sink = MemorySink()
    corpus = docs(("a", "first"), ("b", "x"), ("a", "second"), ("a", "third"), ("c", "y"))
    report = run_ingest(corpus, sink, batch_size=2, on_duplicate=policy, show_progress=False)
    assert sink.rows == {"a": text, "b": "x", "c": "y"}
    assert (report.seen, report.duplicates, report.skipped, report.written) == (5, 2, skipped, written)


def test_duplicate_check_spills_to_disk_past_the_memory_bound():
    sink = MemorySink()
    corpus = docs(*[(f"d{i}", "t") for i in range(10)], ("d1", "again"))
    with pytest.raises(RecordError, match=r"record 10, id 'd1': duplicate id \(also record 1\)"):
        run_ingest(corpus, sink, batch_size=3, max_ids_in_memory=4, show_progress=False)
    with SeenIds(max_in_memory=2) as seen:
        seen.add_many([(0, "a"), (1, "b"), (2, "c")])
        assert seen.on_disk and len(seen) == 3
        seen.add_many([(3, "a"), (4, "d")])
        assert (seen.get("a"), seen.get("d"), seen.get("zz"), len(seen)) == (0, 4, None, 4)


def test_transport_failure_after_retries_says_what_was_written_and_how_to_resume():
    sink = MemorySink()
    corpus = docs(("a", "x"), ("b", "y"), ("c", "z"))

    def failing_write(records, vectors, _original=sink.write):
        if records[0].id == "c":
            raise Flaky("server went away")
        _original(records, vectors)

    sink.write = failing_write
    with pytest.raises(IngestError) as error:
        run_ingest(corpus, sink, batch_size=2, retry=RetryPolicy(max_attempts=2), sleep=lambda s: None,
                   show_progress=False)  # fmt: skip
    message = str(error.value)
    assert "after 2 attempts" in message and "2 of 3 records read so far were written" in message
    assert "Run the same ingest again to resume" in message and "\n" not in message
    assert isinstance(error.value.__cause__, Flaky) and error.value.report.written == 2


def test_rejections_are_not_retried_and_propagate_unchanged():
    sink = MemorySink(reject=True)
    waits: list[float] = []
    with pytest.raises(ValueError, match="rejected by the store"):
        run_ingest(docs(("a", "x")), sink, batch_size=2, sleep=waits.append, show_progress=False)
    assert waits == []


async def test_async_rejections_are_not_retried_and_propagate_unchanged():
    sink = AsyncMemorySink(reject=True)
    waits: list[float] = []

    async def wait(seconds: float) -> None:
        waits.append(seconds)

    with pytest.raises(ValueError, match="rejected by the store"):
        await arun_ingest(docs(("a", "x")), sink, batch_size=2, sleep=wait)
    assert waits == []


def test_a_batch_wide_store_error_is_placed_at_its_own_batch():
    """A sink's RecordError without an index (about its whole batch) names that batch's first record."""

    class RefusesC(MemorySink):
        def write(self, records, vectors):
            if any(r.id == "c" for r in records):
                raise RecordError("the store refused this batch")
            super().write(records, vectors)

    sink = RefusesC()
    placed = r"^record 2, id 'c': the store refused this batch \(2 records before it were written"
    with pytest.raises(RecordError, match=placed) as error:
        run_ingest(docs(("a", "x"), ("b", "y"), ("c", "z"), ("d", "w")), sink, batch_size=2, show_progress=False)
    assert (error.value.index, error.value.record_id) == (2, "c") and sink.rows == {"a": "x", "b": "y"}


def test_call_with_retry_is_bounded_and_backs_off():
    calls, waits = [], []

    def fn():
        calls.append(1)
        raise Flaky("down")

    policy = RetryPolicy(max_attempts=5, backoff=1.0, max_backoff=3.0)
    with pytest.raises(Flaky):
        call_with_retry(fn, is_transport_error=lambda e: isinstance(e, Flaky), policy=policy, sleep=waits.append)
    assert len(calls) == 5 and waits == [1.0, 2.0, 3.0, 3.0]
    with pytest.raises(ValueError, match="max_attempts must be a positive int"):
        RetryPolicy(max_attempts=0)


class AsyncMemorySink(MemorySink):
    async def write(self, records, vectors):
        await asyncio.sleep(0)
        MemorySink.write(self, records, vectors)


async def test_async_engine_matches_the_sync_one():
    corpus = docs(("a", "first"), ("b", "x"), ("a", "second"), ("c", "y"), ("d", "zz"))
    sync_sink, async_sink = MemorySink(failures=1), AsyncMemorySink(failures=1)

    async def no_wait(seconds):
        return None

    sync = run_ingest(corpus, sync_sink, batch_size=2, on_duplicate="last", show_progress=False,
                      sleep=lambda s: None)  # fmt: skip
    got = await arun_ingest(corpus, async_sink, batch_size=2, on_duplicate="last", sleep=no_wait)
    assert got == sync and async_sink.rows == sync_sink.rows == {"a": "second", "b": "x", "c": "y", "d": "zz"}
    with pytest.raises(RecordError, match="duplicate id"):
        await arun_ingest(corpus, AsyncMemorySink(), batch_size=2)


async def test_apipelined_writes_in_order_and_nothing_after_a_failure():
    written = []

    async def write(chunk, prepared):
        if chunk == 3:
            raise RuntimeError("write 3")
        written.append((chunk, prepared))

    with pytest.raises(RuntimeError, match="write 3"):
        await apipelined(range(6), lambda c: c * 10, write)
    assert written == [(0, 0), (1, 10), (2, 20)]


CHROMA_LIKE = RecordRules(
    metadata_values="scalar", reserved_prefixes=("chroma:",), finite_numbers=True, int_bits=64, empty_keys=False
)


class ChromaLikeSink(MemorySink):
    """A store with Chroma's record rules; keeps each written record's metadata."""

    rules = CHROMA_LIKE

    def write(self, records, vectors):
        super().write(records, vectors)
        self.metadata = {**getattr(self, "metadata", {}), **{r.id: dict(r.metadata) for r in records}}


class AsyncChromaLikeSink(ChromaLikeSink):
    async def write(self, records, vectors):
        ChromaLikeSink.write(self, records, vectors)


@pytest.mark.parametrize(
    ("metadata", "pattern"),
    [
        ({"score": math.nan}, r"metadata\['score'\] is nan"),
        ({"score": math.inf}, r"metadata\['score'\] is inf"),
        ({"chroma:thing": "x"}, r"metadata key 'chroma:thing' starts with 'chroma:'"),
        ({"big": 2**63}, r"metadata\['big'\] = 9223372036854775808 does not fit a 64-bit integer"),
        ({"": "x"}, r"metadata key '' \(empty\)"),
        ({"tags": ["a"]}, r"metadata\['tags'\] must be a str, int, float or bool"),
    ],
    ids=["nan", "inf", "reserved-prefix", "int64-overflow", "empty-key", "list-value"],
)
async def test_the_engine_refuses_what_the_sinks_rules_refuse_before_writing_it(metadata, pattern):
    """Both engines check every batch with the sink's own rules (here Chroma's), not the permissive
    defaults: the refused record is named, and its batch is never written."""
    corpus = [{"id": "ok", "text": "t", "metadata": {"n": -(2**63)}}, {"id": "x", "text": "t", "metadata": metadata}]
    for sink in (ChromaLikeSink(), AsyncChromaLikeSink()):
        with pytest.raises(RecordError, match=rf"^record 1, id 'x': {pattern}"):
            if isinstance(sink, AsyncChromaLikeSink):
                await arun_ingest(corpus, sink, batch_size=1)
            else:
                run_ingest(corpus, sink, batch_size=1, show_progress=False)
        assert sink.rows == {"ok": "t"} and sink.metadata == {"ok": {"n": -(2**63)}}
    assert validate_batch(corpus[:1], rules=CHROMA_LIKE)[0].metadata == {"n": -(2**63)}


def test_engine_threads_prepare_apart_from_write():
    seen_threads = {"embed": set(), "write": set()}

    class ThreadSink(MemorySink):
        def embed(self, records):
            seen_threads["embed"].add(threading.get_ident())
            return super().embed(records)

        def write(self, records, vectors):
            seen_threads["write"].add(threading.get_ident())
            super().write(records, vectors)

    run_ingest(docs(*[(f"d{i}", "t") for i in range(6)]), ThreadSink(), batch_size=2, show_progress=False)
    assert seen_threads["write"] == {threading.get_ident()} and threading.get_ident() not in seen_threads["embed"]
