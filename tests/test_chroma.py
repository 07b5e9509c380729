"""instructor_chroma: the embedding function, persistence across processes and a real server, ingest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

chromadb = pytest.importorskip("chromadb")
from chromadb.config import Settings  # noqa: E402
from chromadb.utils.embedding_functions import known_embedding_functions  # noqa: E402

from instructor_chroma import (  # noqa: E402
    InstructorEmbeddingFunction,
    RecordError,
    clear_encoder_cache,
    ingest,
    is_remote,  # noqa: E402
    open_collection,
)
from instructor_core import InstructorEncoder  # noqa: E402
from instructor_core.ingest.stores import ModelMismatchError  # noqa: E402
from tests.tiny_models import corpus_lines  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def settings() -> Settings:
    """Fresh settings per client: chromadb's clients write their own fields into the object they get."""
    return Settings(anonymized_telemetry=False)


Q = "Represent the question for retrieval: "
D = "Represent the document for retrieval: "


def records(n: int, start: int = 0) -> list[dict]:
    lines = corpus_lines(start + n)[start:]
    return [{"id": f"doc-{start + i}", "text": t, "metadata": {"n": start + i}} for i, t in enumerate(lines)]


@pytest.fixture()
def ef(tiny_t5_path, tiny_t5_encoder):
    return InstructorEmbeddingFunction(
        str(tiny_t5_path), query_instruction=Q, document_instruction=D, encoder=tiny_t5_encoder
    )


@pytest.fixture()
def client(tmp_path):
    return chromadb.PersistentClient(path=str(tmp_path / "db"), settings=settings())


def test_embedding_function_uses_each_instruction(ef, tiny_t5_encoder):
    texts = corpus_lines(5)
    np.testing.assert_allclose(np.stack(ef(texts)), tiny_t5_encoder.encode_documents(texts, D), atol=1e-6)
    np.testing.assert_allclose(np.stack(ef.embed_query(texts)), tiny_t5_encoder.encode_queries(texts, Q), atol=1e-6)
    assert not np.allclose(np.stack(ef(texts)), np.stack(ef.embed_query(texts)))
    assert ef.default_space() == "cosine" and "cosine" in ef.supported_spaces()
    with pytest.raises(TypeError, match=r"documents\[1\] must be a str"):
        ef(["ok", 3])  # type: ignore[list-item]


def test_registered_name_and_config_round_trip(ef, tiny_t5_path):
    assert ef.name() == "instructor_chroma" != "instructor"
    assert known_embedding_functions["instructor_chroma"] is InstructorEmbeddingFunction
    assert known_embedding_functions["instructor"] is not InstructorEmbeddingFunction
    config = ef.get_config()
    assert config == {
        "model": str(tiny_t5_path),
        "query_instruction": Q,
        "document_instruction": D,
        "normalize": True,
        "max_length": 64,
        "fingerprint": InstructorEncoder.from_pretrained(tiny_t5_path, device="cpu").fingerprint,
    }
    rebuilt = InstructorEmbeddingFunction.build_from_config(json.loads(json.dumps(config)))
    assert rebuilt.get_config() == config and not rebuilt.is_legacy()
    texts = corpus_lines(3)
    np.testing.assert_allclose(np.stack(rebuilt.embed_query(texts)), np.stack(ef.embed_query(texts)), atol=1e-6)
    with pytest.raises(ValueError, match="needs a str 'model'"):
        InstructorEmbeddingFunction.build_from_config({"query_instruction": "", "document_instruction": ""})


def test_config_update_refuses_model_or_instruction_change(ef):
    old = ef.get_config()
    ef.validate_config_update(old, {**old, "normalize": True})  # harmless change passes
    for key, value in (
        ("model", "other/model"),
        ("query_instruction", "x: "),
        ("document_instruction", "y: "),
    ):
        with pytest.raises(ValueError, match=f"cannot change {key}"):
            ef.validate_config_update(old, {**old, key: value})


def test_open_collection_checks_existing_config(client, ef, tiny_t5_path, tiny_t5_encoder):
    collection = open_collection(client, "docs", ef)
    assert collection.configuration_json["hnsw"]["space"] == "cosine"
    assert collection.configuration_json["embedding_function"]["name"] == "instructor_chroma"
    other = InstructorEmbeddingFunction(
        str(tiny_t5_path), query_instruction=Q, document_instruction="Other: ", encoder=tiny_t5_encoder
    )
    with pytest.raises(ValueError, match="cannot change document_instruction"):
        open_collection(client, "docs", other)
    assert open_collection(client, "docs").name == "docs"  # reopened from its stored config


def test_ingest_then_query_matches_brute_force(client, ef, tiny_t5_encoder):
    collection = open_collection(client, "docs", ef)
    docs = records(40)
    report = ingest(collection, docs, batch_size=16, show_progress=False)
    assert (report.seen, report.written, report.batches) == (40, 40, 3)
    assert collection.count() == 40
    query = "cell protein gene study"
    doc_vecs = tiny_t5_encoder.encode_documents([d["text"] for d in docs], D)
    scores = doc_vecs @ tiny_t5_encoder.encode_queries([query], Q)[0]
    expected = [docs[i]["id"] for i in np.argsort(-scores, kind="stable")[:5]]
    got = collection.query(query_texts=[query], n_results=5)
    assert got["ids"][0] == expected
    np.testing.assert_allclose(1 - np.array(got["distances"][0]), np.sort(scores)[::-1][:5], atol=1e-5)
    assert got["metadatas"][0][0]["n"] == int(expected[0].split("-")[1])


def test_ingest_batches_under_client_max(client, ef, monkeypatch):
    collection = open_collection(client, "docs", ef)
    monkeypatch.setattr(collection._client, "get_max_batch_size", lambda: 7)
    report = ingest(collection, iter(records(20)), batch_size=100, show_progress=False)
    assert (report.seen, report.written, report.batches) == (20, 20, 3)


def test_crash_then_rerun_leaves_one_point_per_id(client, ef, tiny_t5_encoder):
    collection = open_collection(client, "docs", ef)
    docs = records(30)

    def crashing():
        for i, doc in enumerate(docs):
            if i == 17:
                raise RuntimeError("disk full")
            yield doc

    with pytest.raises(RuntimeError, match="disk full"):
        ingest(collection, crashing(), batch_size=5, show_progress=False)
    assert collection.count() == 17  # every record read before the error, the partial batch too (issue 24)
    report = ingest(collection, docs, batch_size=5, show_progress=False)
    # the 17 stored are skipped unchanged (issue 23): only the rest is embedded and written
    assert (report.unchanged, report.embedded, report.written) == (17, 13, 13) and collection.count() == 30
    stored = collection.get(ids=[d["id"] for d in docs], include=["embeddings", "documents"])
    by_id = dict(zip(stored["ids"], stored["embeddings"], strict=True))
    expected = tiny_t5_encoder.encode_documents([d["text"] for d in docs], D)
    np.testing.assert_allclose(np.stack([by_id[d["id"]] for d in docs]), expected, atol=1e-5)


@pytest.mark.parametrize(
    ("bad", "pattern"),
    [
        ({"text": "no id"}, r'record 6: has no "id"'),
        ({"id": "x"}, r"record 6, id 'x': has no \"text\""),
        ({"id": "doc-4", "text": "dup"}, r"record 6, id 'doc-4': duplicate id .*record 4"),
        ({"id": "x", "text": 42}, r"record 6, id 'x': text must be a str"),
        ({"id": "x", "text": "t", "metadata": {"tags": ["a"]}}, r"record 6, id 'x': metadata\['tags'\]"),
    ],
)
def test_bad_record_names_it_and_writes_nothing_of_its_batch(client, ef, bad, pattern):
    collection = open_collection(client, "docs", ef)
    docs = records(8)
    docs[6] = bad
    with pytest.raises(RecordError, match=pattern):
        ingest(collection, docs, batch_size=4, show_progress=False)
    assert sorted(collection.get()["ids"]) == [f"doc-{i}" for i in range(4)]


def test_dimension_mismatch_is_refused_before_writing(client, ef, tiny_bert_path, tiny_bert_encoder):
    collection = open_collection(client, "docs", ef)
    ingest(collection, records(3), show_progress=False)
    wider = InstructorEmbeddingFunction(str(tiny_bert_path), encoder=tiny_bert_encoder)
    with pytest.raises(ModelMismatchError, match="fingerprint sha256:"):  # another model: refused first
        ingest(collection, records(3, start=10), embedding_function=wider, show_progress=False)
    with pytest.raises(RecordError, match="record 0, id 'doc-10': .*24-dimensional .*32-dimensional"):
        ingest(collection, records(3, start=10), embedding_function=wider, show_progress=False, allow_model_change=True)
    assert collection.count() == 3


# ------------------------------------------------------------------------------ fresh processes
QUERY_SCRIPT = """
import json, sys
import chromadb
from chromadb.config import Settings
import instructor_chroma  # registers the embedding function so the collection config can be rebuilt

settings = Settings(anonymized_telemetry=False)
if sys.argv[1] == "path":
    client = chromadb.PersistentClient(path=sys.argv[2], settings=settings)
else:
    client = chromadb.HttpClient(host="127.0.0.1", port=int(sys.argv[2]), settings=settings)
collection = client.get_collection("docs")
result = collection.query(query_texts=[sys.argv[3]], n_results=5)
print(json.dumps({"ids": result["ids"][0], "distances": result["distances"][0]}))
"""


def query_in_fresh_process(kind: str, where: str, query: str) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(QUERY_SCRIPT), kind, where, query],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def expected_top5(encoder, docs, query):
    scores = encoder.encode_documents([d["text"] for d in docs], D) @ encoder.encode_queries([query], Q)[0]
    order = np.argsort(-scores, kind="stable")[:5]
    return [docs[i]["id"] for i in order], scores[order]


def test_fresh_process_queries_persistent_collection_without_the_function(tmp_path, ef, tiny_t5_encoder):
    client = chromadb.PersistentClient(path=str(tmp_path / "db"), settings=settings())
    docs = records(30)
    ingest(open_collection(client, "docs", ef), docs, show_progress=False)
    query = "music guitar man plays"
    got = query_in_fresh_process("path", str(tmp_path / "db"), query)
    ids, scores = expected_top5(tiny_t5_encoder, docs, query)
    assert got["ids"] == ids
    np.testing.assert_allclose(1 - np.array(got["distances"]), scores, atol=1e-5)


@pytest.mark.server
def test_http_server_collection_is_queried_from_a_fresh_process(chroma_server, ef, tiny_t5_encoder):
    client = chromadb.HttpClient(host="127.0.0.1", port=chroma_server, settings=settings())
    docs = records(30)
    collection = open_collection(client, "docs", ef)
    assert is_remote(collection)  # a server's writes overlap with the encoding of the next batch
    report = ingest(collection, docs, batch_size=8, show_progress=False)
    assert (report.written, report.batches) == (30, 4)
    query = "river mountain water city"
    got = query_in_fresh_process("http", str(chroma_server), query)
    ids, scores = expected_top5(tiny_t5_encoder, docs, query)
    assert got["ids"] == ids
    np.testing.assert_allclose(1 - np.array(got["distances"]), scores, atol=1e-5)


def teardown_module() -> None:
    clear_encoder_cache()


def test_ingest_streams_one_batch_at_a_time(client, ef, monkeypatch):
    collection = open_collection(client, "docs", ef)
    pulled = 0

    def source():
        nonlocal pulled
        for doc in records(23):
            pulled += 1
            yield doc

    seen_at_write: list[int] = []
    upsert = collection.upsert
    monkeypatch.setattr(collection, "upsert", lambda **kw: (seen_at_write.append(pulled), upsert(**kw))[1])
    report = ingest(collection, source(), batch_size=5, show_progress=False)
    # embedded: one batch read, embedded and written at a time
    assert seen_at_write == [5, 10, 15, 20, 23]
    assert (report.seen, report.batches) == (23, 5)
