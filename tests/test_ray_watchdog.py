"""The Ray ingest's watchdog and progress line, with a fake clock and counter (no Ray): issue 23's
finding 2, a write stage that sat with its count frozen for minutes and printed nothing."""

from __future__ import annotations

import io

from instructor_core.errors import InstructorError
from instructor_ray.progress import Counts, progress_line
from instructor_ray.watchdog import Monitor, StallError, Watchdog, stage_waiting


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_watchdog_warns_once_per_stall_and_stops_past_the_limit():
    dog = Watchdog(warn_s=3, limit_s=8, since=0.0)
    assert dog.observe(0.0, 0) == "ok"
    assert dog.observe(2.9, 0) == "ok"
    assert dog.observe(3.0, 0) == "warn"
    assert dog.observe(5.0, 0) == "ok"  # one warning per stall
    assert dog.observe(6.0, 10) == "ok"  # progress: the stall is over
    assert dog.observe(8.9, 10) == "ok"
    assert dog.observe(9.0, 10) == "warn"  # a new stall, a new warning
    assert dog.observe(13.9, 10) == "ok"
    assert dog.observe(14.0, 10) == "stop"


def test_a_zero_limit_never_stops_and_a_zero_warn_never_warns():
    dog = Watchdog(warn_s=0, limit_s=0, since=0.0)
    assert {dog.observe(t, 0) for t in (0.0, 1e3, 1e6)} == {"ok"}


def test_progress_line_shows_counts_rate_and_an_eta_when_the_total_is_known():
    assert progress_line(Counts(1200, 1000), 10.0) == "embedded 1,200, written 1,000, 100.0/s"
    assert progress_line(Counts(1200, 1000, total=5000), 10.0) == (
        "embedded 1,200, written 1,000 of 5,000, 100.0/s, ETA 40s"
    )
    assert progress_line(Counts(0, 0, total=5000), 0.0) == "embedded 0, written 0 of 5,000, 0.0/s"
    assert progress_line(Counts(10, 10, total=4000), 1.0).endswith("ETA 6m39s")


def test_progress_line_takes_the_check_pass_total_and_counts_unchanged_records_as_done():
    # 300 skipped as stored unchanged and 90 written of 1,000: 610 to go at 10/s
    assert progress_line(Counts(100, 90, 2, skipped=300, total=1000), 9.0) == (
        "embedded 100, written 90 of 1,000, 300 unchanged, 10.0/s, ETA 1m01s"
    )
    assert progress_line(Counts(0, 0, 2, skipped=1000, total=1000), 9.0) == (
        "embedded 0, written 0 of 1,000, 1,000 unchanged, 0.0/s"
    )


def test_the_counter_sums_reports_and_keeps_the_total():
    from instructor_ray.progress import _Counter

    counter = _Counter()
    assert counter.counts() == Counts()
    counter.add(started=1)
    counter.set_total(500)
    counter.add(skipped=120)
    counter.add(embedded=64)
    counter.add(embedded=64, written=64)
    counter.add(skipped=8)
    assert counter.counts() == Counts(embedded=128, written=64, started=1, skipped=128, total=500)
    assert counter.counts().done == 192


def test_a_resume_that_only_skips_stored_records_is_not_a_stall():
    clock, stream = FakeClock(), io.StringIO()
    counts = [Counts()]
    monitor = Monitor(lambda: counts[-1], Watchdog(3, 8, 0.0), stream=stream, clock=clock, show_progress=False)
    for t in range(1, 7):  # 2 s apart for 12 s, 64 written at first, then only 100 more skipped each time
        clock.now, counts[-1] = 2.0 * t, Counts(64, 64, 3, skipped=100 * t, total=1000)
        assert monitor.step() == "ok"
    clock.now += 8.0  # then nothing at all: a stall
    assert monitor.step() == "stop"


def test_the_waiting_stage_is_named_from_the_counts():
    assert stage_waiting(Counts(0, 0, 0)).startswith("the driver waits (loading the model, or checking the collection")
    assert stage_waiting(Counts(0, 0, 1)).startswith("no embedding actor is ready")
    assert stage_waiting(Counts(300, 256, 3)).startswith("the write stage waits (44 embedded records unwritten")
    assert stage_waiting(Counts(256, 256, 3)).startswith("reading and embedding wait")


def test_before_the_first_write_every_step_of_the_start_is_progress():
    clock, stream = FakeClock(), io.StringIO()
    counts = [Counts()]
    monitor = Monitor(lambda: counts[-1], Watchdog(3, 8, 0.0), stream=stream, clock=clock, show_progress=False)
    steps = [Counts(0, 0, 1), Counts(0, 0, 2), Counts(0, 0, 3), Counts(64, 0, 3), Counts(128, 0, 3), Counts(128, 64, 3)]
    for t, c in enumerate(steps):  # a slow start: each step 7 s after the last, never 8 s of nothing
        clock.now, counts[-1] = 7.0 * (t + 1), c
        assert monitor.step() in ("ok", "warn")
    # from the first write on, only writes are progress: embedding on while the store stalls is a stall
    actions = []
    for t, embedded in enumerate([200, 300, 400]):
        clock.now, counts[-1] = 42.0 + 3.0 * (t + 1), Counts(embedded, 64, 3)
        actions.append(monitor.step())
    assert actions == ["warn", "ok", "stop"]


def _monitor(counts: list[Counts], clock: FakeClock, stream: io.StringIO, **kwargs) -> Monitor:
    return Monitor(
        lambda: counts[-1],
        Watchdog(3, 8, clock()),
        describe_wait=lambda: "free: 0 of 2 CPU",
        stream=stream,
        clock=clock,
        **kwargs,
    )


def test_monitor_says_which_stage_waits_then_stops_with_one_line_saying_what_was_written():
    clock, stream = FakeClock(), io.StringIO()
    counts = [Counts(0, 0)]
    monitor = _monitor(counts, clock, stream, show_progress=False)
    actions = []
    for t, c in [(1, Counts(64, 0, 3)), (2, Counts(128, 64, 3)), (4, Counts(300, 128, 3)), (7, Counts(300, 128, 3))]:
        clock.now, counts[-1] = float(t), c
        actions.append(monitor.step())
    assert actions == ["ok", "ok", "ok", "warn"]
    assert stream.getvalue() == (
        "instructor ingest: no record written for 3 s (128 written): the write stage waits (172 embedded records "
        "unwritten: a store write that does not return?); free: 0 of 2 CPU\n"
    )
    clock.now = 12.0
    assert monitor.step() == "stop"
    assert monitor.stop_message == (
        "no record written for 8 s (--stall-limit 8): stopped after 128 records written (300 embedded); "
        "run the same command again to resume (writes are upserts under the same ids)"
    )
    assert issubclass(StallError, InstructorError)  # the CLI prints it as one line, exit 2


def test_a_counter_that_does_not_answer_is_no_progress():
    clock, stream = FakeClock(), io.StringIO()

    def poll() -> Counts:
        raise TimeoutError("the counter actor did not answer")

    monitor = Monitor(poll, Watchdog(3, 8, 0.0), stream=stream, clock=clock, show_progress=False)
    clock.now = 8.0
    assert monitor.step() == "stop"
    assert "stopped after 0 records written" in (monitor.stop_message or "")


def test_progress_lines_go_to_a_log_every_30_seconds():
    clock, stream = FakeClock(), io.StringIO()
    counts = [Counts(0, 0)]
    monitor = _monitor(counts, clock, stream)
    for t in range(0, 61, 2):
        clock.now, counts[-1] = float(t), Counts(10 * t, 10 * t)
        monitor.step()
    assert stream.getvalue().splitlines() == [
        "embedded 0, written 0, 0.0/s",
        "embedded 300, written 300, 10.0/s",
        "embedded 600, written 600, 10.0/s",
    ]


def test_the_default_limits_warn_a_slow_start_and_stop_only_after_ten_minutes():
    """A healthy job can write nothing for minutes (each actor loading a large model, a first batch
    on a slow node): the defaults warn after 2 minutes and stop only after 10, as the docs say."""
    from pathlib import Path

    from instructor_ray.watchdog import DEFAULT_STALL_LIMIT, DEFAULT_STALL_WARN

    dog = Watchdog(DEFAULT_STALL_WARN, DEFAULT_STALL_LIMIT, since=0.0)
    assert dog.observe(0.0, 0) == "ok"
    assert dog.observe(119.0, 0) == "ok"
    assert dog.observe(120.0, 0) == "warn"
    assert [dog.observe(t, 0) for t in (180.0, 300.0, 599.0)] == ["ok", "ok", "ok"]  # a slow start, not stopped
    assert dog.observe(600.0, 0) == "stop"
    docs = Path(__file__).resolve().parents[1] / "docs"
    assert "stop the job with one line saying how many records were written, exit 2 (default 600; 0: never)" in (
        docs / "cli.md"
    ).read_text(encoding="utf-8")
    assert "`--stall-limit` seconds (default 600; 0: never)" in (docs / "scale.md").read_text(encoding="utf-8")
