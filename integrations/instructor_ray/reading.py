"""The Ray path's reader: the core readers (``instructor_core.ingest.readers``) run on each shard.

A corpus becomes a dataset of shard paths (``ray.data.from_items``) and one ``map_batches`` stage
that runs :func:`~instructor_core.ingest.readers.read_numbered` (JSONL, CSV/TSV, Parquet) or the
text-folder reader on each shard and yields its records as blocks. The id fallback ("id", else
BEIR's "_id"), ``title_field``, ``metadata_fields`` and the record checks are the single-process
ones because they are the same code. Each row keeps its shard and line, so a bad record is named
``shard:line: id 'x': ...``; the metadata travels as a JSON string (rows with different keys
survive Arrow) that :func:`instructor_ray.blocks.block_records` decodes.

Nothing here imports Ray or pyarrow at module level: :func:`shard_rows` is plain Python.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from instructor_core.ingest.readers import ReadOptions, TextFolderReader, corpus_shards, read_numbered
from instructor_core.ingest.records import RecordError, validate_batch

from .blocks import LINE_COLUMN, METADATA_JSON_COLUMN, ShardRecordError, rebuild_error

__all__ = ["ReadOptions", "corpus_shards", "read_shard_batch", "shard_rows"]

#: The column each row's shard file is kept in (the same name as ``ingest.PATH_COLUMN``).
SHARD_COLUMN = "path"
#: Rows per block a shard's reader yields.
CHUNK_ROWS = 1024


def _chunk(rows: list[tuple[int, dict]], shard: str) -> dict[str, list]:
    """Validated columns of ``(line, record)`` pairs (the core's record checks, duplicates aside)."""
    try:
        records = validate_batch([r for _, r in rows], check_duplicates=False)
    except RecordError as exc:
        index = exc.index or 0
        rid = exc.record_id
        named = f"id {rid!r}: " if rid is not None else ""
        raise rebuild_error(f"{shard}:{rows[index][0]}: {named}{exc.reason}", rid, shard) from None
    return {
        "id": [r.id for r in records],
        "text": [r.text for r in records],
        METADATA_JSON_COLUMN: [json.dumps(dict(r.metadata), ensure_ascii=False, default=str) for r in records],
        SHARD_COLUMN: [shard] * len(records),
        LINE_COLUMN: [line for line, _ in rows],
    }


def _numbered(shard: str, options: ReadOptions) -> Iterator[tuple[int, dict]]:
    if Path(shard).is_dir():
        yield from enumerate(TextFolderReader(shard, patterns=options.patterns), start=1)
        return
    yield from read_numbered(
        shard,
        id_field=options.id_field,
        text_field=options.text_field,
        metadata_fields=options.metadata_fields,
        title_field=options.title_field,
    )


def shard_rows(shard: str, options: ReadOptions, chunk_rows: int = CHUNK_ROWS) -> Iterator[dict[str, list]]:
    """A shard's records as column chunks (``id``, ``text``, the metadata as JSON, shard, line),
    read and checked by the core readers; plain Python (no Ray, no pyarrow).

    Raises:
        ShardRecordError: The first bad line or record: ``"<shard>:<line>: ..."`` with the id where
            there is one (the reader's own message where it names the file and line itself).
    """
    rows: list[tuple[int, dict]] = []
    try:
        for pair in _numbered(shard, options):
            rows.append(pair)
            if len(rows) >= chunk_rows:
                yield _chunk(rows, shard)
                rows = []
    except ShardRecordError:
        raise
    except RecordError as exc:  # the reader's message names the file and the line
        named = f" (id {exc.record_id!r})" if exc.record_id is not None else ""
        raise rebuild_error(f"{exc.reason}{named}", exc.record_id, shard) from None
    if rows:
        yield _chunk(rows, shard)


def read_shard_batch(batch: Any, options: ReadOptions) -> Iterator[Any]:
    """``map_batches`` function over a block of shard paths: each shard's records as pyarrow tables."""
    pa = importlib.import_module("pyarrow")  # Ray's dependency; untyped

    paths = batch[SHARD_COLUMN] if isinstance(batch, dict) else batch.column(SHARD_COLUMN).to_pylist()
    for shard in paths:
        for columns in shard_rows(str(shard), options):
            yield pa.table(columns)
