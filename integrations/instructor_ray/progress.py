"""Progress of a Ray ingest: a small counter actor the embedding actors and write tasks report to,
and the one-line progress text the driver prints while it polls (see :mod:`instructor_ray.watchdog`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Counts", "make_counter", "progress_line"]


@dataclass(frozen=True)
class Counts:
    """What a job has done so far.

    Attributes:
        embedded: Records embedded by the actors.
        written: Records upserted into the store.
        started: Steps of the start done: the driver's collection check (1), then one per
            embedding actor that has loaded its model.
    """

    embedded: int = 0
    written: int = 0
    started: int = 0


class _Counter:
    """The counter actor's class (made a Ray actor by :func:`make_counter`)."""

    def __init__(self) -> None:
        self.embedded = 0
        self.written = 0
        self.started = 0

    def add(self, embedded: int = 0, written: int = 0, started: int = 0) -> None:
        self.embedded += embedded
        self.written += written
        self.started += started

    def counts(self) -> Counts:
        return Counts(self.embedded, self.written, self.started)


def make_counter(ray: Any) -> Any:
    """A counter actor (no CPU reserved: it never competes with the job for a slot).

    Report with ``counter.add.remote(embedded=n)`` / ``written=n`` / ``started=1``; read with
    ``ray.get(counter.counts.remote())``.
    """
    return ray.remote(num_cpus=0, max_restarts=-1)(_Counter).remote()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def progress_line(counts: Counts, elapsed: float, total: int | None = None) -> str:
    """``embedded 1,200, written 1,024 of 5,183, 85.3/s, ETA 48s`` (the total and ETA when known)."""
    rate = counts.written / elapsed if elapsed > 0 else 0.0
    written = f"written {counts.written:,}" + (f" of {total:,}" if total is not None else "")
    parts = [f"embedded {counts.embedded:,}", written, f"{rate:.1f}/s"]
    if total is not None and rate > 0 and counts.written < total:
        parts.append(f"ETA {_duration((total - counts.written) / rate)}")
    return ", ".join(parts)
