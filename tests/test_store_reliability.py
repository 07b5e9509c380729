"""Store-level reliability and security probes of issue 11, each reproduced against real stores:
no code from a store folder, one writer per embedded store, no silent model mixing, duplicates
across batches, one line (exit 2) for every expected failure."""

from __future__ import annotations

import json
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from instructor_core.cli import main
from instructor_core.ingest import store_ops
from tests.cli_helpers import D, Q, cli_env, error_lines, ingest_argv, write_corpus
from tests.tiny_models import corpus_lines

REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------------ 1. no pickle
class _Plant:
    """Unpickling this creates ``path`` (harmless, but it is code run from a store file)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def plant_pickle(folder: Path, marker: Path) -> None:
    """A real qdrant-client local-mode store whose stored point is replaced by a planted pickle."""
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(folder))
    client.create_collection("notes", vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE))
    client.upsert("notes", [models.PointStruct(id=1, vector=[1.0, 0, 0, 0], payload={"id": "a", "text": "x"})])
    client.close()
    db = sqlite3.connect(folder / "collection" / "notes" / "storage.sqlite")
    with db:
        db.execute("UPDATE points SET point = ?", (pickle.dumps(_Plant(str(marker))),))
    db.close()


def test_qdrant_dir_never_unpickles_a_planted_store(tmp_path, tiny_t5_path, capsys):
    from qdrant_client import QdrantClient

    from instructor_core.ingest.stores import StoreError, open_store

    folder, marker = tmp_path / "qdb", tmp_path / "PWNED"
    plant_pickle(folder, marker)

    with pytest.raises(StoreError, match="qdrant-client local-mode folder") as caught:
        open_store(f"qdrant:{folder}")
    assert "\n" not in str(caught.value)
    assert not marker.exists()

    argv = ["search", "q", "--store", f"qdrant:{folder}", "--collection", "notes", "--model", str(tiny_t5_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("instructor search: error: ") and "unpickles" in err and len(err.splitlines()) == 1
    assert main(ingest_argv(write_corpus(tmp_path / "c.jsonl", 3), f"qdrant:{folder}", tiny_t5_path)) == 2
    assert "local-mode folder" in capsys.readouterr().err
    assert not marker.exists()

    # the probe is real: qdrant-client's own local mode runs the planted pickle on open
    try:
        QdrantClient(path=str(folder)).close()
    except Exception:
        pass  # the unpickled object is not a point; the code already ran
    assert marker.exists()


def test_qdrant_dir_is_an_edge_store(tmp_path, tiny_t5_path, capsys):
    from instructor_core import InstructorEncoder
    from instructor_core.ingest.stores import open_store

    corpus = write_corpus(tmp_path / "c.jsonl", 12)
    store = f"qdrant:{tmp_path / 'edge'}"
    assert main(ingest_argv(corpus, store, tiny_t5_path)) == 0
    assert main(ingest_argv(corpus, store, tiny_t5_path)) == 0  # upsert, no duplicates
    assert (tmp_path / "edge" / "collections" / "notes" / "shard" / "edge_config.json").is_file()
    assert not list((tmp_path / "edge").rglob("*.sqlite"))  # nothing of qdrant-client's local mode
    opened = open_store(store)
    try:
        info = opened.info("notes")
        assert (info.count, info.query_instruction, info.document_instruction) == (12, Q, D)
        assert info.model == str(Path(tiny_t5_path).resolve()) and info.created
        enc = InstructorEncoder.from_pretrained(tiny_t5_path, device="cpu")
        assert info.dimension == enc.dimension
        (hits,) = store_ops.search(opened, "notes", ["cell"], enc, k=20, filters={"topic": "even"}, instruction=Q)
        assert len(hits) == 6 and all(h.metadata == {"topic": "even"} for h in hits)
        from instructor_core.ingest.records import point_id

        assert all(h.point_id == point_id(h.id) for h in hits)
        # scores are the cosine of the same vectors computed here
        docs = {f"d{i}": t for i, t in enumerate(corpus_lines(12))}
        q = enc.encode_queries(["cell"], Q)[0]
        for h in hits:
            assert abs(float(enc.encode_documents([docs[h.id]], D)[0] @ q) - h.score) < 1e-4
        assert hits == sorted(hits, key=lambda h: -h.score)
    finally:
        opened.close()
    layout = json.loads((tmp_path / "edge" / "collections" / "notes" / "instructor.json").read_text())
    assert layout["instructor"]["dimension"] == info.dimension


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "", "x" * 256])
def test_edge_collection_names_stay_inside_the_folder(tmp_path, name):
    from instructor_core.ingest.stores import open_store

    opened = open_store(f"qdrant:{tmp_path / 'edge'}")
    try:
        with pytest.raises(ValueError, match="collection name"):
            opened.info(name)
    finally:
        opened.close()


# ------------------------------------------------------------------------------ 2. one writer at a time
@pytest.mark.parametrize("kind", ["chroma", "qdrant"])
def test_second_process_waits_then_fails_naming_the_holder(kind, tmp_path, tiny_t5_path, monkeypatch):
    from instructor_core import Instructions, InstructorEncoder
    from instructor_core.ingest.stores import open_store

    folder = tmp_path / "store"
    store = f"{kind}:{folder}"
    first = write_corpus(tmp_path / "first.jsonl", 10)
    second = write_corpus(tmp_path / "second.jsonl", 10, start=10)
    encoder = InstructorEncoder.from_pretrained(tiny_t5_path, Instructions(Q, D), device="cpu")
    holder = open_store(store)  # this process holds the store's lock until close()
    try:
        from instructor_core.ingest.readers import read_jsonl

        model = str(Path(tiny_t5_path).resolve())
        store_ops.ingest(holder, "notes", read_jsonl(first), encoder, model=model, show_progress=False)
        run = subprocess.run(
            [sys.executable, "-m", "instructor_core.cli", *ingest_argv(second, store, tiny_t5_path)],
            env=cli_env(INSTRUCTOR_LOCK_TIMEOUT="1"),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 2, run.stderr
        assert "Traceback" not in run.stderr
        (err,) = error_lines(run.stderr)
        assert f"is in use by process {os.getpid()}" in err and str(folder) in err and "waited 1 s" in err
        assert holder.info("notes").count == 10  # nothing of the second ingest got in
    finally:
        holder.close()
    # after the holder let go: the same command completes, and the store is whole. In this process (the
    # holder's), saving a second start of torch and the stores: a flock still held by the holder's
    # handle would refuse this process's own new handle too.
    monkeypatch.setenv("INSTRUCTOR_LOCK_TIMEOUT", "1")
    assert main(ingest_argv(second, store, tiny_t5_path)) == 0
    assert_store_whole(kind, folder, 20, encoder.dimension)


def assert_store_whole(kind: str, folder: Path, count: int, dimension: int) -> None:
    """The store opens, counts ``count`` documents, and every stored vector reads back."""
    if kind == "chroma":
        import chromadb
        from chromadb.config import Settings

        client = chromadb.PersistentClient(str(folder), Settings(anonymized_telemetry=False))
        collection = client.get_collection("notes")
        got = collection.get(include=["embeddings", "documents"])
        assert collection.count() == count and len(got["ids"]) == count == len(set(got["ids"]))
        assert all(len(v) == dimension for v in got["embeddings"])
        return
    from instructor_core.ingest.stores import open_store

    opened = open_store(f"qdrant:{folder}")
    try:
        assert opened.info("notes").count == count
        shard = opened._shard("notes")
        import qdrant_edge

        points, _ = shard.scroll(qdrant_edge.ScrollRequest(limit=count + 10, with_payload=True, with_vector=True))
        assert len(points) == count == len({p.payload["id"] for p in points})
        assert all(len(p.vector) == dimension for p in points)
    finally:
        opened.close()


# ------------------------------------------------------------------------------ 3. no silent model mixing
def same_dimension_model(tmp_path: Path, seed: int) -> Path:
    from tests.tiny_models import build_t5_instructor

    return build_t5_instructor(tmp_path / f"t5_seed{seed}", seed=seed)


@pytest.mark.parametrize("kind", ["chroma", "qdrant"])
def test_weights_replaced_in_place_are_refused(kind, tmp_path, capsys):
    import shutil

    from instructor_core import InstructorEncoder

    def fingerprint(path: Path) -> str:
        return InstructorEncoder.from_pretrained(path, device="cpu").fingerprint

    model = same_dimension_model(tmp_path, 0)
    other = same_dimension_model(tmp_path, 1)
    store = f"{kind}:{tmp_path / 'store'}"
    corpus = write_corpus(tmp_path / "c.jsonl", 6)
    assert main(ingest_argv(corpus, store, model)) == 0
    before = fingerprint(model)
    for weights in other.rglob("*.safetensors"):  # same path, other weights
        shutil.copy(weights, model / weights.relative_to(other))
    after = fingerprint(model)
    assert before != after
    capsys.readouterr()
    assert main(ingest_argv(corpus, store, model)) == 2
    (err,) = error_lines(capsys.readouterr().err)
    assert before in err and after in err, err
    search = ["search", "cell", "--store", store, "--collection", "notes"]
    assert main(search) == 2
    (err,) = error_lines(capsys.readouterr().err)
    assert before in err and after in err, err
    assert main([*search, "--allow-model-change"]) == 0  # on purpose
    assert main([*ingest_argv(corpus, store, model), "--allow-model-change"]) == 0


def test_python_helpers_refuse_another_model_of_the_same_dimension(tmp_path):
    import chromadb
    from chromadb.config import Settings
    from qdrant_client import AsyncQdrantClient, QdrantClient

    import instructor_chroma
    import instructor_qdrant
    from instructor_core import Instructions, InstructorEncoder
    from instructor_core.ingest.stores import ModelMismatchError

    a_path, b_path = same_dimension_model(tmp_path, 0), same_dimension_model(tmp_path, 1)
    a = InstructorEncoder.from_pretrained(a_path, Instructions(Q, D), device="cpu")
    b = InstructorEncoder.from_pretrained(b_path, Instructions(Q, D), device="cpu")
    assert a.dimension == b.dimension and a.fingerprint != b.fingerprint
    docs = [{"id": f"d{i}", "text": t} for i, t in enumerate(corpus_lines(5))]

    # Qdrant ingest (no model= given) and search with encoder B
    client = QdrantClient(":memory:")
    instructor_qdrant.ingest(client, "notes", docs, a, show_progress=False)
    with pytest.raises(ModelMismatchError, match=f"{a.fingerprint}.*{b.fingerprint}"):
        instructor_qdrant.ingest(client, "notes", docs, b, show_progress=False)
    with pytest.raises(ModelMismatchError, match=f"{a.fingerprint}.*{b.fingerprint}"):
        instructor_qdrant.search(client, "notes", "cell", b)
    assert instructor_qdrant.search(client, "notes", "cell", b, allow_model_change=True)
    assert client.count("notes").count == 5

    # the same through AsyncQdrantClient
    import asyncio

    async def run_async() -> None:
        aclient = AsyncQdrantClient(":memory:")
        await instructor_qdrant.aingest(aclient, "notes", docs, a)
        with pytest.raises(ModelMismatchError):
            await instructor_qdrant.aingest(aclient, "notes", docs, b)
        with pytest.raises(ModelMismatchError):
            await instructor_qdrant.asearch(aclient, "notes", "cell", b)
        await aclient.close()

    asyncio.run(run_async())

    # Chroma: ingest(embedding_function=B) and opening the collection with B
    chroma = chromadb.PersistentClient(str(tmp_path / "chroma"), Settings(anonymized_telemetry=False))
    ef_a = instructor_chroma.InstructorEmbeddingFunction(str(a_path), encoder=a)
    ef_b = instructor_chroma.InstructorEmbeddingFunction(str(b_path), encoder=b)
    collection = instructor_chroma.open_collection(chroma, "notes", ef_a)
    instructor_chroma.ingest(collection, docs, show_progress=False)
    with pytest.raises(ModelMismatchError, match=f"{a.fingerprint}.*{b.fingerprint}"):
        instructor_chroma.ingest(collection, docs, embedding_function=ef_b, show_progress=False)
    with pytest.raises(ModelMismatchError, match=f"{a.fingerprint}.*{b.fingerprint}"):
        instructor_chroma.open_collection(chroma, "notes", ef_b)
    with pytest.raises(ModelMismatchError):  # chromadb's own config update check
        chroma.get_collection("notes").modify(configuration={"embedding_function": ef_b})
    assert collection.count() == 5


# ------------------------------------------------------------------------------ 4. duplicates across batches
@pytest.mark.parametrize("kind", ["chroma", "qdrant"])
def test_duplicate_id_across_batches_through_the_cli(kind, tmp_path, tiny_t5_path, capsys):
    corpus = tmp_path / "dup.jsonl"
    rows = [{"id": "a", "text": "first a"}, {"id": "b", "text": "b"}, {"id": "a", "text": "second a"}]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    store = f"{kind}:{tmp_path / 'store'}"
    argv = [*ingest_argv(corpus, store, tiny_t5_path), "--write-batch-size", "2"]  # the copies in two batches
    assert main(argv) == 2
    (err,) = error_lines(capsys.readouterr().err)
    assert err == (
        "instructor ingest: error: record 2, id 'a': duplicate id (also record 0); pass on_duplicate='first' "
        "or 'last' (CLI: --on-duplicate) to keep one copy (2 records before it were written; run again once it "
        "is fixed to complete the ingest)"
    )
    for policy, text in (("first", "first a"), ("last", "second a")):
        assert main([*argv, "--on-duplicate", policy, "--collection", policy]) == 0
        capsys.readouterr()
        args = ["search", "a", "--store", store, "--collection", policy, "-k", "5", "--json"]
        assert main(args) == 0
        hits = {h["id"]: h["text"] for h in map(json.loads, capsys.readouterr().out.splitlines())}
        assert hits == {"a": text, "b": "b"}


# ------------------------------------------------------------------------------ 5. crashes and a dying server
def wait_until(condition, *, limit_s: float, what: str, step: float = 0.05) -> None:
    """Poll ``condition()`` until true; a bounded wait, not a timing assert."""
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {limit_s:g} s")
        time.sleep(step)


def embedded_chroma_rows(folder: Path) -> int:
    """Rows in an embedded Chroma folder's SQLite, read-only (the store itself is locked)."""
    path = folder / "chroma.sqlite3"
    if not path.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.5)
        try:
            return int(db.execute("SELECT count(*) FROM embeddings").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return 0


# system (make test-all, CI): 3,000 records so that the kill lands mid-ingest, then a full re-run
@pytest.mark.system
def test_kill_9_of_an_ingest_then_rerun_leaves_one_copy_per_id(tmp_path, tiny_t5_path):
    n = 3000
    corpus = write_corpus(tmp_path / "big.jsonl", n)
    folder = tmp_path / "store"
    argv = [sys.executable, "-m", "instructor_core.cli",
            *ingest_argv(corpus, f"chroma:{folder}", tiny_t5_path, "--write-batch-size", "8")]  # fmt: skip
    proc = subprocess.Popen(argv, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: embedded_chroma_rows(folder) > 0 or proc.poll() is not None, limit_s=240,
                   what="the first batch")  # fmt: skip
        assert proc.poll() is None, "the ingest finished before it could be killed: make the corpus larger"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert 0 < embedded_chroma_rows(folder) < n  # it died midway
    # the dead process's lock file is still there, its flock is gone: the re-run is not blocked
    rerun = subprocess.run(argv, env=cli_env(INSTRUCTOR_LOCK_TIMEOUT="5"), capture_output=True, text=True,
                           timeout=600)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    import chromadb

    assert_store_whole("chroma", folder, n, dimension_of(tiny_t5_path))
    got = chromadb.PersistentClient(str(folder)).get_collection("notes").get(ids=["d0", f"d{n - 1}"])
    assert sorted(got["ids"]) == ["d0", f"d{n - 1}"]


def dimension_of(path: Path) -> int:
    from instructor_core import InstructorEncoder

    return InstructorEncoder.from_pretrained(path, device="cpu").dimension


def start_chroma(path: Path, port: int, log: Path) -> subprocess.Popen:
    exe = Path(sys.executable).parent / "chroma"
    if not exe.exists():
        pytest.skip(f"chroma CLI not found at {exe}")
    proc = subprocess.Popen(
        [str(exe), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log.open("a"), stderr=subprocess.STDOUT, env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )  # fmt: skip
    import chromadb
    from chromadb.config import Settings

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"chroma server exited: {log.read_text()[-2000:]}")
        try:
            chromadb.HttpClient(host="127.0.0.1", port=port, settings=Settings(anonymized_telemetry=False)).heartbeat()
            return True
        except Exception:
            return False

    wait_until(up, limit_s=120, what="the chroma server", step=0.25)
    return proc


def server_count(port: int) -> int:
    import chromadb
    from chromadb.config import Settings

    try:
        client = chromadb.HttpClient(host="127.0.0.1", port=port, settings=Settings(anonymized_telemetry=False))
        return int(client.get_collection("notes").count())
    except Exception:
        return 0


# system (make test-all, CI): a real server killed and restarted mid-way through a 3,000-record ingest
@pytest.mark.server
@pytest.mark.system
def test_chroma_server_killed_and_restarted_mid_ingest(tmp_path, tiny_t5_path):
    from tests.servers import free_port

    n = 3000
    corpus = write_corpus(tmp_path / "big.jsonl", n)
    port, data, log = free_port(), tmp_path / "server", tmp_path / "server.log"
    server = start_chroma(data, port, log)
    store = f"chroma+http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "instructor_core.cli",
            *ingest_argv(corpus, store, tiny_t5_path, "--write-batch-size", "8")]  # fmt: skip
    ingest = subprocess.Popen(argv, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: server_count(port) > 0 or ingest.poll() is not None, limit_s=240, what="the first batch",
                   step=0.1)  # fmt: skip
        assert ingest.poll() is None, "the ingest finished before the server was killed: make the corpus larger"
        server.kill()  # kill -9, mid-ingest
        server.wait(timeout=60)
        server = start_chroma(data, port, log)  # back on the same port and folder
        out, err = ingest.communicate(timeout=600)
        if ingest.returncode != 0:  # it gave up before the server was back: one line saying how to resume
            assert ingest.returncode == 2 and "Traceback" not in err, err
            (line,) = error_lines(err)
            assert "could not be reached" in line and "Run the same ingest again to resume" in line, line
        rerun = subprocess.run(argv, env=cli_env(), capture_output=True, text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stderr
        import chromadb
        from chromadb.config import Settings

        client = chromadb.HttpClient(host="127.0.0.1", port=port, settings=Settings(anonymized_telemetry=False))
        collection = client.get_collection("notes")
        got = collection.get(include=["embeddings"])
        assert collection.count() == n and sorted(got["ids"]) == sorted(f"d{i}" for i in range(n))
        assert all(len(v) == dimension_of(tiny_t5_path) for v in got["embeddings"][:5])
    finally:
        ingest.kill()
        ingest.wait(timeout=60)
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# ------------------------------------------------------------------------------ 6. one line, exit 2
@pytest.fixture()
def chroma_with_notes(tmp_path, tiny_t5_path):
    store = f"chroma:{tmp_path / 'store'}"
    assert main(ingest_argv(write_corpus(tmp_path / "c.jsonl", 4), store, tiny_t5_path)) == 0
    return store


def one_error_line(capsys, command: str) -> str:
    (line,) = error_lines(capsys.readouterr().err)
    assert line.startswith(f"instructor {command}: error: ")
    return line


@pytest.mark.parametrize("name", ["ab", "x", "a..b", "abc-", "10.0.0.1"])
def test_chroma_collection_names_refused_before_the_store_is_touched(name, chroma_with_notes, tmp_path,
                                                                     tiny_t5_path, capsys):  # fmt: skip
    from instructor_core.ingest.stores import open_store

    capsys.readouterr()
    argv = ingest_argv(write_corpus(tmp_path / "d.jsonl", 2), chroma_with_notes, tiny_t5_path)
    argv[argv.index("--collection") + 1] = name
    assert main(argv) == 2
    assert f"collection name {name!r}" in one_error_line(capsys, "ingest")
    assert main(["search", "q", "--store", chroma_with_notes, "--collection", name]) == 2
    assert f"collection name {name!r}" in one_error_line(capsys, "search")
    opened = open_store(chroma_with_notes)
    try:
        assert opened.list_collections() == ["notes"]
    finally:
        opened.close()


@pytest.mark.parametrize("item", ["$ne=1", "$and=x", "=3"])
def test_operator_filters_are_one_line(item, chroma_with_notes, capsys):
    capsys.readouterr()
    assert main(["search", "q", "--store", chroma_with_notes, "--collection", "notes", "--filter", item]) == 2
    line = one_error_line(capsys, "search")
    assert "filter" in line


def test_metadata_chroma_would_drop_is_one_line(tmp_path, tiny_t5_path, capsys):
    corpus = tmp_path / "meta.jsonl"
    corpus.write_text('{"id": "a", "text": "x", "metadata": {"": 1}}\n', encoding="utf-8")
    assert main(ingest_argv(corpus, f"chroma:{tmp_path / 's'}", tiny_t5_path)) == 2
    assert "record 0, id 'a': metadata key '' (empty)" in one_error_line(capsys, "ingest")


def test_a_broken_model_folder_is_one_line(tmp_path, tiny_t5_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_t5_path, broken)
    (broken / "model.safetensors").write_bytes(b"\0" * 64)  # truncated weights
    corpus = write_corpus(tmp_path / "c.jsonl", 2)
    assert main(ingest_argv(corpus, f"chroma:{tmp_path / 's'}", broken)) == 2
    assert f"cannot load the model at {broken}" in one_error_line(capsys, "ingest")
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    assert main(ingest_argv(corpus, f"qdrant:{tmp_path / 'q'}", broken)) == 2
    assert "cannot load the model" in one_error_line(capsys, "ingest")
    assert not (tmp_path / "q").exists()  # the model is loaded before the store is opened


def test_a_missing_device_is_one_line(tmp_path, tiny_t5_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this torch has CUDA")
    corpus = write_corpus(tmp_path / "c.jsonl", 2)
    assert main([*ingest_argv(corpus, f"chroma:{tmp_path / 's'}", tiny_t5_path), "--device", "cuda"]) == 2
    assert "cuda" in one_error_line(capsys, "ingest")


@pytest.mark.parametrize(("kind", "blocked", "extra"), [("chroma", "chromadb", "chroma"),
                                                        ("qdrant", "qdrant_edge", "qdrant")])  # fmt: skip
def test_a_missing_extra_is_one_line(kind, blocked, extra, tmp_path, tiny_t5_path):
    corpus = write_corpus(tmp_path / "c.jsonl", 2)
    argv = ingest_argv(corpus, f"{kind}:{tmp_path / 's'}", tiny_t5_path)
    code = (f"import sys; sys.modules[{blocked!r}] = None\n"  # as if the package were not installed
            f"from instructor_core.cli import main; sys.exit(main({argv!r}))")  # fmt: skip
    run = subprocess.run([sys.executable, "-c", code], env=cli_env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    (line,) = error_lines(run.stderr)
    assert f'pip install -e ".[{extra}]"' in line and "another project" in line


def test_an_unexpected_error_keeps_its_traceback(chroma_with_notes, monkeypatch):
    from instructor_chroma.store import ChromaStore

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(ChromaStore, "search", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["search", "q", "--store", chroma_with_notes, "--collection", "notes"])
