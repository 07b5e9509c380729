"""``ingest_dataset``: validate, embed and write a Ray dataset into a store in one call, and
``read_corpus_dataset``: JSONL / Parquet / CSV shards as a Ray dataset that remembers each row's file.

Any store registered under ``instructor.stores`` works, through the core's store protocol. A store
the workers may write (a server) is written by the Ray write tasks through :class:`StoreDatasink`; a
``single_writer`` store (an embedded folder one process must own: ``chroma:DIR``, ``qdrant:DIR``) is
written by the driver through the same sink, with the streamed blocks, in order.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from instructor_core.errors import InputError
from instructor_core.ingest.engine import IngestReport, RetryPolicy
from instructor_core.ingest.readers import DEFAULT_TEXT_PATTERNS
from instructor_core.ingest.records import Record, RecordError
from instructor_core.ingest.store_ops import prepare_collection, translated, write_records
from instructor_core.ingest.stores import Store
from instructor_core.instructions import Instructions
from instructor_core.model.load_options import LoadOptions

from . import resume
from .blocks import RowFields, block_records, check_block, rebuild_error
from .checking import DuplicatePolicy, check_dataset
from .embed import DEFAULT_BATCH_SIZE, embed_dataset
from .failures import expected_error_in
from .sinks import DEFAULT_RETRY, StoreDatasink, finish_sink, load_driver_encoder, reporting, vectors_of
from .stores import StoreTarget, count_points, open_target

__all__ = ["PATH_COLUMN", "ingest_dataset", "read_corpus_dataset"]

logger = logging.getLogger("instructor_ray")

#: The column ``read_corpus_dataset`` keeps each row's source file in (named in errors, never stored):
#: Ray's own ``include_paths`` column, so no extra stage renames it. A corpus field of that name
#: would be shadowed: keep it under another name.
PATH_COLUMN = "path"


def read_corpus_dataset(
    corpus: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    override_num_blocks: int | None = None,
    num_cpus: float | None = None,
    id_field: str | None = "id",
    text_field: str = "text",
    metadata_fields: Sequence[str] | None = None,
    title_field: str | None = None,
    patterns: str | Sequence[str] = DEFAULT_TEXT_PATTERNS,
) -> Any:
    """A Ray dataset over corpus shards: one file, a folder, a glob, or a list of them.

    Each shard is read by the single-process readers (``instructor_core.ingest.readers``: JSONL
    ``.jsonl``/``.ndjson``/``.json``, CSV/TSV, Parquet; a folder without such files is a folder of
    text files, read as one shard), in parallel, one read task per shard: the same id fallback
    ("id", else BEIR's "_id"), ``title_field``, ``metadata_fields`` and record checks, by
    construction. The rows have the columns ``id``, ``text``, the metadata (a JSON string that
    :func:`~instructor_ray.blocks.block_records` decodes), :data:`PATH_COLUMN` (the shard) and the
    shard's line, so a bad record is named ``shard:line: id 'x': ...``. ``num_cpus`` is what each
    read task reserves (Ray's default: 1); keep it at or below what an embedding actor leaves free
    on a node, or reads cannot be scheduled there.

    Raises:
        FileNotFoundError: A path or glob that names no file.
        InputError: Files of several kinds, or of an unknown kind; no id field with several shards.
    """
    import ray

    from instructor_core.ingest.readers import ReadOptions, corpus_shards

    from .reading import read_shard_batch

    shards = corpus_shards(corpus)  # what the path means: the same for every engine
    if id_field is None and len(shards) > 1:
        raise InputError("records numbered by position (no id field) need one shard: their numbers would collide")
    options = ReadOptions(
        id_field=id_field,
        text_field=text_field,
        metadata_fields=tuple(metadata_fields) if metadata_fields is not None else None,
        title_field=title_field,
        patterns=(patterns,) if isinstance(patterns, str) else tuple(patterns),
    )
    items = [{PATH_COLUMN: shard} for shard in shards]
    paths: Any = ray.data.from_items(items, override_num_blocks=override_num_blocks or len(shards))
    task_args: dict[str, Any] = {} if num_cpus is None else {"num_cpus": num_cpus}
    return paths.map_batches(read_shard_batch, batch_format="pyarrow", batch_size=1, fn_kwargs={"options": options},
                             **task_args)  # fmt: skip


_REMOTE_RECORD_ERROR = re.compile(r"ShardRecordError: (.+)")


def _record_error_in(exc: BaseException) -> RecordError | None:
    """The RecordError a Ray job failed with, found through Ray's wrappers (None if there is none).

    A write task's error arrives as a ``RayTaskError`` that is also the original class; a map
    stage's arrives wrapped in ``UserCodeException``, whose cause did not cross the process
    boundary: only its remote traceback, which names the error and carries its one-line message.
    """
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, RecordError):
            return current
        stack.extend([current.__cause__, current.__context__, getattr(current, "cause", None)])
    found = _REMOTE_RECORD_ERROR.findall(str(exc))
    return rebuild_error(found[-1].strip(), None, None) if found else None


def _duplicates(ds: Any, fields: RowFields, limit: int = 5) -> list[tuple[Any, list[str]]]:
    """Ids that occur more than once in the source dataset, with the shards they occur in."""
    from ray.data.aggregate import Count

    counted = ds.select_columns([fields.id_field]).groupby(fields.id_field).aggregate(Count(alias_name="n"))
    dup_ids = [row[fields.id_field] for row in counted.filter(lambda row: row["n"] > 1).take(limit)]
    if not dup_ids:
        return []
    wanted = set(dup_ids)
    keep = [fields.id_field] + ([fields.path_column] if fields.path_column else [])
    rows = ds.select_columns(keep).filter(lambda row: row[fields.id_field] in wanted).take(limit * 10)
    shards: dict[Any, list[str]] = {i: [] for i in dup_ids}
    for row in rows:
        if fields.path_column and row.get(fields.path_column) not in shards[row[fields.id_field]]:
            shards[row[fields.id_field]].append(row[fields.path_column])
    return [(i, shards[i]) for i in dup_ids]


def _write_from_driver(
    embedded: Any,
    store: Store,
    collection: str,
    fields: RowFields,
    batch_size: int,
    show_progress: bool,
    progress: Any = None,
) -> IngestReport:
    """Stream the embedded rows to this process and write them through the store's sink with the
    single-process engine (validation, duplicate ids over the whole ingest, ordered writes,
    retries), with the cluster's vectors: each record's, handed back by its id (ids are unique:
    the engine refuses a duplicate)."""
    made: dict[str, Any] = {}

    def rows() -> Iterator[dict]:
        for table in embedded.iter_batches(batch_size=batch_size, batch_format="pyarrow"):
            records = block_records(table, fields)
            for record, vector in zip(records, vectors_of(table, fields.output_column), strict=True):
                made.setdefault(record.id, vector.tolist())
                yield {"id": record.id, "text": record.text, "metadata": dict(record.metadata)}

    def embed(records: Sequence[Record]) -> list[Any]:
        return [made.pop(r.id) for r in records]

    with translated(store):  # the store's errors as one line, as a single-process ingest has them
        sink = store.sink(collection)
        report = write_records(reporting(sink, progress), collection, rows(), embed, batch_size=batch_size,
                               overlap=False, show_progress=show_progress)  # fmt: skip
        finish_sink(sink)  # the store's work after the last write (a quantized Edge shard's optimize)
        return report


def _write(
    embedded: Any,
    store: Store,
    target: StoreTarget,
    fields: RowFields,
    batch_size: int,
    retry: RetryPolicy,
    write_concurrency: int | None,
    task_args: dict[str, Any],
    before: int,
    show_progress: bool,
    progress: Any = None,
) -> tuple[IngestReport, int | None]:
    """Write the embedded rows: from this process into a single-writer store, else from the Ray
    write tasks; the report and the points the collection holds after (None: not counted)."""
    try:
        if store.single_writer:
            logger.info("%s is embedded: the cluster embeds, this process writes", store.describe())
            # the single-process engine refuses a duplicate id itself: no count to compare
            done = _write_from_driver(embedded, store, target.collection, fields, batch_size, show_progress, progress)
            return done, None
        sink = StoreDatasink(target, target.collection, "", fields=fields, batch_size=batch_size, retry=retry)
        sink._state.before = before  # the collection was prepared on the driver
        sink.progress = progress
        embedded.write_datasink(sink, concurrency=write_concurrency, ray_remote_args=dict(task_args))
        report = sink.report
        assert report is not None
        return report, count_points(store, target)
    except Exception as exc:
        found = _record_error_in(exc)
        if found is None:
            expected = expected_error_in(exc)  # a store down or refusing, found through Ray's wrappers
            if expected is None or expected is exc:
                raise
            raise expected from None
        raise rebuild_error(str(found), found.record_id, getattr(found, "shard", None)) from None


def ingest_dataset(
    ds: Any,
    store: str | StoreTarget,
    collection: str,
    model: str | os.PathLike[str],
    *,
    id_field: str = "id",
    text_field: str = "text",
    metadata_fields: Sequence[str] | None = None,
    path_column: str | None = PATH_COLUMN,
    query_instruction: str | None = None,
    document_instruction: str | None = None,
    options: LoadOptions | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    concurrency: int | tuple[int, int] = 1,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    write_concurrency: int | None = None,
    task_num_cpus: float | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    encoder: Any = None,
    show_progress: bool = False,
    skip_unchanged: bool = True,
    on_duplicate: DuplicatePolicy = "error",
    progress: Any = None,
) -> IngestReport:
    """Validate, embed (on the cluster) and upsert a dataset of records into a collection.

    Every block is checked with the core's record rules before it is embedded; a bad record fails
    the job with :class:`RecordError` naming its id and shard file. Blocks written before the
    failure stay (each point complete and under its deterministic id), so a re-run after the fix
    completes with exactly one point per id. Writes are upserts under deterministic ids, so Ray's
    retries of a lost task rewrite, never duplicate.

    Args:
        ds: A ``ray.data.Dataset`` of records (see :func:`read_corpus_dataset`).
        store: ``chroma+http://H:P`` or ``qdrant+http://H:P`` (written by the workers), or
            ``chroma:DIR`` / ``qdrant:DIR`` (embedded: the cluster embeds and this process writes);
            or a :class:`StoreTarget`.
        collection: Collection name; created for the model if absent, else checked against it
            (model, instructions, dimension) before anything is written.
        model: Model folder or hub id; every actor loads it (a folder must be at this path on every
            node), and the driver loads it once on CPU to check the collection.
        id_field: Column with the document id.
        text_field: Column with the text.
        metadata_fields: Columns kept as metadata; None keeps every other column (or a "metadata"
            struct column).
        path_column: Column with each row's shard file (named in errors, never stored).
        query_instruction: Stored with the collection for searches; None: the model's default.
        document_instruction: The instruction documents are embedded with; None: the model's default.
        options: How the actors load the model (:class:`~instructor_core.LoadOptions`: backend,
            dtype, max_length, instructor, ...); the driver loads it on CPU with the same options.
        batch_size: Rows per actor call and per upsert.
        concurrency: Embedding actors (or ``(min, max)``).
        num_cpus: CPUs per actor (also its torch threads); None: 1 (0 with GPUs).
        num_gpus: GPUs per actor.
        write_concurrency: Most write tasks at once (server stores): the back-pressure on the store.
        task_num_cpus: CPUs each validation and write task reserves (Ray's default: 1). On nodes
            whose actors leave less than a whole CPU free, set it (and the reader's) lower.
        retry: Attempts and backoff for upserts that fail on the transport.
        encoder: An already-loaded encoder for ``model`` (driver side, to check the collection).
        show_progress: The single-process engine's progress bar while the driver writes an embedded
            store (Ray Data's own progress is set in its ``DataContext``).
        skip_unchanged: Drop, before the embedding stage, the rows whose id the collection holds with
            the same content hash (:mod:`instructor_ray.resume`); False embeds and writes them all.
        on_duplicate: An id that occurs twice in the dataset: "error" (naming both copies' shard and
            line), or keep the "first" or "last" copy (in shard path and line order); applied by a
            check pass over the whole dataset before the collection is made or anything embedded.
        progress: A counter actor (:func:`instructor_ray.progress.make_counter`) the actors report
            records embedded to and the writers records written (what the CLI's watchdog polls).

    Returns:
        IngestReport(seen, written, skipped, retried, batches).

    Raises:
        RecordError: A bad record (id, shard and line named), or an id that occurs twice
            (``on_duplicate="error"``: both copies named), found before the collection is made.
        StoreError: The store unreachable or refusing, found through Ray's wrappers.
        ValueError: The collection does not fit the model.
    """
    target = store if isinstance(store, StoreTarget) else StoreTarget(store, collection)
    model = os.fspath(model)
    fields = RowFields(
        id_field=id_field,
        text_field=text_field,
        metadata_fields=tuple(metadata_fields) if metadata_fields is not None else None,
        path_column=path_column,
    )
    if encoder is None:
        encoder = load_driver_encoder(model, None, options or LoadOptions())
    encoder.instructions = encoder.instructions.replace(query=query_instruction, document=document_instruction)
    instructions: Instructions = encoder.instructions

    task_args = {} if task_num_cpus is None else {"num_cpus": task_num_cpus}
    checked_pass = check_dataset(ds, fields, on_duplicate=on_duplicate, task_args=task_args)  # before a collection
    ds = checked_pass.ds
    if progress is not None:
        progress.set_total.remote(checked_pass.records)  # the progress line's "of N" and ETA
    opened = open_target(target)
    try:
        _, before = prepare_collection(opened, target.collection, encoder, model=model)  # before anything is embedded
        if progress is not None:
            progress.add.remote(started=1)  # the collection is checked: the watchdog's first step
        rules = opened.sink(target.collection).rules
        kwargs = {"fields": fields, "rules": rules}
        checked = ds.map_batches(check_block, batch_format="pyarrow", batch_size=None, fn_kwargs=kwargs, **task_args)
        skipped = resume.Skipped()
        if skip_unchanged:
            checked, skipped = resume.skip_unchanged(checked, opened, target, fields, rules, task_args, ds, before,
                                                     progress=progress)  # fmt: skip
        embedded = embed_dataset(
            checked,
            model,
            role="document",
            instruction=instructions.document,
            text_column=text_field,
            output_column=fields.output_column,
            batch_size=batch_size,
            concurrency=concurrency,
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            options=replace(options or LoadOptions(), max_length=encoder.max_length),
            id_column=id_field,
            path_column=path_column,
            progress=progress,
        )
        report, after = _write(embedded, opened, target, fields, batch_size, retry, write_concurrency, task_args,
                               before, show_progress, progress)  # fmt: skip
        report = resume.with_skipped(report, skipped.total(), embedded_here=opened.single_writer)
    finally:
        opened.close()
    if after is not None and before == 0 and after != report.written:
        duplicates = _duplicates(ds, fields)
        named = "; ".join(f"id {i!r} in {', '.join(s) or 'one shard'}" for i, s in duplicates)
        raise RecordError(
            f"{report.written} records were written but the new collection holds {after} points: "
            f"some ids occur more than once in the corpus ({named}); the last write of each won"
        )
    return report
