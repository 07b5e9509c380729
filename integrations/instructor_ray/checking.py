"""The Ray path's check pass: every record validated and every id seen once, before a collection is
made or anything embedded.

The pass runs the core's record checks on every block (on the cluster) and streams only each
row's id, shard and line to the driver, which keeps the ids in
:class:`~instructor_core.ingest.ids.SeenIds` (bounded memory: past a million ids they move to a
temporary SQLite file) and applies the duplicate policy across shards: "error" names both copies'
shard and line; "first"/"last" keep the copy earliest/latest in (shard path, line) order, and the
others are dropped from the dataset before it is embedded.
"""

from __future__ import annotations

import importlib
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from instructor_core.errors import InputError
from instructor_core.ingest.ids import SeenIds
from instructor_core.ingest.records import RecordError

from .blocks import LINE_COLUMN, RowFields, block_records
from .failures import expected_error_in

__all__ = ["Checked", "DuplicatePolicy", "check_dataset", "drop_positions", "duplicate_positions"]

DuplicatePolicy = Literal["error", "first", "last"]
Position = tuple[str, int]


def _keys(table: Any, fields: RowFields) -> Any:
    """``map_batches`` function: check a block's records; keep only id, shard and line."""
    pa = importlib.import_module("pyarrow")  # Ray's dependency; untyped

    names = table.column_names
    if LINE_COLUMN in names:  # the Ray reader's rows: checked by the core's rules as the shard was read
        ids = table.column(fields.id_field).to_pylist()
    else:
        ids = [r.id for r in block_records(table, fields)]
    n = len(ids)
    shards = table.column(fields.path_column) if fields.path_column in names else pa.nulls(n, pa.string())
    lines = table.column(LINE_COLUMN) if LINE_COLUMN in names else pa.nulls(n, pa.int64())
    return pa.table({"id": ids, "shard": shards, "line": lines})


class _Codes:
    """Positions ``(shard, line)`` as the ints SeenIds keeps: shard number and line in one int."""

    def __init__(self) -> None:
        self.shards: list[str] = []
        self.index: dict[str, int] = {}

    def encode(self, position: Position) -> int:
        shard, line = position
        if shard not in self.index:
            self.index[shard] = len(self.shards)
            self.shards.append(shard)
        return (self.index[shard] << 32) | line

    def decode(self, code: int) -> Position:
        return self.shards[code >> 32], code & 0xFFFFFFFF


def _where(position: Position) -> str:
    shard, line = position
    return f"{shard}:{line}" if line >= 0 else shard


def duplicate_positions(
    batches: Iterable[tuple[Sequence[str], Sequence[str | None], Sequence[int | None]]],
    on_duplicate: DuplicatePolicy = "error",
    *,
    max_in_memory: int = 1_000_000,
) -> set[Position]:
    """The positions of the copies to drop, from ``(ids, shards, lines)`` batches in any order.

    Raises:
        RecordError: ``on_duplicate="error"`` and an id occurs twice: both copies named.
        InputError: "first"/"last" where rows have no shard and line to tell the copies apart.
    """
    codes = _Codes()
    copies: dict[str, list[Position]] = {}  # ids seen more than once: every copy's position
    with SeenIds(max_in_memory=max_in_memory) as seen:
        for ids, shards, lines in batches:
            fresh: dict[str, Position] = {}
            for rid, shard, line in zip(ids, shards, lines, strict=True):
                position = (shard or "the dataset", -1 if line is None else int(line))
                prior = fresh.get(rid)
                if prior is None:
                    code = seen.get(rid)
                    prior = None if code is None else codes.decode(code)
                if prior is None:
                    fresh[rid] = position
                    continue
                if on_duplicate == "error":
                    first, second = sorted([prior, position])
                    raise RecordError(
                        f"id {rid!r} occurs twice: {_where(first)} and {_where(second)} (--on-duplicate first or "
                        "last keeps one copy)"
                    )
                if position[1] < 0:
                    raise InputError(
                        f"on_duplicate={on_duplicate!r} needs each row's shard and line (read_corpus_dataset's rows); "
                        f"id {rid!r} occurs twice"
                    )
                copies.setdefault(rid, [prior]).append(position)
            seen.add_many((codes.encode(p), rid) for rid, p in fresh.items())
    drop: set[Position] = set()
    for positions in copies.values():
        keep = min(positions) if on_duplicate == "first" else max(positions)
        drop.update(p for p in positions if p != keep)
    return drop


def drop_positions(table: Any, drop: frozenset[Position], fields: RowFields) -> Any:
    """``map_batches`` function: the block without the rows at ``drop`` (shard, line)."""
    pa = importlib.import_module("pyarrow")  # Ray's dependency; untyped

    shards = table.column(fields.path_column).to_pylist()
    lines = table.column(LINE_COLUMN).to_pylist()
    keep = [(s, int(n)) not in drop for s, n in zip(shards, lines, strict=True)]
    return table.filter(pa.array(keep, type=pa.bool_()))


def _batches(keyed: Any, seen: list[int]) -> Generator[tuple[list, list, list], None, None]:
    """The check pass's ``(ids, shards, lines)`` batches; ``seen[0]`` counts their rows."""
    for table in keyed.iter_batches(batch_format="pyarrow", batch_size=4096):
        seen[0] += table.num_rows
        yield table.column("id").to_pylist(), table.column("shard").to_pylist(), table.column("line").to_pylist()


@dataclass(frozen=True)
class Checked:
    """A checked dataset and what the check pass counted.

    Attributes:
        ds: The dataset, less the copies ``on_duplicate`` drops.
        records: Its records (the rows read, less the dropped copies).
    """

    ds: Any
    records: int


def check_dataset(
    ds: Any, fields: RowFields, *, on_duplicate: DuplicatePolicy = "error", task_args: dict[str, Any] | None = None
) -> Checked:
    """Check every record of ``ds`` and apply ``on_duplicate`` across it, before anything is written.

    Returns:
        ``ds`` less the copies ``on_duplicate`` drops, and its number of records.

    Raises:
        RecordError: The first bad record (shard, line and id named) or a duplicate id ("error").
        InstructorError: Any other expected failure a read task met (found through Ray's wrappers).
    """
    if on_duplicate not in ("error", "first", "last"):
        raise InputError(f"on_duplicate must be 'error', 'first' or 'last', got {on_duplicate!r}")
    keyed = ds.map_batches(_keys, batch_format="pyarrow", batch_size=None, fn_kwargs={"fields": fields},
                           **(task_args or {}))  # fmt: skip
    seen = [0]
    batches = _batches(keyed, seen)
    try:
        drop = duplicate_positions(batches, on_duplicate)
    except Exception as exc:
        found = expected_error_in(exc)
        if found is None or found is exc:
            raise
        raise found from None
    finally:
        batches.close()  # Ray's iterator ends while Ray is still up, not when it is collected
    if not drop:
        return Checked(ds, seen[0])
    kwargs = {"drop": frozenset(drop), "fields": fields}
    kept = ds.map_batches(drop_positions, batch_format="pyarrow", batch_size=None, fn_kwargs=kwargs,
                          **(task_args or {}))  # fmt: skip
    return Checked(kept, seen[0] - len(drop))
