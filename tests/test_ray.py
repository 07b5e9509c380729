"""The Ray Data path on a real two-node Ray cluster and a real Chroma server, both on loopback.

The cluster is two ``ray start --block`` processes (a head and a second node, 1 CPU each) started
and ended by pid by the fixture (never ``ray stop``, which would end every Ray process on the
machine). Node addresses are 127.0.0.2 and 127.0.0.3: Ray turns 127.0.0.1 into the machine's
outward address, any other loopback address it keeps. The real model is all-MiniLM-L6-v2 with
``max_length=128`` on both the Ray and the single-process side, to keep the suite affordable on 2
cores; the tests where the vectors' quality does not matter use the tiny random BERT.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from unittest.mock import ANY

import numpy as np
import pytest

from instructor_core import LoadOptions
from tests.conftest import REPO

# Ray reads its auth settings when it is imported: tests.ray_cluster sets the cluster's token before that.
from tests.ray_cluster import EMBED, HEAD_IP, READ, WORKER_IP, write_shards
from tests.servers import chroma_client, chroma_server_process
from tests.shared_checks import scifact_subset

_client = chroma_client

ray = pytest.importorskip("ray")
chromadb = pytest.importorskip("chromadb")

from chromadb.config import Settings  # noqa: E402

from instructor_chroma import InstructorEmbeddingFunction, open_collection  # noqa: E402
from instructor_core import InstructorEncoder  # noqa: E402
from instructor_core.evaluation import rank_by_cosine, retrieval_metrics  # noqa: E402
from instructor_core.ingest.records import HASH_KEY, RecordError  # noqa: E402
from instructor_ray import (  # noqa: E402
    PATH_COLUMN,
    QdrantDatasink,
    RowFields,
    embed_dataset,
    ingest_dataset,
    read_corpus_dataset,
)
from instructor_ray.blocks import block_records  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.slow]
# Every test on the cluster is a system test (make test-all, CI): the two nodes take 20 s to start, and each
# job ships the model to both nodes and starts actor processes; the SciFact tests encode 2,000 abstracts.

MAX_LENGTH = 128
N_DOCS = 2000


@pytest.fixture(scope="module")
def scifact(data_dir, minilm_path, tmp_path_factory):
    """2,000 SciFact abstracts (every judged one among them) in 4 JSONL shards, with their
    single-process vectors and the brute-force nDCG@10 of the 300 test claims."""
    data, qids, doc_ids = scifact_subset(data_dir, n_claims=300, n_docs=N_DOCS)
    rows = [{"id": d, "text": data.corpus[d], "source": "scifact"} for d in doc_ids]
    folder = tmp_path_factory.mktemp("scifact_shards")
    write_shards(folder, rows, 4)
    encoder = InstructorEncoder.from_pretrained(minilm_path, device="cpu", max_length=MAX_LENGTH)
    vectors = encoder.encode_documents([r["text"] for r in rows], batch_size=64)
    queries = encoder.encode_queries([data.queries[q] for q in qids])
    indices, _ = rank_by_cosine(queries, vectors, k=10)
    brute = retrieval_metrics({q: [doc_ids[i] for i in row] for q, row in zip(qids, indices, strict=True)}, data.qrels)
    return {
        "folder": folder,
        "rows": rows,
        "ids": doc_ids,
        "vectors": dict(zip(doc_ids, vectors, strict=True)),
        "queries": queries,
        "qids": qids,
        "data": data,
        "brute": brute,
        "encoder": encoder,
    }


def _stored(collection, ids: list[str]) -> dict[str, np.ndarray]:
    got = collection.get(ids=ids, include=["embeddings"])
    return {i: np.asarray(v, dtype=np.float32) for i, v in zip(got["ids"], got["embeddings"], strict=True)}


def _all_ids(collection) -> list[str]:
    return collection.get(include=[])["ids"]


# ---------------------------------------------------------------------------------------------- no cluster
def test_block_errors_name_the_record_and_its_shard():
    import pyarrow as pa

    table = pa.table(
        {
            "id": ["a", "b", "a"],
            "text": ["x", "y", "z"],
            "_instructor_shard": ["/data/s0.jsonl", "/data/s1.jsonl", "/data/s3.jsonl"],
        }
    )
    fields = RowFields(path_column="_instructor_shard")
    with pytest.raises(RecordError) as err:
        block_records(table, fields)
    assert str(err.value) == "/data/s3.jsonl: id 'a': duplicate id in one batch (also record 0)"
    bad_text = table.set_column(1, "text", pa.array(["x", None, "z"]))
    with pytest.raises(RecordError, match=r"^/data/s1\.jsonl: id 'b': text must be a str, got NoneType$"):
        block_records(bad_text.slice(0, 2), fields)
    records = block_records(table.slice(0, 2), fields)
    assert [(r.id, r.text, dict(r.metadata)) for r in records] == [("a", "x", {}), ("b", "y", {})]


def test_datasink_write_checks_records_with_the_stores_rules(tiny_bert_path, tiny_bert_encoder, tmp_path):
    """A write task validates its block with the store's own rules before anything of it is stored:
    Qdrant keeps "id" and "text" in the payload itself, so a metadata key "text" is refused."""
    import pyarrow as pa
    from qdrant_client import QdrantClient
    from ray.data.extensions import ArrowTensorArray

    sink = QdrantDatasink(None, "docs", str(tiny_bert_path), path=tmp_path / "qdrant", encoder=tiny_bert_encoder)
    sink.prepare()  # the collection exists: without the rules, the write would succeed
    texts = ["first passage", "second passage"]
    table = pa.table(
        {
            "id": ["a", "b"],
            "text": texts,
            "metadata": [{"text": "fine"}, {"text": "not the document's text"}],
            "embedding": ArrowTensorArray.from_numpy(tiny_bert_encoder.encode_documents(texts)),
        }
    )
    with pytest.raises(RecordError, match=r"id 'a': metadata key 'text' is reserved"):
        sink.write([table], None)
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    try:
        assert client.count("docs", exact=True).count == 0
    finally:
        client.close()


def test_embedder_uses_each_rows_instruction_column(tiny_bert_path, tiny_bert_encoder):
    """The callable the actors run embeds ``(row's instruction, text)`` pairs, as ``encode`` does."""
    import pyarrow as pa

    from instructor_ray.embed import _Embedder
    from instructor_ray.sinks import vectors_of

    instructions = ["Represent the question: ", "Represent the passage: ", "", "Classify the sentiment: "]
    texts = [f"sentence {i} " * (1 + i % 3) for i in range(8)]
    table = pa.table({"id": [str(i) for i in range(8)], "text": texts, "task": [instructions[i % 4] for i in range(8)]})
    embedder = _Embedder(str(tiny_bert_path), "document", None, "task", "text", "embedding", 4, None, LoadOptions(),
                         "id", None)  # fmt: skip
    got = vectors_of(embedder(table), "embedding")
    expected = tiny_bert_encoder.encode([(instructions[i % 4], t) for i, t in enumerate(texts)])
    assert np.abs(got - expected).max() <= 1e-6
    plain = tiny_bert_encoder.encode_documents(texts)
    assert np.abs(got - plain).max() > 1e-3  # the column's instructions, not the default one


# ---------------------------------------------------------------------------------------------- cluster
@pytest.mark.system
def test_cluster_has_two_nodes(ray_cluster):
    nodes = [n for n in ray.nodes() if n["Alive"]]
    assert sorted(n["NodeManagerAddress"] for n in nodes) == [HEAD_IP, WORKER_IP]
    assert ray.cluster_resources()["CPU"] == 2


@pytest.mark.system
def test_bad_record_in_shard_3_is_named_and_a_rerun_completes(ray_cluster, chroma_port, tiny_bert_path, tmp_path):
    rows = [{"id": f"doc-{i}", "text": f"passage number {i} about rivers and hills"} for i in range(160)]
    paths = write_shards(tmp_path / "shards", rows, 4)
    lines = paths[3].read_text().splitlines()
    lines[5] = json.dumps({"id": "doc-bad", "text": None})
    paths[3].write_text("\n".join(lines) + "\n")
    store = f"chroma+http://127.0.0.1:{chroma_port}"

    def run() -> object:
        return ingest_dataset(
            read_corpus_dataset(tmp_path / "shards", **READ),
            store,
            "badrec",
            str(tiny_bert_path),
            **{**EMBED, "batch_size": 16},
        )

    with pytest.raises(RecordError) as err:
        run()
    message = str(err.value)
    assert message == f"{paths[3].resolve()}:6: id 'doc-bad': text must be a str, got NoneType", message
    assert "\n" not in message
    lines[5] = json.dumps({"id": "doc-bad", "text": "the fixed passage"})
    paths[3].write_text("\n".join(lines) + "\n")
    report = run()
    collection = _client(chroma_port).get_collection("badrec", embedding_function=None)
    expected = {r["id"] for k, r in enumerate(rows) if not (k % 4 == 3 and k // 4 == 5)} | {"doc-bad"}
    ids = _all_ids(collection)
    assert report.seen == len(expected) == collection.count() == len(ids) and set(ids) == expected
    assert report.written == report.embedded == len(expected) - report.unchanged  # the blocks stored before: skipped


@pytest.mark.system
def test_qdrant_datasink_local_folder(ray_cluster, tiny_bert_path, tiny_bert_encoder, tmp_path):
    from qdrant_client import QdrantClient

    from instructor_core.ingest.records import point_id

    rows = [{"id": f"q-{i}", "text": f"text {i} " * (1 + i % 7), "lang": "en"} for i in range(120)]
    ds = ray.data.from_items(rows)
    embedded = embed_dataset(ds, str(tiny_bert_path), batch_size=32, concurrency=1, num_cpus=0.5)
    sink = QdrantDatasink(None, "docs", str(tiny_bert_path), path=tmp_path / "qdrant", batch_size=50)
    # one process holds a local folder at a time: one write task at once
    embedded.write_datasink(sink, concurrency=1, ray_remote_args={"num_cpus": 0.25})
    assert sink.report is not None and sink.report.written == 120
    embedded.write_datasink(
        QdrantDatasink(None, "docs", str(tiny_bert_path), path=tmp_path / "qdrant", batch_size=50),
        concurrency=1,
        ray_remote_args={"num_cpus": 0.25},
    )  # a second run upserts the same points
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    try:
        assert client.count("docs", exact=True).count == 120
        points = client.retrieve("docs", [point_id(r["id"]) for r in rows], with_vectors=True, with_payload=True)
        assert {p.payload["id"] for p in points} == {r["id"] for r in rows}
        by_id = {p.payload["id"]: p for p in points}
        assert by_id["q-3"].payload == {"id": "q-3", "text": rows[3]["text"], "lang": "en", HASH_KEY: ANY}
        expected = tiny_bert_encoder.encode_documents([r["text"] for r in rows])
        got = np.array([by_id[r["id"]].vector for r in rows], dtype=np.float32)
        np.testing.assert_allclose(got, expected, atol=1e-6)
    finally:
        client.close()


@pytest.mark.system
def test_instruction_column_equals_encode_pairs(ray_cluster, tiny_bert_path, tiny_bert_encoder):
    instructions = ["Represent the question: ", "Represent the passage: ", "", "Classify the sentiment: "]
    rows = [{"id": str(i), "text": f"sentence {i} " * (1 + i % 5), "task": instructions[i % 4]} for i in range(64)]
    ds = ray.data.from_items(rows)
    out = embed_dataset(
        ds, str(tiny_bert_path), instruction_column="task", batch_size=16, concurrency=2, num_cpus=0.5
    ).take_all()
    got = {row["id"]: np.asarray(row["embedding"]) for row in out}
    expected = tiny_bert_encoder.encode([(r["task"], r["text"]) for r in rows])
    assert len(got) == len(rows)
    worst = max(float(np.abs(got[r["id"]] - expected[i]).max()) for i, r in enumerate(rows))
    assert worst <= 1e-6
    queries = embed_dataset(ds, str(tiny_bert_path), role="query", batch_size=16, concurrency=1, num_cpus=0.5)
    first = queries.take(1)[0]
    ref = tiny_bert_encoder.encode_queries([first["text"]])[0]
    assert float(np.abs(np.asarray(first["embedding"]) - ref).max()) <= 1e-6


@pytest.mark.system
def test_each_shard_is_an_embedding_task_of_its_own_when_tasks_reserve_what_actors_do(ray_cluster, tiny_bert_path,
                                                                                       tmp_path):  # fmt: skip
    """Ray fuses a task stage into the actor stage after it when both reserve the same CPUs; the fused stage
    then bundled the shard *paths* (one row each) up to ``batch_size``, so one actor task read and embedded
    the whole corpus while the other actor idled. The read stays a stage of its own, and its blocks are cut
    into blocks of one embedding call each (so each call's vectors go on to the writes at once): one
    embedding task per call, which the pool hands to either actor."""
    rows = [{"id": f"f-{i}", "text": f"passage {i} about lakes"} for i in range(4 * 48)]
    write_shards(tmp_path / "shards", rows, 4)
    ds = read_corpus_dataset(tmp_path / "shards", num_cpus=0.5)  # the actors' own 0.5 CPU
    embedded = embed_dataset(ds, str(tiny_bert_path), batch_size=16, concurrency=2, num_cpus=0.5)
    it = embedded.iterator()
    assert sum(len(batch["id"]) for batch in it.iter_batches(batch_format="pyarrow")) == len(rows)
    stats = it.stats()
    tasks = re.search(r"Operator \d+ MapBatches\(_Embedder\): (\d+) tasks executed", stats)
    assert tasks is not None, stats  # fused, the stage is "MapBatches(read_shard_batch)->MapBatches(_Embedder)"
    assert int(tasks.group(1)) == len(rows) // 16, stats  # 4 shards of 48 rows: 3 calls of 16 each


@pytest.mark.system
def test_cli_engine_ray_into_embedded_chroma(ray_cluster, tiny_bert_path, tiny_bert_encoder, tmp_path):
    rows = [{"id": f"c-{i}", "text": f"cli passage {i} " * (1 + i % 3)} for i in range(90)]
    write_shards(tmp_path / "shards", rows, 3)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "integrations")])}
    command = [sys.executable, "-m", "instructor_core.cli", "ingest", str(tmp_path / "shards" / "shard*.jsonl")]
    command += ["--engine", "ray", "--ray-address", ray_cluster, "--concurrency", "1", "--num-cpus", "0.5"]
    command += ["--store", f"chroma:{tmp_path / 'store'}", "--collection", "clidocs", "--model", str(tiny_bert_path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (
        f"chroma at {tmp_path / 'store'} is an embedded store: the cluster embeds, this process writes" in done.stderr
    )
    assert "wrote 90 of 90 records" in done.stderr
    collection = chromadb.PersistentClient(str(tmp_path / "store")).get_collection("clidocs", embedding_function=None)
    stored = _stored(collection, [r["id"] for r in rows])
    expected = tiny_bert_encoder.encode_documents([r["text"] for r in rows])
    assert collection.count() == 90
    assert max(float(np.abs(stored[r["id"]] - expected[i]).max()) for i, r in enumerate(rows)) <= 1e-6


@pytest.mark.system
def test_cli_engine_ray_into_a_store_registered_only_by_entry_point(ray_cluster, tiny_bert_path, tiny_bert_encoder,
                                                                    tmp_path):  # fmt: skip
    """tests/plugin_store.py's ``jsondir:DIR`` (not a single-writer store): the Ray write tasks open it by URL
    on both nodes and write through its sink; nothing in instructor_ray names it."""
    rows = [{"id": f"p-{i}", "text": f"plugin passage {i} " * (1 + i % 3), "n": i} for i in range(60)]
    write_shards(tmp_path / "shards", rows, 3)
    paths = [str(REPO), str(REPO / "integrations"), os.environ["INSTRUCTOR_TEST_PLUGIN"]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    command = [sys.executable, "-m", "instructor_core.cli", "ingest", str(tmp_path / "shards" / "shard*.jsonl")]
    command += ["--engine", "ray", "--ray-address", ray_cluster, "--concurrency", "1", "--num-cpus", "0.5"]
    command += ["--store", f"jsondir:{tmp_path / 'db'}", "--collection", "plugdocs", "--model", str(tiny_bert_path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "wrote 60 of 60 records" in done.stderr and "this process writes" not in done.stderr
    saved = json.loads((tmp_path / "db" / "plugdocs.json").read_text(encoding="utf-8"))
    assert sorted(saved["points"]) == sorted(r["id"] for r in rows)
    assert saved["points"]["p-7"]["metadata"]["n"] == 7
    expected = tiny_bert_encoder.encode_documents([r["text"] for r in rows])
    stored = np.asarray([saved["points"][r["id"]]["vector"] for r in rows])
    assert float(np.abs(stored - expected).max()) <= 1e-6
    assert saved["metadata"]["instructor"]["model"] == str(Path(tiny_bert_path).resolve())


@pytest.mark.system
def test_scifact_into_chroma_server_equals_single_process(ray_cluster, chroma_port, scifact, minilm_path):
    client = _client(chroma_port)
    ef = InstructorEmbeddingFunction(str(minilm_path), encoder=scifact["encoder"])
    # made beforehand with a wider HNSW search; ingest_dataset checks it fits the model
    open_collection(client, "scifact", ef, hnsw={"ef_search": 200, "ef_construction": 200})
    ds = read_corpus_dataset(sorted(scifact["folder"].glob("shard*.jsonl")), **READ)
    report = ingest_dataset(
        ds,
        f"chroma+http://127.0.0.1:{chroma_port}",
        "scifact",
        str(minilm_path),
        options=LoadOptions(max_length=MAX_LENGTH),
        encoder=scifact["encoder"],
        **EMBED,
    )
    assert (report.seen, report.written) == (N_DOCS, N_DOCS)
    collection = client.get_collection("scifact", embedding_function=None)
    ids = _all_ids(collection)
    assert collection.count() == N_DOCS and sorted(ids) == sorted(scifact["ids"])  # every id exactly once
    stored = _stored(collection, scifact["ids"])
    worst = max(float(np.abs(stored[i] - scifact["vectors"][i]).max()) for i in scifact["ids"])
    assert worst <= 1e-5
    meta = collection.get(ids=[scifact["ids"][0]], include=["metadatas"])["metadatas"][0]
    assert meta == {"source": "scifact", HASH_KEY: ANY}  # the shard path column is never stored
    result = collection.query(query_embeddings=scifact["queries"], n_results=10, include=[])
    metrics = retrieval_metrics(dict(zip(scifact["qids"], result["ids"], strict=True)), scifact["data"].qrels)
    print(f"ray->chroma ndcg@10={metrics['ndcg@10']:.4f} brute={scifact['brute']['ndcg@10']:.4f} max|dv|={worst:.1e}")
    assert abs(metrics["ndcg@10"] - scifact["brute"]["ndcg@10"]) <= 0.005


def _embedder_pids() -> list[int]:
    """Pids of this machine's Ray actor processes that run the embedding stage."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("ray::MapWorker") and "_Embedder" in title:
            pids.append(int(entry.name))
    return pids


def _gate_on_first_write(port: int, collection: str, first_shard: str, bound_s: float = 300):
    """A map stage that holds every block but ``first_shard``'s until ``collection`` has a point.

    So the kill below always lands mid-job, however slowly the first write comes (under CI load the
    first write task took 76 s from submission to its first point, and the embedders had finished
    all 480 rows 35 s before that): the first shard is embedded and written while the rest wait,
    then the rest keep the embedders busy for tens of seconds after the first point is visible.
    The check pass (before the collection is made) goes through the gate unheld.
    Bounded, and loud: a block still held after ``bound_s`` fails the job (naming the gate) rather
    than passing, so a slow first write can never let the kill land after the job's end. The gate
    builds its own client instead of calling ``_client``: Ray pickles a module-level test function
    by reference, so every worker would import this test module to run it.
    """

    def gate(table):
        if all(path.endswith(first_shard) for path in table.column(PATH_COLUMN).to_pylist()):
            return table
        client = chromadb.HttpClient(host="127.0.0.1", port=port, settings=Settings(anonymized_telemetry=False))
        deadline = time.monotonic() + bound_s
        while time.monotonic() < deadline:
            try:
                if client.get_collection(collection, embedding_function=None).count() > 0:
                    return table
            except chromadb.errors.NotFoundError:  # the check pass, before the collection is made: let it by
                return table
            except Exception:  # noqa: BLE001 - the server is busy: ask again
                pass
            time.sleep(0.5)
        raise RuntimeError(f"gate: {collection!r} still had no point after {bound_s:g} s; the first shard never landed")

    return gate


@pytest.mark.system
def test_killed_worker_mid_job_leaves_one_point_per_id(ray_cluster, chroma_port, scifact, minilm_path):
    rows = scifact["rows"][:480]
    ids = [r["id"] for r in rows]
    folder = scifact["folder"].parent / "fault_shards"
    write_shards(folder, rows, 4)
    client = _client(chroma_port)
    store = f"chroma+http://127.0.0.1:{chroma_port}"

    def run(gated: bool) -> None:
        ds = read_corpus_dataset(folder, **READ)
        if gated:  # zero CPUs: waiting blocks must not hold the CPU the first block's write needs
            gate = _gate_on_first_write(chroma_port, "fault", "shard0.jsonl")
            ds = ds.map_batches(gate, batch_format="pyarrow", batch_size=None, num_cpus=0)
        ingest_dataset(
            ds,
            store,
            "fault",
            str(minilm_path),
            options=LoadOptions(max_length=MAX_LENGTH),
            encoder=scifact["encoder"],
            **{**EMBED, "batch_size": 32},
        )

    outcome: dict[str, BaseException | None] = {"error": None}

    def target() -> None:
        try:
            run(gated=True)
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome["error"] = exc

    job = threading.Thread(target=target)
    job.start()
    killed = None
    seen = {"written": 0, "pids": 0, "count_error": None}
    deadline = time.monotonic() + 600
    while killed is None and job.is_alive() and time.monotonic() < deadline:
        try:
            written = client.get_collection("fault", embedding_function=None).count()
        except Exception as exc:  # noqa: BLE001 - not created yet; kept for the failure message
            written, seen["count_error"] = 0, exc
        pids = _embedder_pids()
        seen["written"], seen["pids"] = max(seen["written"], written), max(seen["pids"], len(pids))
        if written > 0 and pids:  # mid-job: some blocks written, the actors still at work
            os.kill(pids[-1], signal.SIGKILL)
            killed = (pids[-1], written)
        time.sleep(0.2)
    job.join(timeout=600)
    assert not job.is_alive()
    assert killed is not None and killed[1] < len(rows), (
        f"no embedder was killed mid-job: killed={killed}, most seen={seen}, job error={outcome['error']!r}"
    )
    print(f"killed embedder pid {killed[0]} with {killed[1]} of {len(rows)} written; job error: {outcome['error']!r}")
    if outcome["error"] is not None:
        run(gated=False)  # the re-run completes
    collection = client.get_collection("fault", embedding_function=None)
    assert collection.count() == len(rows) and sorted(_all_ids(collection)) == sorted(ids)
    stored = _stored(collection, ids)
    assert max(float(np.abs(stored[i] - scifact["vectors"][i]).max()) for i in ids) <= 1e-5


# ---------------------------------------------------------------------------------------------- one reader, one line
def _cli_ingest(corpus: str, cluster: str, store: str, collection: str, model: str, *extra: str):
    """``instructor ingest --engine ray`` in a subprocess (the driver), quiet: stderr holds only what fails."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "integrations")])}
    command = [sys.executable, "-m", "instructor_core.cli", "ingest", corpus, "--engine", "ray", "--ray-address",
               cluster, "--concurrency", "1", "--num-cpus", "0.5", "--store", store, "--collection", collection,
               "--model", model, "--quiet", *extra]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finished(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


@pytest.mark.system
def test_cli_ray_reads_a_beir_corpus_as_one_process_does(ray_cluster, tiny_bert_path, tiny_bert_encoder, tmp_path):
    """BEIR's ``_id`` and ``title`` with no --id-field, --title-field title, and --on-duplicate first: the
    same records as the single-process reader, with different metadata keys per row."""
    rows = [{"_id": f"b-{i}", "title": f"Title {i}" if i % 2 else "", "text": f"beir passage {i}"} for i in range(40)]
    for i in range(0, 40, 5):
        rows[i]["year"] = 2000 + i
    write_shards(tmp_path / "shards", rows, 3)
    # b-7 again in the last shard: --on-duplicate first keeps the copy in shard1 (line 3)
    with (tmp_path / "shards" / "shard2.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"_id": "b-7", "title": "", "text": "a later copy"}) + "\n")
    store = tmp_path / "store"
    proc = _cli_ingest(str(tmp_path / "shards"), ray_cluster, f"chroma:{store}", "beir", str(tiny_bert_path),
                       "--title-field", "title", "--on-duplicate", "first")  # fmt: skip
    code, err = _finished(proc)
    assert code == 0, err[-3000:]
    collection = chromadb.PersistentClient(str(store)).get_collection("beir", embedding_function=None)
    got = collection.get(include=["documents", "metadatas"])
    stored = dict(zip(got["ids"], zip(got["documents"], got["metadatas"], strict=True), strict=True))
    assert sorted(stored) == sorted(r["_id"] for r in rows)
    assert stored["b-7"][0] == "Title 7 beir passage 7"
    assert stored["b-2"][0] == "beir passage 2"  # an empty title leaves the text alone
    # the raw Chroma rows carry the content hash the resume reads (the store's search hides it)
    assert stored["b-5"][1] == {"title": "Title 5", "year": 2005, HASH_KEY: ANY}
    assert stored["b-3"][1] == {"title": "Title 3", HASH_KEY: ANY}
    vectors = _stored(collection, ["b-7"])
    assert np.abs(vectors["b-7"] - tiny_bert_encoder.encode_documents(["Title 7 beir passage 7"])[0]).max() <= 1e-6


@pytest.mark.system
def test_cli_ray_on_duplicate_error_names_both_copies(ray_cluster, tiny_bert_path, tmp_path):
    rows = [{"id": f"d-{i}", "text": f"dup passage {i}"} for i in range(12)]
    paths = write_shards(tmp_path / "shards", rows, 3)
    with paths[2].open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": "d-0", "text": "again"}) + "\n")
    store = tmp_path / "store"
    code, err = _finished(_cli_ingest(str(tmp_path / "shards"), ray_cluster, f"chroma:{store}", "dups",
                                      str(tiny_bert_path)))  # fmt: skip
    assert code == 2 and "Traceback" not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last == (
        f"instructor ingest: error: id 'd-0' occurs twice: {paths[0].resolve()}:1 and {paths[2].resolve()}:5 "
        "(--on-duplicate first or last keeps one copy)"
    ), err[-3000:]
    names = [c.name if hasattr(c, "name") else c for c in chromadb.PersistentClient(str(store)).list_collections()]
    assert "dups" not in names


@pytest.mark.system
def test_cli_ray_truncated_json_in_shard_3_is_one_line_and_no_collection(ray_cluster, chroma_port, tiny_bert_path,
                                                                         tmp_path):  # fmt: skip
    rows = [{"id": f"t-{i}", "text": f"passage {i} about rivers"} for i in range(80)]
    paths = write_shards(tmp_path / "shards", rows, 4)
    lines = paths[3].read_text().splitlines()
    lines[6] = lines[6][: len(lines[6]) // 2]  # cut mid-object: line 7 of shard3
    paths[3].write_text("\n".join(lines) + "\n")
    code, err = _finished(_cli_ingest(str(tmp_path / "shards"), ray_cluster, f"chroma+http://127.0.0.1:{chroma_port}",
                                      "truncated", str(tiny_bert_path)))  # fmt: skip
    assert code == 2 and "Traceback" not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"instructor ingest: error: {paths[3].resolve()}:7: not valid JSON ("), err[-3000:]
    assert "\x1b[" not in last
    names = [c.name if hasattr(c, "name") else c for c in _client(chroma_port).list_collections()]
    assert "truncated" not in names  # nothing made before the check pass passed


@pytest.mark.system
def test_cli_ray_chroma_server_stopped_mid_job_is_one_line(ray_cluster, tiny_bert_path, tmp_path):
    """A ``chroma run`` killed while the write tasks work: exit 2 and one line, no traceback."""
    proc = None
    with chroma_server_process(tmp_path) as (server, port):
        try:
            rows = [{"id": f"k-{i}", "text": f"kill passage {i} " * 20} for i in range(3000)]
            write_shards(tmp_path / "shards", rows, 6)
            proc = _cli_ingest(str(tmp_path / "shards"), ray_cluster, f"chroma+http://127.0.0.1:{port}", "killed",
                               str(tiny_bert_path), "--write-batch-size", "16")  # fmt: skip
            deadline = time.monotonic() + 600
            written = 0
            while written == 0 and proc.poll() is None and time.monotonic() < deadline:
                try:
                    written = _client(port).get_collection("killed", embedding_function=None).count()
                except Exception:  # noqa: BLE001 - not made yet
                    written = 0
                time.sleep(0.2)
            assert written > 0 and proc.poll() is None, f"no point before the job ended: {proc.poll()}"
            server.kill()  # the server stops mid-job
            server.wait()
            code, err = _finished(proc)
        finally:
            if proc is not None and proc.poll() is None:
                proc.kill()
    print(f"killed the server at {written} of {len(rows)} points; the CLI said: {err.strip()[-500:]}")
    assert code == 2 and "Traceback" not in err, err[-5000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("instructor ingest: error:") and err.count("error:") == 1, err[-5000:]
    assert "full stack trace below" not in err
    assert str(port) in last
