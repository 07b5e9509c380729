"""How the Ray engine writes: its write tasks and its driver go through the core's one write path
(``store_ops.write_records``), so a store's ``max_batch_size`` and ``finish`` hold on Ray as they do on
the local engine. In this process, without a cluster: the datasink's ``write`` is what a write task runs."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from tests.plugin_store import LIMIT_FILE, JsonDirStore, open_store

pytest.importorskip("ray")
pa = pytest.importorskip("pyarrow")

from instructor_core.ingest.store_ops import write_records  # noqa: E402
from instructor_ray.sinks import StoreDatasink  # noqa: E402
from instructor_ray.stores import StoreTarget  # noqa: E402


def _limited_store(folder) -> JsonDirStore:
    folder.mkdir()
    (folder / LIMIT_FILE).write_text("2", encoding="utf-8")
    return open_store(str(folder))


def _table(n: int, dim: int = 4):
    from ray.data.extensions import ArrowTensorArray

    vectors = np.arange(n * dim, dtype=np.float32).reshape(n, dim) + 1.0
    return pa.table({"id": [f"d{i}" for i in range(n)], "text": [f"passage {i}" for i in range(n)],
                     "embedding": ArrowTensorArray.from_numpy(vectors)})  # fmt: skip


def test_a_write_task_honours_max_batch_size_and_calls_finish_as_the_core_does(tmp_path, tiny_bert_path,
                                                                                tiny_bert_encoder):  # fmt: skip
    folder = tmp_path / "db"
    store = _limited_store(folder)
    target = StoreTarget(f"jsondir:{folder}", "docs", opener=functools.partial(open_store, str(folder)))
    datasink = StoreDatasink(target, "docs", str(tiny_bert_path), encoder=tiny_bert_encoder)
    datasink.prepare()  # the collection, made on the driver
    counts = datasink.write([_table(5)], None)
    assert store.calls() == ["write 2", "write 2", "write 1", "finish"]
    assert (counts.rows, counts.batches) == (5, 3)
    assert sorted(store.read("docs")["points"]) == [f"d{i}" for i in range(5)]

    # the core's own path, for the same sink: the same batches
    core = _limited_store(tmp_path / "core")
    core._create("docs", store._layout("docs"))  # type: ignore[arg-type]
    rows = [{"id": f"d{i}", "text": f"passage {i}"} for i in range(5)]
    write_records(core.sink("docs"), "docs", rows, lambda rs: [[1.0] * 4 for _ in rs], show_progress=False)
    assert core.calls() == ["write 2", "write 2", "write 1"]


def test_a_write_task_reports_each_upsert_to_the_progress_counter(tmp_path, tiny_bert_path, tiny_bert_encoder):
    class Counter:
        def __init__(self) -> None:
            self.written: list[int] = []
            self.add = self

        def remote(self, written: int = 0) -> None:
            self.written.append(written)

    folder = tmp_path / "db"
    _limited_store(folder)
    target = StoreTarget(f"jsondir:{folder}", "docs", opener=functools.partial(open_store, str(folder)))
    datasink = StoreDatasink(target, "docs", str(tiny_bert_path), encoder=tiny_bert_encoder)
    datasink.prepare()
    datasink.progress = Counter()
    datasink.write([_table(3), _table(0)], None)
    assert datasink.progress.written == [2, 1]


def test_the_records_written_keep_their_own_vectors(tmp_path, tiny_bert_path, tiny_bert_encoder):
    folder = tmp_path / "db"
    store = _limited_store(folder)
    target = StoreTarget(f"jsondir:{folder}", "docs", opener=functools.partial(open_store, str(folder)))
    datasink = StoreDatasink(target, "docs", str(tiny_bert_path), encoder=tiny_bert_encoder)
    datasink.prepare()
    datasink.write([_table(3)], None)
    points = store.read("docs")["points"]
    assert [points[f"d{i}"]["vector"] for i in range(3)] == [[float(4 * i + k + 1) for k in range(4)] for i in range(3)]
