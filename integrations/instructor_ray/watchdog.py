"""Never hang silently: a watchdog over a Ray ingest's counters.

The driver polls the counter actor (:mod:`instructor_ray.progress`) every few seconds. If no
record is written for ``warn_s`` seconds (before the first write: if no step of the start moves
either: the collection check, an actor that has loaded its model, a record embedded) it prints
one line saying which stage waits and for what (the cluster's free CPUs/GPUs, the tasks Ray
cannot place); after ``limit_s`` seconds (0: never) it stops the job with one line: what was
written, and that the same command resumes it (writes are upserts under deterministic ids).
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
from typing import Any, Literal, TextIO

from instructor_core.errors import InstructorError

from .progress import Counts, progress_line

__all__ = ["DEFAULT_STALL_LIMIT", "DEFAULT_STALL_WARN", "Monitor", "StallError", "Watchdog", "waiting_for"]

#: Seconds without a written record before the watchdog says which stage waits.
DEFAULT_STALL_WARN = 120.0
#: Seconds without a written record before the watchdog stops the job (0: never).
DEFAULT_STALL_LIMIT = 600.0

#: Seconds between progress lines when stderr is not a terminal (a log file).
LOG_EVERY_S = 30.0

Action = Literal["ok", "warn", "stop"]


class StallError(InstructorError):
    """The job wrote nothing for ``--stall-limit`` seconds and was stopped (one line: what was written)."""


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


def stage_waiting(now: Counts) -> str:
    """Which stage waits, from the counts over a stall."""
    if now.started == 0:
        return "the driver waits (loading the model, or checking the collection: a store that does not answer?)"
    if now.started == 1 and now.embedded == 0:
        return "no embedding actor is ready (loading the model, or waiting for resources)"
    if now.embedded > now.written:
        unwritten = now.embedded - now.written
        return f"the write stage waits ({unwritten:,} embedded records unwritten: a store write that does not return?)"
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

    On a stop, it sends SIGINT to the main thread (as Ctrl-C would); the caller turns that into
    :class:`StallError` with :attr:`stop_message`.

    Args:
        poll: Returns the current :class:`Counts` (may raise: counted as no progress).
        watchdog: The stall decision.
        describe_wait: One phrase on what the cluster waits for (see :func:`waiting_for`).
        show_progress: Print a progress line (on a terminal, in place).
        interval_s: Seconds between polls.
        stream: Where lines go.
        clock: Seconds, monotonic.
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
    ) -> None:
        self.poll = poll
        self.watchdog = watchdog
        self.describe_wait = describe_wait
        self.show_progress = show_progress
        self.interval_s = interval_s
        self.stream = stream or sys.stderr
        self.clock = clock
        self.start = clock()
        self.counts = Counts()
        self.stop_message: str | None = None
        self._printed = -1e9
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="instructor-ray-watchdog", daemon=True)

    def __enter__(self) -> Monitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=10)
        if self.show_progress and self.stream.isatty():
            self.stream.write("\n")

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
        # before the first record is done, every step counts (the start: model loads, the collection check,
        # actors); from then on only records written or skipped as stored unchanged do
        action = self.watchdog.observe(now, counts.done if counts.done else counts)
        idle = self.watchdog.idle(now)
        if action == "warn":
            wait = self.describe_wait()
            self.stream.write(
                f"instructor ingest: no record written for {idle:.0f} s ({counts.written:,} written): "
                f"{stage_waiting(counts)}" + (f"; {wait}" if wait else "") + "\n"
            )
        elif action == "stop":
            self.stop_message = (
                f"no record written for {idle:.0f} s (--stall-limit {self.watchdog.limit_s:g}): stopped after "
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
                return
