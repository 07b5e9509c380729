"""Never hang silently: a watchdog over a Ray ingest's counters.

The driver polls the counter actor (:mod:`instructor_ray.progress`) every few seconds. Progress is
any step of the start (the collection check, an actor that has loaded its model), a record written
or skipped as stored unchanged, or a record embedded while fewer than ``backlog`` embedded records
wait to be written (embedding past that with nothing written is a store that does not take the
writes, not progress). If nothing moves for ``warn_s`` seconds it prints one line saying which
stage waits and for what (the cluster's free CPUs/GPUs, the tasks Ray cannot place); after
``limit_s`` seconds (0: never) it stops the job with one line: what was written, and that the same
command resumes it (writes are upserts under deterministic ids). The stop works whether the process
takes SIGINT, ignores it or blocks it (a background job, a Ray Job entrypoint), and, if the job
still does not end, after a grace period by the ``on_stuck`` the caller gives.
:class:`Watchdog` is the pure decision (a clock and the counts in, an action out);
:class:`Monitor` is the polling thread around it.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TextIO, TypeVar

from instructor_core.errors import InstructorError

from .progress import Counts, progress_line

__all__ = [
    "DEFAULT_STALL_LIMIT",
    "DEFAULT_STALL_WARN",
    "Monitor",
    "StallError",
    "Watchdog",
    "waiting_for",
    "watched",
]

#: Seconds without progress (nothing embedded, written or skipped) before the watchdog says which stage waits.
DEFAULT_STALL_WARN = 120.0
#: Seconds without progress before the watchdog stops the job (0: never).
DEFAULT_STALL_LIMIT = 600.0
#: Seconds the job has, once stopped, to end by itself before ``on_stuck`` is called.
STOP_GRACE_S = 30.0

#: Seconds between progress lines when stderr is not a terminal (a log file).
LOG_EVERY_S = 30.0

Action = Literal["ok", "warn", "stop"]
T = TypeVar("T")


class StallError(InstructorError):
    """The job made no progress for ``--stall-limit`` seconds and was stopped (one line: what was written)."""


@dataclass
class Watchdog:
    """Decide, from a clock and the job's counts, whether it is stalled: nothing moved for a while.

    Attributes:
        warn_s: Seconds without progress before one warning (per stall).
        limit_s: Seconds without progress before stopping; 0 never stops.
        since: When the counts last moved (the job's start at first).
    """

    warn_s: float
    limit_s: float
    since: float
    _last: object = None
    _warned: bool = False

    def observe(self, now: float, counts: object) -> Action:
        """``"warn"`` once per stall past ``warn_s``, ``"stop"`` past ``limit_s``, else ``"ok"``; any
        change of ``counts`` (compared with ``==``) is progress."""
        if counts != self._last:
            if self._last is not None:
                self.since = now
            self._last, self._warned = counts, False
        idle = now - self.since
        if self.limit_s > 0 and idle >= self.limit_s:
            return "stop"
        if self.warn_s > 0 and idle >= self.warn_s and not self._warned:
            self._warned = True
            return "warn"
        return "ok"

    def idle(self, now: float) -> float:
        """Seconds since the count last moved."""
        return now - self.since


def stage_waiting(now: Counts, backlog: int | None = None) -> str:
    """Which stage waits, from the counts over a stall: the write stage only where embedded records
    wait to be written (``backlog`` or more of them, where a backlog is given: embedding went on
    while nothing was written), else reading and embedding."""
    if now.started == 0:
        return "the driver waits (loading the model, or checking the collection: a store that does not answer?)"
    if now.started == 1 and now.embedded == 0:
        return "no embedding actor is ready (loading the model, or waiting for resources)"
    unwritten = now.embedded - now.written
    if unwritten > 0 and (backlog is None or unwritten >= backlog):
        return f"the write stage waits ({unwritten:,} embedded records unwritten: a store write that does not return?)"
    if unwritten > 0:
        return f"reading and embedding wait ({unwritten:,} embedded records are being written)"
    return "reading and embedding wait (every embedded record is written)"


def waiting_for(ray: Any) -> str:
    """What the cluster has free and what its pending tasks ask for (best effort: never raises)."""
    parts = []
    try:
        free = ray.available_resources()
        total = ray.cluster_resources()
        shown = [f"{free.get(k, 0.0):g} of {total[k]:g} {k}" for k in ("CPU", "GPU") if k in total]
        parts.append("free: " + ", ".join(shown))
    except Exception:  # noqa: BLE001 - a hint in a warning line must not fail the job
        pass
    try:
        from ray.util.state import list_tasks

        pending = list_tasks(filters=[("state", "=", "PENDING_NODE_ASSIGNMENT")], limit=100, timeout=5)
        if pending:
            demands = sorted({str(getattr(t, "required_resources", None) or {}) for t in pending})
            parts.append(f"{len(pending)} task(s) wait for {', '.join(demands[:3])}")
    except Exception:  # noqa: BLE001 - the state API needs the dashboard; the free resources suffice
        pass
    return "; ".join(parts)


class Monitor:
    """Poll the counts, print progress and run the :class:`Watchdog`, in a daemon thread.

    On a stop, it interrupts the main thread with a real SIGINT (as Ctrl-C would: it also ends a
    socket read that never returns); the caller turns that into :class:`StallError` with
    :attr:`stop_message` (see :func:`watched`). Entered in the main thread, the monitor makes that
    SIGINT arrive where the process ignores or blocks it (a job started in the background from a
    script, a Ray Job entrypoint): for as long as it runs, the main thread takes SIGINT and a handler
    raises ``KeyboardInterrupt`` only for the monitor's own stop, so a SIGINT from elsewhere is still
    ignored; both are restored on exit. If the job has not ended ``grace_s`` seconds after the stop,
    ``on_stuck(stop_message)`` is called from the monitor's thread (the CLI prints the line and exits).

    Args:
        poll: Returns the current :class:`Counts` (may raise: counted as no progress).
        watchdog: The stall decision.
        describe_wait: One phrase on what the cluster waits for (see :func:`waiting_for`).
        show_progress: Print a progress line (on a terminal, in place).
        interval_s: Seconds between polls.
        stream: Where lines go.
        clock: Seconds, monotonic.
        backlog: Embedded records that may wait to be written while embedding still counts as
            progress; None: embedding always counts.
        grace_s: Seconds a stopped job has to end before ``on_stuck``.
        on_stuck: Called with the stop message when the stopped job did not end; None: nothing.
    """

    def __init__(
        self,
        poll: Callable[[], Counts],
        watchdog: Watchdog,
        *,
        describe_wait: Callable[[], str] = lambda: "",
        show_progress: bool = True,
        interval_s: float = 2.0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        backlog: int | None = None,
        grace_s: float = STOP_GRACE_S,
        on_stuck: Callable[[str], None] | None = None,
    ) -> None:
        self.poll = poll
        self.watchdog = watchdog
        self.describe_wait = describe_wait
        self.show_progress = show_progress
        self.interval_s = interval_s
        self.stream = stream or sys.stderr
        self.clock = clock
        self.backlog = backlog
        self.grace_s = grace_s
        self.on_stuck = on_stuck
        self.start = clock()
        self.counts = Counts()
        self.stop_message: str | None = None
        self._printed = -1e9
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="instructor-ray-watchdog", daemon=True)
        self._restore: list[Callable[[], object]] = []

    def __enter__(self) -> Monitor:
        self._take_sigint()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=10)
        while self._restore:
            self._restore.pop()()
        if self.show_progress and self.stream.isatty():
            self.stream.write("\n")

    def _take_sigint(self) -> None:
        """Make the stop's SIGINT reach the main thread where it is ignored or blocked (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGINT)
        blocked = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
        if previous is signal.SIG_IGN or previous is None or blocked:

            def on_sigint(signum: int, frame: object) -> None:
                if self.stop_message is not None:  # the monitor's own stop; any other SIGINT stays ignored
                    raise KeyboardInterrupt

            signal.signal(signal.SIGINT, on_sigint)
            if previous is not None:
                self._restore.append(lambda: signal.signal(signal.SIGINT, previous))
        elif previous is signal.SIG_DFL:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self._restore.append(lambda: signal.signal(signal.SIGINT, previous))
        if blocked:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
            self._restore.append(lambda: signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT]))

    def progress_key(self, counts: Counts) -> object:
        """What must change for the job to be making progress (see the module's docstring)."""
        if not counts.done:  # before the first record is done, every step counts (model loads, the check)
            return counts
        embedded = counts.embedded if self.backlog is None else min(counts.embedded, counts.written + self.backlog)
        return (counts.started, counts.done, embedded)

    def step(self) -> Action:
        """One poll: update the counts, print, decide (the thread calls it; tests call it directly)."""
        try:
            counts = self.poll()
        except Exception:  # noqa: BLE001 - a counter that does not answer is no progress
            counts = self.counts
        now = self.clock()
        self.counts = counts
        tty = self.stream.isatty()
        if self.show_progress and (tty or now - self._printed >= LOG_EVERY_S):  # a log gets a line each 30 s
            self._printed = now
            self.stream.write(progress_line(counts, now - self.start) + ("\r" if tty else "\n"))
        action = self.watchdog.observe(now, self.progress_key(counts))
        idle = self.watchdog.idle(now)
        if action == "warn":
            wait = self.describe_wait()
            self.stream.write(
                f"instructor ingest: no progress for {idle:.0f} s ({counts.embedded:,} embedded, {counts.written:,} "
                f"written): {stage_waiting(counts, self.backlog)}" + (f"; {wait}" if wait else "") + "\n"
            )
        elif action == "stop":
            self.stop_message = (
                f"no progress for {idle:.0f} s (--stall-limit {self.watchdog.limit_s:g}): stopped after "
                f"{counts.written:,} records written ({counts.embedded:,} embedded); run the same command again to "
                "resume (writes are upserts under the same ids)"
            )
        self.stream.flush()
        return action

    def _run(self) -> None:
        while not self._done.wait(self.interval_s):
            if self.step() == "stop":
                # a real SIGINT to the main thread (as Ctrl-C): it also ends a socket read that never returns
                signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
                if not self._done.wait(self.grace_s) and self.on_stuck is not None:
                    self.on_stuck(self.stop_message or "stopped")
                return


def watched(monitor: Monitor, job: Callable[[], T]) -> T:
    """Run ``job()`` under ``monitor``; its stop becomes :class:`StallError` (one line, exit 2 in the CLI)."""
    try:
        with monitor:
            return job()
    except BaseException:  # the SIGINT may surface as KeyboardInterrupt or as what Ray wraps it in
        if monitor.stop_message is None:
            raise
        raise StallError(monitor.stop_message) from None
