"""The skip rule of a Ray resume (``instructor_ray.resume``) through its own functions, without a
cluster: a row is skipped only where the store holds its id with the same content hash. A fake
dataset applies ``map_batches`` and ``iter_batches`` to one pyarrow table, as Ray Data would to
its blocks; the cluster runs of the same rule are tests/test_ray_resume.py (system tier)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from instructor_core.ingest.records import Record, RecordRules, content_hash

pa = pytest.importorskip("pyarrow")
resume = pytest.importorskip("instructor_ray.resume")
from instructor_ray.blocks import RowFields  # noqa: E402


class _Dataset:
    """The two Ray Data calls ``unchanged_ids`` makes, over one in-memory table."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def map_batches(self, fn, *, batch_format: str, batch_size: Any, fn_kwargs: dict, **task_args: Any) -> _Dataset:
        assert batch_format == "pyarrow"
        return _Dataset(fn(self.table, **fn_kwargs))

    def iter_batches(self, *, batch_size: int, batch_format: str):
        for start in range(0, self.table.num_rows, batch_size):
            yield self.table.slice(start, batch_size)


class _Sink:
    def __init__(self, stored: dict[str, str]) -> None:
        self.stored, self.asked = stored, []

    def stored_hashes(self, ids: Sequence[str]) -> dict[str, str]:
        self.asked.append(list(ids))
        return {i: self.stored[i] for i in ids if i in self.stored}


ROWS = [{"id": f"r-{i}", "text": f"passage {i}", "n": i} for i in range(6)]


def _hash(row: dict) -> str:
    return content_hash(Record(row["id"], row["text"], {"n": row["n"]}))


def test_only_ids_stored_with_the_same_hash_are_unchanged():
    stored = {
        "r-0": _hash(ROWS[0]),  # unchanged
        "r-1": _hash({**ROWS[1], "text": "an older text"}),  # the text changed since
        "r-2": _hash({**ROWS[2], "n": 99}),  # the metadata changed since
        "r-3": _hash(ROWS[3]),  # unchanged
        "r-9": "0" * 32,  # stored, not in the corpus
    }  # r-4, r-5: never stored
    sink = _Sink(stored)
    found = resume.unchanged_ids(_Dataset(pa.Table.from_pylist(ROWS)), RowFields(), RecordRules(), sink, {})
    assert found == {"r-0", "r-3"}
    assert sorted(i for batch in sink.asked for i in batch) == sorted(r["id"] for r in ROWS)


def test_a_sink_without_stored_hashes_skips_nothing():
    assert resume.unchanged_ids(_Dataset(pa.Table.from_pylist(ROWS)), RowFields(), RecordRules(), object(), {}) == set()
