"""The Ray ingest's watchdog and progress line, with a fake clock and counter (no Ray): issue 23's
finding 2, a write stage that sat with its count frozen for minutes and printed nothing."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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
    # with a backlog: the store is blamed only when embedding went on past it with nothing written
    assert stage_waiting(Counts(300, 256, 3), backlog=100) == (
        "reading and embedding wait (44 embedded records are being written)"
    )
    assert stage_waiting(Counts(400, 256, 3), backlog=100).startswith("the write stage waits (144 embedded")


def test_before_the_first_write_every_step_of_the_start_is_progress():
    clock, stream = FakeClock(), io.StringIO()
    counts = [Counts()]
    monitor = Monitor(lambda: counts[-1], Watchdog(3, 8, 0.0), stream=stream, clock=clock, show_progress=False,
                      backlog=200)  # fmt: skip
    steps = [Counts(0, 0, 1), Counts(0, 0, 2), Counts(0, 0, 3), Counts(64, 0, 3), Counts(128, 0, 3), Counts(128, 64, 3)]
    for t, c in enumerate(steps):  # a slow start: each step 7 s after the last, never 8 s of nothing
        clock.now, counts[-1] = 7.0 * (t + 1), c
        assert monitor.step() in ("ok", "warn")
    # from the first write on, embedding is progress while fewer than `backlog` records wait to be written;
    # embedding on past that while the store takes nothing is a stall
    actions = []
    for t, embedded in enumerate([200, 300, 400, 500]):
        clock.now, counts[-1] = 42.0 + 3.0 * (t + 1), Counts(embedded, 64, 3)
        actions.append(monitor.step())
    assert actions == ["ok", "ok", "warn", "ok"]  # 264 is the cap (64 + 200): 300 on is no progress
    clock.now = 42.0 + 3.0 * 2 + 8.0
    assert monitor.step() == "stop"
    assert "the write stage waits" in stream.getvalue()


def test_a_shard_longer_than_the_limit_to_embed_is_not_a_stall():
    """Issue 30: a shard embedded in many calls for longer than --stall-limit, its first records written only
    after a while, was stopped as stalled (only writes counted). Embedding is progress too."""
    clock, stream = FakeClock(), io.StringIO()
    counts = [Counts(0, 0, 3)]
    monitor = Monitor(lambda: counts[-1], Watchdog(3, 8, 0.0), stream=stream, clock=clock, show_progress=False,
                      backlog=4 * 256 * 2)  # fmt: skip
    for t in range(1, 40):  # 40 polls 2 s apart (78 s, the limit is 8): 256 more embedded each, written in pairs
        clock.now, counts[-1] = 2.0 * t, Counts(1037 + 256 * t, 1037 + 512 * ((t - 1) // 2), 3)
        assert monitor.step() == "ok", stream.getvalue()
    assert stream.getvalue() == ""  # no warning either: embedding is healthy, the store is not blamed


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
        "instructor ingest: no progress for 3 s (300 embedded, 128 written): the write stage waits (172 embedded "
        "records unwritten: a store write that does not return?); free: 0 of 2 CPU\n"
    )
    clock.now = 12.0
    assert monitor.step() == "stop"
    assert monitor.stop_message == (
        "no progress for 8 s (--stall-limit 8): stopped after 128 records written (300 embedded); "
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
    scale = (docs / "scale.md").read_text(encoding="utf-8")
    assert "`--stall-limit` seconds (default 600; 0: never)" in scale
    assert "nothing embedded and nothing written" in scale


_STOPPED_JOB = """
import os, signal, sys, threading, time
sys.path[:0] = {paths!r}
from instructor_ray.progress import Counts
from instructor_ray.watchdog import Monitor, StallError, Watchdog, watched
{setup}
monitor = Monitor(lambda: Counts(), Watchdog(0, 1, time.monotonic()), show_progress=False, interval_s=0.1,
                  grace_s={grace}, on_stuck=lambda message: (print("stuck:", message, flush=True), os._exit(3)))
def job():
    {job}
try:
    watched(monitor, job)
except StallError as exc:
    print("stopped:", exc, flush=True)
    handler = signal.getsignal(signal.SIGINT)
    named = {{signal.SIG_IGN: "ignored", signal.SIG_DFL: "default"}}.get(handler, getattr(handler, "__name__", handler))
    print("sigint:", named, signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))
"""


def _run_job(setup: str, job: str, *, grace: float = 30.0, **popen) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parents[1]
    code = _STOPPED_JOB.format(paths=[str(root), str(root / "integrations")], setup=setup, job=job, grace=grace)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False,
                          **popen)  # fmt: skip


@pytest.mark.parametrize(
    ("setup", "popen", "after"),
    [
        ("", {}, "sigint: default_int_handler False"),
        ("", {"preexec_fn": lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)}, "sigint: ignored False"),
        ("signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})", {}, "sigint: default_int_handler True"),
    ],
    ids=["sigint-default", "sigint-ignored", "sigint-blocked"],
)
def test_the_stop_ends_a_job_whose_sigint_is_ignored_or_blocked(setup, popen, after):
    """Issue 30: a background job (SIGINT ignored) or a Ray Job entrypoint (SIGINT blocked) ran on past the
    limit: the stop's SIGINT never arrived. It arrives now, and the process's own disposition is restored."""
    started = time.monotonic()
    done = _run_job(setup, "time.sleep(40)", **popen)
    assert time.monotonic() - started < 20, done
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[0].startswith("stopped: no progress for 1 s (--stall-limit 1): stopped after 0 ")
    assert done.stdout.splitlines()[1] == after


def test_a_sigint_from_elsewhere_stays_ignored_while_the_monitor_runs():
    setup = "signal.signal(signal.SIGINT, signal.SIG_IGN)"
    job = "signal.raise_signal(signal.SIGINT); print('still running', flush=True); time.sleep(40)"
    done = _run_job(setup, job)
    assert done.stdout.splitlines()[:2] == ["still running", done.stdout.splitlines()[1]]
    assert done.stdout.splitlines()[1].startswith("stopped: no progress for 1 s")


def test_a_stopped_job_that_does_not_end_is_handed_to_on_stuck():
    """A main thread that never returns to Python (here: one that swallows the stop) is ended by the
    caller's ``on_stuck`` after the grace period; the CLI's prints the stop line and exits 2."""
    job = "\n    ".join(["while True:", "    try:", "        time.sleep(40)", "    except KeyboardInterrupt:",
                          "        pass"])  # fmt: skip
    started = time.monotonic()
    done = _run_job("", job, grace=1.0)
    assert time.monotonic() - started < 20, done
    assert done.returncode == 3, done
    assert done.stdout.startswith("stuck: no progress for 1 s (--stall-limit 1): stopped after 0 records written")


def test_the_cli_on_stuck_prints_the_stop_line_and_exits_2():
    root = Path(__file__).resolve().parents[1]
    code = (f"import sys; sys.path[:0] = {[str(root), str(root / 'integrations')]!r}\n"
            "from instructor_ray.cli import _stuck\n"
            "_stuck('no progress for 9 s (--stall-limit 9): stopped')")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr == "instructor ingest: error: no progress for 9 s (--stall-limit 9): stopped\n"


def test_the_counter_actor_is_placed_on_the_drivers_node_only():
    """Issue 30: the counter (max_restarts=-1, no placement) lived on a worker node; when that node died it
    restarted empty and the stop line's counts were wrong. It is pinned to the driver's node (not soft)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from instructor_ray.progress import _Counter, make_counter

    made: dict = {}

    class FakeRay:
        def get_runtime_context(self):
            return type("Context", (), {"get_node_id": lambda _self: "ab" * 28})()

        def remote(self, **options):
            made["remote"] = options

            def wrap(cls):
                made["cls"] = cls
                return type("Remote", (), {"options": lambda _self, **o: made.setdefault("options", o) and _self,
                                           "remote": lambda _self: "actor"})()  # fmt: skip

            return wrap

    assert make_counter(FakeRay()) == "actor"
    assert made["cls"] is _Counter and made["remote"] == {"num_cpus": 0, "max_restarts": -1}
    strategy = made["options"]["scheduling_strategy"]
    assert isinstance(strategy, NodeAffinitySchedulingStrategy)
    assert (strategy.node_id, strategy.soft) == ("ab" * 28, False)
