"""Rows of a Ray Data block as validated records, with errors that name the record id and its shard.

The checks are the core's (``instructor_core.ingest.records.validate_batch``: missing id or text, a
non-string id or text, duplicate ids, metadata the store cannot hold); this module only maps
columns to records and says which shard file a bad row came from.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from instructor_core.errors import InputError
from instructor_core.ingest.records import Record, RecordError, RecordRules, validate_batch

__all__ = [
    "LINE_COLUMN",
    "METADATA_JSON_COLUMN",
    "RowFields",
    "ShardRecordError",
    "block_records",
    "check_block",
    "rebuild_error",
]


#: The column a shard's line (1-based; a Parquet row's number) is kept in by the Ray reader
#: (``instructor_ray.reading``): named in errors, never stored.
LINE_COLUMN = "_instructor_line"
#: The column the Ray reader keeps each record's metadata in, as a JSON object string (rows with
#: different keys survive Arrow); decoded here.
METADATA_JSON_COLUMN = "_instructor_metadata"


class ShardRecordError(RecordError):
    """A bad record found by a Ray worker; names the record id and the shard file it came from.

    Attributes:
        shard: The file the row was read from, where the dataset has a path column.
    """

    def __init__(self, message: str, *, record_id: Any = None, shard: str | None = None) -> None:
        # The message already names the record; RecordError's own "id ...: " prefix is not added.
        ValueError.__init__(self, f"{shard}: {message}" if shard else message)
        self.index = None
        self.record_id = record_id
        self.shard = shard

    def __reduce__(self) -> tuple:
        # Ray ships exceptions between processes by pickling; keep the message as built.
        return (rebuild_error, (str(self), self.record_id, self.shard))


def rebuild_error(text: str, record_id: Any, shard: str | None) -> ShardRecordError:
    """A ShardRecordError with exactly the message ``text``."""
    error = ShardRecordError.__new__(ShardRecordError)
    ValueError.__init__(error, text)
    error.index, error.record_id, error.shard = None, record_id, shard
    return error


@dataclass(frozen=True)
class RowFields:
    """Which columns of a dataset make a record.

    Attributes:
        id_field: Column with the document id (int ids become str, as ``read_jsonl`` does).
        text_field: Column with the text.
        metadata_fields: Columns kept as metadata; None keeps a "metadata" struct column if there is
            one, else every column not named here.
        path_column: Column with each row's source file (named in errors, never stored).
        output_column: Column with the vectors (never stored as metadata).
        instruction_column: Column with per-row instructions (never stored as metadata).
    """

    id_field: str = "id"
    text_field: str = "text"
    metadata_fields: tuple[str, ...] | None = None
    path_column: str | None = None
    output_column: str = "embedding"
    instruction_column: str | None = None

    def metadata_columns(self, names: Sequence[str]) -> list[str] | None:
        """The metadata columns of a block with columns ``names`` (None: the "metadata" struct)."""
        if self.metadata_fields is not None:
            missing = [f for f in self.metadata_fields if f not in names]
            if missing:
                raise InputError(f"the dataset has no metadata column(s) {missing} (columns: {list(names)})")
            return list(self.metadata_fields)
        if "metadata" in names:
            return None
        skip = {self.id_field, self.text_field, self.path_column, self.output_column, self.instruction_column,
                LINE_COLUMN}  # fmt: skip
        return [n for n in names if n not in skip]


def _metadatas(table: Any, fields: RowFields, names: list[str], n: int) -> list[Any]:
    if METADATA_JSON_COLUMN in names:  # the Ray reader's rows: metadata chosen when the shard was read
        return [json.loads(m) for m in table.column(METADATA_JSON_COLUMN).to_pylist()]
    meta_columns = fields.metadata_columns(names)
    if meta_columns is None:
        return list(table.column("metadata").to_pylist())
    columns = {name: table.column(name).to_pylist() for name in meta_columns}
    return [{name: values[i] for name, values in columns.items()} for i in range(n)]


def _positions(table: Any, fields: RowFields, names: list[str], n: int) -> list[str | None]:
    """Each row's shard, with ``:line`` where the block has the reader's line column."""
    if fields.path_column is None or fields.path_column not in names:
        return [None] * n
    shards = table.column(fields.path_column).to_pylist()
    if LINE_COLUMN not in names:
        return shards
    return [f"{s}:{line}" for s, line in zip(shards, table.column(LINE_COLUMN).to_pylist(), strict=True)]


def _rows(table: Any, fields: RowFields) -> tuple[list[dict], list[str | None]]:
    names = list(table.column_names)
    for needed, what in ((fields.id_field, "id"), (fields.text_field, "text")):
        if needed not in names:
            raise InputError(f"the dataset has no {what} column {needed!r} (columns: {names})")
    ids = table.column(fields.id_field).to_pylist()
    texts = table.column(fields.text_field).to_pylist()
    shards = _positions(table, fields, names, len(ids))
    metadatas = _metadatas(table, fields, names, len(ids))
    rows = []
    for rid, text, metadata in zip(ids, texts, metadatas, strict=True):
        if isinstance(rid, int) and not isinstance(rid, bool):
            rid = str(rid)  # JSON numbers as ids: the only conversion made, as in read_jsonl
        rows.append({"id": rid, "text": text, "metadata": metadata})
    return rows, shards


def block_records(table: Any, fields: RowFields, rules: RecordRules | None = None) -> list[Record]:
    """The rows of a pyarrow block as records validated with a store's ``rules``, in order.

    Raises:
        ShardRecordError: For the first bad row: ``"<shard>: id 'x': <what is wrong>"``.
    """
    rows, shards = _rows(table, fields)
    try:
        return validate_batch(rows, rules=rules or RecordRules())
    except RecordError as exc:
        row = exc.index if exc.index is not None else 0
        rid = exc.record_id if exc.record_id is not None else rows[row].get("id")
        name = f"id {rid!r}: " if rid is not None else f"row {row} of its block (no id): "
        raise ShardRecordError(f"{name}{exc.reason}", record_id=rid, shard=shards[row]) from None


def check_block(table: Any, fields: RowFields, rules: RecordRules) -> Any:
    """``map_batches`` function: validate a block before anything of it is embedded; returns it unchanged."""
    block_records(table, fields, rules)
    return table
