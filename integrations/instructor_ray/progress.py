"""Progress of a Ray ingest: a small counter actor the embedding actors and write tasks report to,
and the one-line progress text the driver prints while it polls (see :mod:`instructor_ray.watchdog`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Counts", "make_counter", "on_driver_node", "progress_line"]


@dataclass(frozen=True)
class Counts:
    """What a job has done so far.

    Attributes:
        embedded: Records embedded by the actors.
        written: Records upserted into the store.
        started: Steps of the start done: the driver's collection check (1), then one per
            embedding actor that has loaded its model.
        skipped: Records dropped before embedding because the collection holds them unchanged.
        total: Records the job has to see (the check pass's count, duplicates dropped); None until
            it is known.
    """

    embedded: int = 0
    written: int = 0
    started: int = 0
    skipped: int = 0
    total: int | None = None

    @property
    def done(self) -> int:
        """Records finished: written, or skipped as stored unchanged."""
        return self.written + self.skipped


class _Counter:
    """The counter actor's class (made a Ray actor by :func:`make_counter`)."""

    def __init__(self) -> None:
        self.embedded = 0
        self.written = 0
        self.started = 0
        self.skipped = 0
        self.total: int | None = None

    def add(self, embedded: int = 0, written: int = 0, started: int = 0, skipped: int = 0) -> None:
        self.embedded += embedded
        self.written += written
        self.started += started
        self.skipped += skipped

    def set_total(self, total: int) -> None:
        self.total = total

    def counts(self) -> Counts:
        return Counts(self.embedded, self.written, self.started, self.skipped, self.total)


def on_driver_node(ray: Any) -> dict[str, Any]:
    """Ray options that place an actor on the driver's node, never elsewhere (``soft=False``): an actor
    that counts for the job must outlive any worker node, and the driver's node lives as long as the job."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    node = ray.get_runtime_context().get_node_id()
    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=node, soft=False)}


def make_counter(ray: Any) -> Any:
    """A counter actor on the driver's node (:func:`on_driver_node`: a worker node lost mid-job does not
    take the counts with it), with no CPU reserved (it never competes with the job for a slot).

    Report with ``counter.add.remote(embedded=n)`` / ``written=n`` / ``started=1`` / ``skipped=n``
    and ``counter.set_total.remote(n)``; read with ``ray.get(counter.counts.remote())``.
    """
    return ray.remote(num_cpus=0, max_restarts=-1)(_Counter).options(**on_driver_node(ray)).remote()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def progress_line(counts: Counts, elapsed: float) -> str:
    """``embedded 1,200, written 1,024 of 5,183, 300 unchanged, 85.3/s, ETA 45s``: the total, the records
    skipped as stored unchanged and the ETA when known."""
    total = counts.total
    rate = counts.written / elapsed if elapsed > 0 else 0.0
    written = f"written {counts.written:,}" + (f" of {total:,}" if total is not None else "")
    parts = [f"embedded {counts.embedded:,}", written]
    if counts.skipped:
        parts.append(f"{counts.skipped:,} unchanged")
    parts.append(f"{rate:.1f}/s")
    if total is not None and rate > 0 and counts.done < total:
        parts.append(f"ETA {_duration((total - counts.done) / rate)}")
    return ", ".join(parts)
