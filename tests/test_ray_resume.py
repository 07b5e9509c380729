"""A re-run of a Ray ingest embeds only what is missing or changed (issue 23), on the two-node
cluster of tests/test_ray.py: a server store (the workers drop the unchanged rows) and an embedded
one (the driver finds them first). System tier; run under the shared Ray lock (see the briefs)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.ray_cluster import EMBED, READ, write_shards
from tests.servers import chroma_client as _client

chromadb = pytest.importorskip("chromadb")
ray = pytest.importorskip("ray")
from instructor_ray import ingest_dataset, read_corpus_dataset  # noqa: E402
from instructor_ray.progress import make_counter  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.system]

N = 120


def _rows() -> list[dict]:
    return [{"id": f"r-{i}", "text": f"resumable passage {i} " * (1 + i % 4), "n": i} for i in range(N)]


def _run(folder: Path, store: str, model: Path, progress: object = None) -> object:
    return ingest_dataset(read_corpus_dataset(folder, **READ), store, "resume", str(model),
                          **{**EMBED, "batch_size": 16}, progress=progress)  # fmt: skip


def _counts(report) -> tuple[int, int, int, int]:
    print(report.summary())  # the line docs/scale.md quotes
    return report.seen, report.unchanged, report.embedded, report.written


@pytest.mark.parametrize("where", ["server", "embedded"])
def test_a_rerun_embeds_nothing_then_only_the_deleted_points(where, ray_cluster, chroma_port, tiny_bert_path,
                                                             tmp_path):  # fmt: skip
    write_shards(tmp_path / "shards", _rows(), 3)
    if where == "server":
        store = f"chroma+http://127.0.0.1:{chroma_port}"
        client = _client(chroma_port)
        if "resume" in [c if isinstance(c, str) else c.name for c in client.list_collections()]:
            client.delete_collection("resume")
    else:
        store = f"chroma:{tmp_path / 'db'}"

    def collection():
        opened = _client(chroma_port) if where == "server" else chromadb.PersistentClient(str(tmp_path / "db"))
        return opened.get_collection("resume", embedding_function=None)

    assert _counts(_run(tmp_path / "shards", store, tiny_bert_path)) == (N, 0, N, N)
    assert _counts(_run(tmp_path / "shards", store, tiny_bert_path)) == (N, N, 0, 0)  # nothing embedded
    gone = [f"r-{i}" for i in range(0, N, 12)]
    collection().delete(ids=gone)
    assert collection().count() == N - len(gone)
    counter = make_counter(ray)  # what the CLI's progress line and watchdog read
    report = _run(tmp_path / "shards", store, tiny_bert_path, progress=counter)
    expected = (N, N - len(gone), len(gone), len(gone))
    assert _counts(report) == expected
    deadline = time.monotonic() + 10  # the actors' and writers' reports are sent without waiting for an answer
    while True:
        counts = ray.get(counter.counts.remote())
        got = (counts.total, counts.skipped, counts.embedded, counts.written)
        if got == expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert got == expected
    stored = collection()
    assert stored.count() == N and sorted(stored.get(include=[])["ids"]) == sorted(r["id"] for r in _rows())
