"""Resume a Ray ingest without re-embedding: rows whose id the collection holds with the same
content hash (:func:`instructor_core.ingest.records.content_hash`) are dropped before the
embedding stage, so a re-run embeds only what is missing or changed.

Two ways, by who may open the store:

- a store the workers may open (a server, ``single_writer`` False): a ``map_batches`` stage opens
  it by URL (:func:`~instructor_ray.stores.open_target`, once per block, as a write task does), asks its sink's
  ``stored_hashes`` for each block's ids and drops the rows stored unchanged; a small actor counts
  them for the report;
- a store only the driver may open (embedded, ``single_writer``; or one opened through a
  ``StoreTarget.opener``): the driver first reads the ids and hashes of the corpus (a pass of
  reading and hashing, no embedding), asks its own sink in batches, and the stage drops the rows
  whose ids it found unchanged.

A sink without ``stored_hashes`` (a third-party store) skips nothing: every row is embedded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from instructor_core.errors import InstructorError
from instructor_core.ingest.engine import IngestReport
from instructor_core.ingest.records import RecordRules, content_hash
from instructor_core.ingest.stores import Store

from .blocks import RowFields, block_records
from .stores import StoreTarget, open_target

__all__ = ["LOOKUP_BATCH", "Skipped", "drop_stored_ids", "drop_unchanged_rows", "skip_unchanged", "with_skipped"]

logger = logging.getLogger("instructor_ray")

#: Ids per ``stored_hashes`` call in the driver's pass.
LOOKUP_BATCH = 1024


@dataclass
class Skipped:
    """How many rows the skip stage dropped, read once the job has run.

    Attributes:
        count: Rows the driver found unchanged (driver pass), else 0.
        tally: The counting actor of the worker stage, else None.
    """

    count: int = 0
    tally: Any = None

    def total(self) -> int:
        """Rows dropped as unchanged (call after the job: the worker stage counts as it runs)."""
        if self.tally is None:
            return self.count
        import ray

        return self.count + int(ray.get(self.tally.total.remote()))


def _pa() -> Any:
    """pyarrow (Ray Data's block format), imported where a block is built."""
    import pyarrow  # type: ignore[import-untyped]

    return pyarrow


def _tally_class() -> Any:
    import ray

    @ray.remote(num_cpus=0)
    class Tally:
        """Sums what the skip stage's tasks report."""

        def __init__(self) -> None:
            self.n = 0

        def add(self, n: int) -> None:
            self.n += n

        def total(self) -> int:
            return self.n

    return Tally


def _stored(target: StoreTarget, ids: list[str]) -> Mapping[str, str] | None:
    """The stored hashes of ``ids`` in ``target``'s collection, opened for this block as a write
    task opens it (None: its sink has no ``stored_hashes``)."""
    store = open_target(target)
    try:
        lookup = getattr(store.sink(target.collection), "stored_hashes", None)
        return lookup(ids) if callable(lookup) else None
    finally:
        store.close()


def _hashes(table: Any, fields: RowFields, rules: RecordRules) -> list[tuple[str, str]] | None:
    """``(id, content hash)`` of a block's rows, in order; None for a block with a bad row (left to
    the check stage, which names it)."""
    try:
        records = block_records(table, fields, rules)
    except InstructorError:  # a bad record, a missing column: the check stage's to report
        return None
    return [(r.id, content_hash(r)) for r in records]


def drop_unchanged_rows(
    table: Any, fields: RowFields, rules: RecordRules, target: StoreTarget, tally: Any, progress: Any = None
) -> Any:
    """``map_batches`` function (a store the workers may open): the block without its rows stored
    unchanged; the number dropped goes to ``tally`` (and to the ``progress`` counter, if any)."""
    import ray

    pairs = _hashes(table, fields, rules)
    stored = _stored(target, [rid for rid, _ in pairs]) if pairs else None
    if not pairs or stored is None:
        return table
    keep = [stored.get(rid) != digest for rid, digest in pairs]
    dropped = len(keep) - sum(keep)
    if not dropped:
        return table
    ray.get(tally.add.remote(dropped))  # counted before the task ends, so before the driver reads the total
    if progress is not None:
        ray.get(progress.add.remote(skipped=dropped))
    return table.filter(_pa().array(keep))


def _id_hash_block(table: Any, fields: RowFields, rules: RecordRules) -> Any:
    """``map_batches`` function of the driver's pass: a block's ``id`` and ``hash`` columns."""
    pa = _pa()
    pairs = _hashes(table, fields, rules) or []
    schema = pa.schema([("id", pa.string()), ("hash", pa.string())])
    return pa.table({"id": [p[0] for p in pairs], "hash": [p[1] for p in pairs]}, schema=schema)


def unchanged_ids(ds: Any, fields: RowFields, rules: RecordRules, sink: Any, task_args: Mapping[str, Any]) -> set[str]:
    """The ids of ``ds`` that ``sink`` holds with the same content hash (driver side: read and hash
    the corpus, no embedding; ``stored_hashes`` in batches of :data:`LOOKUP_BATCH`)."""
    lookup = getattr(sink, "stored_hashes", None)
    if not callable(lookup):
        return set()
    hashed = ds.map_batches(
        _id_hash_block, batch_format="pyarrow", batch_size=None, fn_kwargs={"fields": fields, "rules": rules},
        **task_args,
    )  # fmt: skip
    found: set[str] = set()
    for batch in hashed.iter_batches(batch_size=LOOKUP_BATCH, batch_format="pyarrow"):
        ids, digests = batch.column("id").to_pylist(), batch.column("hash").to_pylist()
        if not ids:
            continue
        stored = lookup(ids)
        found.update(rid for rid, digest in zip(ids, digests, strict=True) if stored.get(rid) == digest)
    return found


def drop_stored_ids(table: Any, fields: RowFields, ids: frozenset[str]) -> Any:
    """``map_batches`` function (a store only the driver may open): the block without the rows
    whose id the driver found stored unchanged."""
    if not ids or fields.id_field not in table.column_names:
        return table
    column = table.column(fields.id_field).to_pylist()
    keep = [(str(v) if isinstance(v, int) and not isinstance(v, bool) else v) not in ids for v in column]
    return table if all(keep) else table.filter(_pa().array(keep))


def skip_unchanged(
    ds: Any,
    store: Store,
    target: StoreTarget,
    fields: RowFields,
    rules: RecordRules,
    task_args: Mapping[str, Any],
    source: Any = None,
    before: int | None = None,
    progress: Any = None,
) -> tuple[Any, Skipped]:
    """``ds`` with the rows stored unchanged dropped before embedding, and what counts them.

    Args:
        ds: The checked dataset (before the embedding stage).
        store: The store as the driver opened it.
        target: Where it is (workers open it by URL when they may).
        fields: Which columns make a record.
        rules: The store's record rules (the records are hashed as the sink will write them).
        task_args: Ray options of the stage's tasks (their CPUs).
        source: The dataset the driver's pass reads (the corpus before the check stage, whose
            errors the job itself reports); None: ``ds``.
        before: Points the collection held before the job: 0 skips nothing and adds no stage.
        progress: The job's counter actor (:mod:`instructor_ray.progress`): told the records skipped.
    """
    if before == 0:
        return ds, Skipped()
    if not store.single_writer and target.opener is None:
        import ray

        from .progress import on_driver_node

        tally = _tally_class().options(**on_driver_node(ray)).remote()  # a lost worker node keeps the count
        kwargs = {"fields": fields, "rules": rules, "target": target, "tally": tally, "progress": progress}
        stage = ds.map_batches(drop_unchanged_rows, batch_format="pyarrow", batch_size=None, fn_kwargs=kwargs,
                               **task_args)  # fmt: skip
        return stage, Skipped(tally=tally)
    try:
        ids = unchanged_ids(ds if source is None else source, fields, rules, store.sink(target.collection), task_args)
    except Exception:  # the pass only saves work: a corpus or store error is the job's to report, in its words
        logger.warning("could not read which records are stored unchanged; embedding all of them", exc_info=True)
        ids = set()
    if not ids:
        return ds, Skipped()
    if progress is not None:
        progress.add.remote(skipped=len(ids))
    kwargs = {"fields": fields, "ids": frozenset(ids)}
    stage = ds.map_batches(drop_stored_ids, batch_format="pyarrow", batch_size=None, fn_kwargs=kwargs, **task_args)
    return stage, Skipped(count=len(ids))


def with_skipped(report: IngestReport, skipped: int, *, embedded_here: bool) -> IngestReport:
    """The job's report with the rows dropped as unchanged: ``seen`` counts them, ``unchanged`` is
    their number, ``embedded`` the rows the cluster embedded (every row the write stage got:
    ``embedded_here`` False; the driver's engine counted them itself: True)."""
    embedded = report.embedded if embedded_here else report.seen
    return replace(report, seen=report.seen + skipped, unchanged=report.unchanged + skipped, embedded=embedded)
