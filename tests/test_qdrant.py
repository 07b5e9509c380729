"""instructor_qdrant: collections, streaming idempotent ingest, search, retries on transport errors."""

from __future__ import annotations

import socket

import numpy as np
import pytest

pytest.importorskip("qdrant_client")
from qdrant_client import QdrantClient, models  # noqa: E402
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse  # noqa: E402

from instructor_core import Instructions, InstructorEncoder  # noqa: E402
from instructor_core.ingest.engine import IngestError  # noqa: E402
from instructor_qdrant import (  # noqa: E402
    CollectionMismatchError,
    RecordError,
    ensure_collection,
    ingest,
    point_id,
    read_layout,
    search,
)
from tests.tiny_models import corpus_lines  # noqa: E402

Q = "Represent the question for retrieval: "
D = "Represent the document for retrieval: "
S = "Represent the summary for retrieval: "


def records(n: int, start: int = 0) -> list[dict]:
    lines = corpus_lines(start + n)[start:]
    return [
        {"id": f"doc-{start + i}", "text": t, "metadata": {"n": start + i, "even": (start + i) % 2 == 0}}
        for i, t in enumerate(lines)
    ]


@pytest.fixture(scope="module")
def encoder(tiny_t5_path):
    return InstructorEncoder.from_pretrained(tiny_t5_path, Instructions(query=Q, document=D), device="cpu")


@pytest.fixture()
def client():
    c = QdrantClient(":memory:")
    yield c
    c.close()


def stored_points(client, name, docs, using=None):
    got = client.retrieve(name, ids=[point_id(d["id"]) for d in docs], with_vectors=True, with_payload=True)
    by_doc = {p.payload["id"]: p for p in got}
    vectors = [by_doc[d["id"]].vector for d in docs]
    return by_doc, np.array([v[using] if using else v for v in vectors], dtype=np.float32)


def test_ensure_collection_creates_cosine_with_layout(client, encoder):
    layout = ensure_collection(client, "docs", encoder, model="tiny-t5")
    params = client.get_collection("docs").config.params.vectors
    assert (params.size, params.distance) == (24, models.Distance.COSINE)
    assert layout.dimension == 24 and layout.document_instruction == D and layout.query_instruction == Q
    assert read_layout(client, "docs") == layout
    assert ensure_collection(client, "docs", encoder, model="tiny-t5") == layout  # existing, fits


def test_ensure_collection_refuses_mismatches(client, encoder, tiny_bert_encoder, tiny_t5_path):
    ensure_collection(client, "docs", encoder, model="tiny-t5")
    with pytest.raises(CollectionMismatchError, match="24-dimensional vectors, the encoder makes 32"):
        ensure_collection(client, "docs", tiny_bert_encoder)
    with pytest.raises(CollectionMismatchError, match="model='tiny-t5'"):
        ensure_collection(client, "docs", encoder, model="other")
    with pytest.raises(CollectionMismatchError, match="one unnamed vector"):
        ensure_collection(client, "docs", encoder, vectors={"doc": D})
    client.create_collection("dot", vectors_config=models.VectorParams(size=24, distance=models.Distance.DOT))
    with pytest.raises(CollectionMismatchError, match="Dot distance"):
        ensure_collection(client, "dot", encoder)
    other = InstructorEncoder.from_pretrained(
        tiny_t5_path, Instructions(query=Q, document="Represent the tweet: "), device="cpu"
    )
    with pytest.raises(CollectionMismatchError, match="document_instruction"):
        ensure_collection(client, "docs", other)


def test_ingest_and_search_match_brute_force(client, encoder):
    docs = records(40)
    report = ingest(client, "docs", docs, encoder, batch_size=16, show_progress=False)
    assert (report.seen, report.written, report.batches) == (40, 40, 3)
    assert client.count("docs").count == 40
    query = "cell protein gene study"
    scores = encoder.encode_documents([d["text"] for d in docs]) @ encoder.encode_queries([query])[0]
    order = np.argsort(-scores, kind="stable")[:5]
    hits = search(client, "docs", query, encoder, limit=5)
    assert [h.id for h in hits] == [docs[i]["id"] for i in order]
    np.testing.assert_allclose([h.score for h in hits], scores[order], atol=1e-5)
    top = docs[order[0]]
    assert hits[0].text == top["text"] and dict(hits[0].metadata) == top["metadata"]
    assert hits[0].point_id == point_id(top["id"])
    even = search(client, "docs", query, encoder, limit=5, filter={"even": True})
    expected_even = [docs[i]["id"] for i in np.argsort(-scores, kind="stable") if i % 2 == 0][:5]
    assert [h.id for h in even] == expected_even


def test_path_client_persists_points_and_layout(tmp_path, encoder):
    docs = records(12)
    c = QdrantClient(path=str(tmp_path / "q"))
    ingest(c, "docs", docs, encoder, model="tiny-t5", show_progress=False)
    c.close()
    c = QdrantClient(path=str(tmp_path / "q"))
    layout = read_layout(c, "docs")
    assert (layout.model, layout.query_instruction, layout.document_instruction) == ("tiny-t5", Q, D)
    hits = search(c, "docs", docs[3]["text"], encoder, limit=12)
    assert sorted(h.id for h in hits) == sorted(d["id"] for d in docs)
    c.close()


def test_named_vectors_hold_one_view_per_instruction(client, encoder):
    docs = records(10)
    views = {"doc": D, "summary": S}
    ingest(client, "multi", docs, encoder, vectors=views, show_progress=False)
    params = client.get_collection("multi").config.params.vectors
    assert set(params) == {"doc", "summary"}
    texts = [d["text"] for d in docs]
    for name, instruction in views.items():
        _, got = stored_points(client, "multi", docs, using=name)
        np.testing.assert_allclose(got, encoder.encode_documents(texts, instruction), atol=1e-5)
    # each view's search ranks all documents exactly as brute force over that view does, and the
    # two views rank them differently (searching the wrong view would show)
    query = encoder.encode_queries([docs[2]["text"]])[0]
    expected = {}
    for name, instruction in views.items():
        scores = encoder.encode_documents(texts, instruction) @ query
        order = np.argsort(-scores, kind="stable")
        expected[name] = [docs[i]["id"] for i in order]
        hits = search(client, "multi", docs[2]["text"], encoder, limit=len(docs), vector=name)
        assert [h.id for h in hits] == expected[name]
        np.testing.assert_allclose([h.score for h in hits], scores[order], atol=1e-5)
    assert expected["doc"] != expected["summary"]
    assert read_layout(client, "multi").vectors == views
    with pytest.raises(CollectionMismatchError, match="named vectors"):
        ensure_collection(client, "multi", encoder)


def test_crash_then_rerun_leaves_one_point_per_id(client, encoder):
    docs = records(30)

    def crashing():
        for i, doc in enumerate(docs):
            if i == 17:
                raise RuntimeError("network cable unplugged")
            yield doc

    with pytest.raises(RuntimeError, match="unplugged"):
        ingest(client, "docs", crashing(), encoder, batch_size=5, show_progress=False)
    assert client.count("docs").count == 17  # every record read before the error, the partial batch too (issue 24)
    report = ingest(client, "docs", docs, encoder, batch_size=5, show_progress=False)
    # the 17 stored are skipped unchanged (issue 23): only the rest is embedded and written
    assert (report.unchanged, report.embedded, report.written) == (17, 13, 13) and client.count("docs").count == 30
    by_doc, vectors = stored_points(client, "docs", docs)
    assert set(by_doc) == {d["id"] for d in docs}
    np.testing.assert_allclose(vectors, encoder.encode_documents([d["text"] for d in docs]), atol=1e-5)


@pytest.mark.parametrize(
    ("bad", "pattern"),
    [
        ({"text": "no id"}, r'record 6: has no "id"'),
        ({"id": "x"}, r"record 6, id 'x': has no \"text\""),
        ({"id": "doc-4", "text": "dup"}, r"record 6, id 'doc-4': duplicate id .*record 4"),
        ({"id": "x", "text": b"bytes"}, r"record 6, id 'x': text must be a str, got bytes"),
        (
            {"id": "x", "text": "t", "metadata": {"id": "clash"}},
            r"record 6, id 'x': metadata key 'id' is reserved",
        ),
    ],
)
def test_bad_record_names_it_and_writes_nothing_of_its_batch(client, encoder, bad, pattern):
    docs = records(8)
    docs[6] = bad
    with pytest.raises(RecordError, match=pattern):
        ingest(client, "docs", docs, encoder, batch_size=4, show_progress=False)
    assert client.count("docs").count == 4


def test_dimension_mismatch_is_refused_before_writing(client, encoder, tiny_bert_encoder):
    ingest(client, "docs", records(3), encoder, show_progress=False)
    with pytest.raises(CollectionMismatchError, match="24-dimensional"):
        ingest(client, "docs", records(3, start=10), tiny_bert_encoder, show_progress=False)
    assert client.count("docs").count == 3


# ------------------------------------------------------------------------------ remote client, retries
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: connections are refused


class SplitClient:
    """Collection calls go to a local client; the first ``failures`` upserts go to a real remote
    ``QdrantClient(url=...)`` whose server is down, so they raise the client's real transport error."""

    def __init__(self, local, remote, failures):
        self.local, self.remote, self.failures, self.upserts = local, remote, failures, 0

    def __getattr__(self, name):
        return getattr(self.local, name)

    def upsert(self, **kwargs):
        self.upserts += 1
        if self.upserts <= self.failures:
            return self.remote.upsert(**kwargs)
        return self.local.upsert(**kwargs)


@pytest.fixture()
def remote():
    c = QdrantClient(url=f"http://127.0.0.1:{closed_port()}", timeout=2, check_compatibility=False)
    yield c
    c.close()


def test_remote_client_reports_the_transport_error(remote, encoder):
    with pytest.raises(ResponseHandlingException):  # the collection check: not an ingest yet
        ingest(remote, "docs", records(3), encoder, show_progress=False)


def test_upsert_is_retried_with_backoff_on_transport_errors(client, remote, encoder):
    flaky = SplitClient(client, remote, failures=2)
    waits: list[float] = []
    report = ingest(flaky, "docs", records(10), encoder, backoff=0.25, sleep=waits.append, show_progress=False)
    assert report.written == 10 and client.count("docs").count == 10
    assert flaky.upserts == 3 and waits == [0.25, 0.5]


def test_retries_are_bounded(client, remote, encoder):
    flaky = SplitClient(client, remote, failures=99)
    waits: list[float] = []
    with pytest.raises(IngestError, match=r"after 3 attempts .*0 of 4 records read so far were written") as error:
        ingest(flaky, "docs", records(4), encoder, max_attempts=3, sleep=waits.append, show_progress=False)
    assert isinstance(error.value.__cause__, ResponseHandlingException)
    assert flaky.upserts == 3 and waits == [0.5, 1.0]


def test_server_rejections_and_local_errors_are_not_retried(client, encoder):
    class Rejecting(SplitClient):
        def upsert(self, **kwargs):
            self.upserts += 1
            raise UnexpectedResponse(400, "Bad Request", b"{}", None)

    rejecting = Rejecting(client, None, 0)
    waits: list[float] = []
    with pytest.raises(UnexpectedResponse):
        ingest(rejecting, "docs", records(4), encoder, sleep=waits.append, show_progress=False)
    assert rejecting.upserts == 1 and waits == []

    class Broken:
        instructions, dimension, calls = encoder.instructions, encoder.dimension, 0

        def encode_documents(self, *args, **kwargs):
            Broken.calls += 1
            raise ConnectionError("not a transport error of the upsert")

    with pytest.raises(ConnectionError):
        ingest(client, "docs", records(4), Broken(), sleep=waits.append, show_progress=False)
    assert Broken.calls == 1 and waits == []


def test_ingest_streams_one_batch_at_a_time(client, encoder):
    pulled = 0

    def source():
        nonlocal pulled
        for doc in records(23):
            pulled += 1
            yield doc

    class Recording(SplitClient):
        def upsert(self, **kwargs):
            seen_at_write.append(pulled)
            return self.local.upsert(**kwargs)

    seen_at_write: list[int] = []
    report = ingest(Recording(client, None, 0), "docs", source(), encoder, batch_size=5, show_progress=False)
    # batch k+1 is read (and encoded) while batch k is written, never more: two batches in memory
    assert seen_at_write == [10, 15, 20, 23, 23]
    assert (report.seen, report.batches) == (23, 5) and client.count("docs").count == 23


# ------------------------------------------------------------------------------ async client
async def test_async_ingest_and_search_match_the_sync_ones(client, encoder):
    from qdrant_client import AsyncQdrantClient

    from instructor_qdrant import aingest, aread_layout, asearch

    docs = records(30)
    aclient = AsyncQdrantClient(":memory:")
    try:
        report = await aingest(aclient, "docs", docs, encoder, model="tiny-t5", batch_size=8)
        assert (report.seen, report.written, report.batches) == (30, 30, 4)
        again = await aingest(aclient, "docs", docs, encoder, model="tiny-t5", batch_size=8)
        assert (again.unchanged, again.written) == (30, 0) and (await aclient.count("docs")).count == 30  # idempotent
        assert (await aread_layout(aclient, "docs")).model == "tiny-t5"
        ingest(client, "docs", docs, encoder, show_progress=False)
        query = "water fire earth air"
        got = await asearch(aclient, "docs", query, encoder, limit=6, filter={"even": False})
        want = search(client, "docs", query, encoder, limit=6, filter={"even": False})
        assert [h.id for h in got] == [h.id for h in want]
        np.testing.assert_allclose([h.score for h in got], [h.score for h in want], atol=1e-6)
        bad = records(8)
        bad[5] = {"id": "x", "text": None}
        with pytest.raises(RecordError, match=r"record 5, id 'x': text must be a str"):
            await aingest(aclient, "fresh", bad, encoder, batch_size=4)
        assert (await aclient.count("fresh")).count == 4
        with pytest.raises(CollectionMismatchError, match="24-dimensional"):
            await aingest(aclient, "docs", docs, tiny_bert_like(encoder))
    finally:
        await aclient.close()


def tiny_bert_like(encoder):
    class Wider:
        instructions, dimension = encoder.instructions, encoder.dimension + 8

    return Wider()


def test_edge_store_list_filter_matches_any_of_its_values(tmp_path, encoder):
    """``qdrant:DIR`` (Qdrant Edge): ``{key: [a, b]}`` keeps the points whose value is a or b."""
    pytest.importorskip("qdrant_edge")
    from instructor_core.ingest import store_ops
    from instructor_core.ingest.stores import open_store

    store = open_store(f"qdrant:{tmp_path / 'edge'}")
    try:
        store_ops.ingest(store, "docs", records(8), encoder, model="tiny-t5", show_progress=False)
        (hits,) = store_ops.search(store, "docs", ["cell"], encoder, k=8, filters={"n": [1, 6]})
        assert sorted(h.id for h in hits) == ["doc-1", "doc-6"]
        (hits,) = store_ops.search(store, "docs", ["cell"], encoder, k=8, filters={"n": 6})
        assert [h.id for h in hits] == ["doc-6"]
    finally:
        store.close()


def test_grpc_unavailable_and_deadline_exceeded_are_transport_errors():
    """A gRPC client's connection failures are retried like HTTP ones; a refusal by the server is not."""
    grpc = pytest.importorskip("grpc")
    from instructor_qdrant.points import is_transport_error

    class Failed(grpc.RpcError):
        def __init__(self, code):
            self._code = code

        def code(self):
            return self._code

    codes = grpc.StatusCode
    assert is_transport_error(Failed(codes.UNAVAILABLE)) and is_transport_error(Failed(codes.DEADLINE_EXCEEDED))
    assert not is_transport_error(Failed(codes.INVALID_ARGUMENT)) and not is_transport_error(Failed(codes.NOT_FOUND))
