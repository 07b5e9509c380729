"""instructor serve against a real server process on a loopback port: the routes' vectors equal the
in-process encoder's, every refusal is the OpenAI envelope naming the input, the limits hold."""

from __future__ import annotations

import asyncio
import base64
import socket
import subprocess
import time

import httpx
import numpy as np
import pytest

from instructor_core import InstructorEncoder
from tests.serve_helpers import metric, running, spawn, stop, wait_ready

pytestmark = pytest.mark.server

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}
TEXTS = ["The cat sat on the mat.", "Photosynthesis makes sugar from light.", "A short one.", "word " * 40]


@pytest.fixture(scope="module")
def server(tiny_bert_path):
    flags = ("--api-key", KEY, "--max-client-batch-size", "64", "--max-queue-inputs", "500", "--max-input-chars",
             "5000", "--max-body-bytes", "200000")  # fmt: skip
    with running(tiny_bert_path, *flags) as (proc, url):
        yield url


@pytest.fixture(scope="module")
def local(tiny_bert_path):
    return InstructorEncoder.from_pretrained(tiny_bert_path, device="cpu")


def _post(url: str, path: str, body: dict, headers: dict | None = None) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, headers=AUTH if headers is None else headers, timeout=60)


def _vectors(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    rows = sorted(response.json()["data"], key=lambda row: row["index"])
    out = []
    for row in rows:
        value = row["embedding"]
        out.append(np.frombuffer(base64.b64decode(value), "<f4") if isinstance(value, str) else np.asarray(value))
    return np.stack(out).astype(np.float32)


def test_each_role_gets_its_slot_and_equals_the_in_process_encoder(server, local):
    queries = _vectors(_post(server, "/v1/embeddings", {"input": TEXTS, "input_type": "query"}))
    documents = _vectors(_post(server, "/v1/embeddings", {"input": TEXTS, "input_type": "document"}))
    passages = _vectors(_post(server, "/embeddings", {"input": TEXTS, "input_type": "passage"}))
    default = _vectors(_post(server, "/v1/embeddings", {"input": TEXTS}))
    np.testing.assert_allclose(queries, local.encode_queries(TEXTS), atol=1e-6)
    np.testing.assert_allclose(documents, local.encode_documents(TEXTS), atol=1e-6)
    np.testing.assert_allclose(passages, documents, atol=1e-6)
    np.testing.assert_allclose(default, documents, atol=1e-6)  # no role: the server's default, documents
    assert np.abs(queries - documents).max() > 1e-3  # the slots differ on this model


def test_instruction_prompt_name_dimensions_normalize_and_base64(server, local):
    got = _vectors(_post(server, "/v1/embeddings", {"input": TEXTS, "instruction": "Classify: "}))
    np.testing.assert_allclose(got, local.encode_documents(TEXTS, "Classify: "), atol=1e-6)
    got = _vectors(_post(server, "/v1/embeddings", {"input": TEXTS, "prompt_name": "query"}))
    np.testing.assert_allclose(got, local.encode_queries(TEXTS), atol=1e-6)
    got = _vectors(_post(server, "/v1/embeddings", {"input": TEXTS, "dimensions": 8, "input_type": "query"}))
    np.testing.assert_allclose(got, local.encode_queries(TEXTS, truncate_dim=8), atol=1e-6)
    assert got.shape == (len(TEXTS), 8)
    got = _vectors(_post(server, "/v1/embeddings", {"input": TEXTS, "normalize": False}))
    np.testing.assert_allclose(got, local.encode_documents(TEXTS, normalize=False), atol=1e-5)
    b64 = _vectors(_post(server, "/v1/embeddings", {"input": TEXTS, "encoding_format": "base64"}))
    np.testing.assert_allclose(b64, local.encode_documents(TEXTS), atol=1e-6)


def test_response_shape_and_usage_counts_the_models_tokens(server, local):
    body = _post(server, "/v1/embeddings", {"input": "hello there", "model": "whatever", "user": "u1"}).json()
    assert body["object"] == "list" and body["data"][0]["object"] == "embedding" and body["data"][0]["index"] == 0
    expected = len(local.tokenize([(local.instructions.document, "hello there")])[0])
    assert body["usage"] == {"prompt_tokens": expected, "total_tokens": expected}


def test_tei_embed_and_info(server, local):
    got = np.asarray(_post(server, "/embed", {"inputs": TEXTS, "input_type": "query"}).json(), dtype=np.float32)
    np.testing.assert_allclose(got, local.encode_queries(TEXTS), atol=1e-6)
    one = np.asarray(_post(server, "/embed", {"inputs": "one text"}).json(), dtype=np.float32)
    np.testing.assert_allclose(one, local.encode_documents(["one text"]), atol=1e-6)
    info = httpx.get(f"{server}/info", headers=AUTH).json()
    assert info["dimension"] == local.dimension and info["max_input_length"] == local.max_length
    assert info["fingerprint"] == local.fingerprint
    assert info["instructions"] == {"query": local.instructions.query, "document": local.instructions.document}
    assert info["max_client_batch_size"] == 64


def test_embed_sparse_is_the_bm25_hybrid_stores(server):
    pytest.importorskip("qdrant_edge")
    from instructor_qdrant.bm25 import Bm25

    got = _post(server, "/embed_sparse", {"inputs": ["cats and dogs and cats"]}).json()
    indices, values = Bm25().embed_documents(["cats and dogs and cats"])[0]
    assert got == [[{"index": i, "value": v} for i, v in zip(indices, values, strict=True)]]


@pytest.mark.parametrize(
    ("body", "status", "param", "words"),
    [
        ({"input": [1, 2, 3]}, 422, "input", "check_embedding_ctx_length=False"),
        ({"input": [[1, 2], [3]]}, 422, "input", "check_embedding_ctx_length=False"),
        ({"input": ["fine", ""]}, 422, "input[1]", "empty string"),
        ({"input": ["fine", 7]}, 422, "input[1]", "must be a string"),
        ({"input": []}, 422, "input", "empty list"),
        ({"inputs": ["x"]}, 422, "inputs", "unknown field"),
        ({"input": ["x"], "input_type": "question"}, 422, "input_type", "'query', 'document' or 'passage'"),
        ({"input": ["x"], "dimensions": 0}, 422, "dimensions", "positive integer"),
        ({"input": ["x"], "dimensions": 100000}, 422, "dimensions", "above this model's dimension"),
        ({"input": ["x"], "prompt_name": "nope"}, 422, "prompt_name", "nope"),
        ({"input": ["x"], "prompt_name": "query", "instruction": "a"}, 422, "prompt_name", "not both"),
        ({"input": ["x"], "encoding_format": "int8"}, 422, "encoding_format", "'float' or 'base64'"),
        ({"input": ["ok", "word " * 600], "truncate": False}, 422, "input[1]", "longer than the model's"),
        ({"input": ["x"] * 65}, 413, "input", "at most 64"),
        ({"input": ["ok", "y" * 5001]}, 413, "input[1]", "at most 5000"),
    ],
)
def test_bad_input_is_the_openai_envelope_naming_the_item(server, body, status, param, words):
    response = _post(server, "/v1/embeddings", body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param and words in error["message"]


def test_invalid_json_and_a_long_input_with_truncate_is_cut_as_in_process(server, local):
    response = httpx.post(f"{server}/v1/embeddings", content=b"{not json", headers=AUTH, timeout=30)
    assert response.status_code == 422 and "not valid JSON" in response.json()["error"]["message"]
    long = "word " * 600
    got = _vectors(_post(server, "/v1/embeddings", {"input": [long]}))
    np.testing.assert_allclose(got, local.encode_documents([long]), atol=1e-6)


def test_a_missing_or_wrong_key_is_401_and_embeds_nothing(server):
    before = metric(server, "instructor_inputs_embedded_total", AUTH)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        response = _post(server, "/v1/embeddings", {"input": ["secret"]}, headers=headers)
        assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"
        assert httpx.get(f"{server}/info", headers=headers).status_code == 401
    assert httpx.get(f"{server}/health").status_code == 200  # /health needs no key
    assert metric(server, "instructor_inputs_embedded_total", AUTH) == before


def test_a_huge_body_is_413_before_it_is_read(server):
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = (f"POST /v1/embeddings HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\n"
                "Content-Type: application/json\r\nContent-Length: 52428800\r\n\r\n")  # fmt: skip
        sock.sendall(head.encode() + b'{"input": ["')  # 50 MB announced, a few bytes sent
        answer = ""
        deadline = time.monotonic() + 10
        while "body_too_large" not in answer and time.monotonic() < deadline:  # head and body may come apart
            chunk = sock.recv(65536).decode()
            if not chunk:
                break
            answer += chunk
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert "body_too_large" in answer


def test_metrics_count_requests_inputs_tokens_and_batches(server):
    before = metric(server, "instructor_inputs_total", AUTH, ['route="openai"'])
    _post(server, "/v1/embeddings", {"input": TEXTS})
    assert metric(server, "instructor_inputs_total", AUTH, ['route="openai"']) == before + len(TEXTS)
    text = httpx.get(f"{server}/metrics", headers=AUTH).text
    for name in (
        "instructor_requests_total",
        "instructor_tokens_total",
        "instructor_batch_size_bucket",
        "instructor_queue_depth",
        "instructor_request_duration_seconds_bucket",
        "instructor_forward_seconds",
    ):
        assert name in text  # fmt: skip


def test_a_full_queue_answers_429_at_once_and_every_accepted_request_gets_its_vectors(server, local):
    texts = [f"request number {i} about topic {i % 17}" for i in range(2000)]
    expected = local.encode_documents(texts)

    async def main() -> list[tuple[int, httpx.Response]]:
        limits = httpx.Limits(max_connections=2000, max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=limits, timeout=120, headers=AUTH) as client:

            async def one(i: int) -> tuple[int, httpx.Response]:
                return i, await client.post(f"{server}/v1/embeddings", json={"input": [texts[i]]})

            return await asyncio.gather(*(one(i) for i in range(len(texts))))

    results = asyncio.run(main())
    statuses = [r.status_code for _, r in results]
    assert set(statuses) <= {200, 429}, sorted(set(statuses))
    assert statuses.count(429) > 0 and statuses.count(200) >= 500
    for i, response in results:
        if response.status_code == 200:
            np.testing.assert_allclose(_vectors(response)[0], expected[i], atol=1e-6)
        else:
            assert response.json()["error"]["code"] == "queue_full" and "--max-queue-inputs" in response.text


def test_a_client_that_disconnects_mid_queue_costs_no_forward_pass(minilm_path):
    """Long requests keep the real MiniLM busy for seconds (a tiny model would empty the queue before the
    next request arrives); a request joins the queue behind them and its client goes: its inputs are
    dropped, never embedded."""
    with running(minilm_path, "--api-key", KEY, "--max-batch-size", "32") as (_, url):
        host, port = url.removeprefix("http://").split(":")

        def raw(texts: list[str]) -> bytes:
            import json

            body = json.dumps({"input": texts}).encode()
            head = (f"POST /v1/embeddings HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
            return head.encode() + body

        busy = ["long text about many things " * 40] * 64
        keep = [socket.create_connection((host, int(port)), timeout=300) for _ in range(4)]
        for sock in keep:  # 256 inputs of 256 tokens ahead in the queue: seconds of work for MiniLM
            sock.sendall(raw(busy))
        deadline = time.monotonic() + 60
        while metric(url, "instructor_forward_passes_total", AUTH) == 0:  # the model is at work
            assert time.monotonic() < deadline
            time.sleep(0.02)
        gone = socket.create_connection((host, int(port)), timeout=10)
        gone.sendall(raw([f"never embedded {i}" for i in range(40)]))
        time.sleep(0.2)
        gone.close()
        for sock in keep:
            assert sock.recv(64).startswith(b"HTTP/1.1 200")
            sock.close()
        deadline = time.monotonic() + 30
        while metric(url, "instructor_inputs_dropped_total", AUTH) < 40 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert metric(url, "instructor_inputs_dropped_total", AUTH) == 40
        assert metric(url, "instructor_inputs_embedded_total", AUTH) == 4 * 64


def test_health_is_503_until_the_model_is_loaded_then_200(tiny_bert_path, tmp_path):
    proc, url = spawn(tiny_bert_path)
    try:
        seen = set()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and 200 not in seen:
            try:
                response = httpx.get(f"{url}/health", timeout=2)
            except httpx.HTTPError:
                time.sleep(0.05)
                continue
            seen.add(response.status_code)
            if response.status_code == 503:
                assert response.json()["status"] == "loading"
                early = httpx.post(f"{url}/v1/embeddings", json={"input": ["x"]}, timeout=10)
                assert early.status_code in (200, 503)
                if early.status_code == 503:
                    assert early.json()["error"]["code"] == "loading"
            time.sleep(0.02)
        assert 200 in seen
    finally:
        stop(proc)


def test_sigterm_drains_accepted_work_and_refuses_new_requests(tiny_bert_path, local):
    """A request is accepted (its handler runs, its body still arriving) when SIGTERM comes: a new request
    is answered 503, the accepted one finishes with its vectors, then the process exits 0."""
    import json

    proc, url = spawn(tiny_bert_path)
    try:
        wait_ready(proc, url)
        host, port = url.removeprefix("http://").split(":")
        texts = [f"text {i} " + "filler " * 60 for i in range(300)]
        body = json.dumps({"input": texts}).encode()
        accepted = socket.create_connection((host, int(port)), timeout=60)
        accepted.sendall((f"POST /v1/embeddings HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:100])  # fmt: skip
        time.sleep(0.5)  # its handler is reading the body: in flight
        proc.send_signal(subprocess.signal.SIGTERM)
        time.sleep(0.5)
        late = httpx.post(f"{url}/v1/embeddings", json={"input": ["too late"]}, timeout=30)
        assert late.status_code == 503 and late.json()["error"]["code"] == "shutting_down"
        assert httpx.get(f"{url}/health", timeout=10).json()["status"] == "draining"
        accepted.sendall(body[100:])
        answer = b""
        while not answer.endswith(b"}"):
            chunk = accepted.recv(1 << 20)
            if not chunk:
                break
            answer += chunk
        accepted.close()
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        rows = sorted(json.loads(payload)["data"], key=lambda row: row["index"])
        got = np.asarray([rows[0]["embedding"], rows[-1]["embedding"]], dtype=np.float32)
        np.testing.assert_allclose(got, local.encode_documents([texts[0], texts[-1]]), atol=1e-6)
        assert proc.wait(60) == 0
    finally:
        stop(proc)


def test_a_model_that_fails_to_load_is_one_line_and_exit_2(tmp_path):
    proc, url = spawn(tmp_path / "no-such-model")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2
    errors = [line for line in out.splitlines() if line.startswith("instructor serve: error:")]
    assert len(errors) == 1 and "no-such-model" in errors[0] and "Traceback" not in out


def test_role_routes_for_clients_that_can_set_only_a_base_url(server, local):
    """Haystack's OpenAI embedders send no extra field: /query/v1 and /document/v1 fix the role."""
    queries = _vectors(_post(server, "/query/v1/embeddings", {"input": TEXTS}))
    np.testing.assert_allclose(queries, local.encode_queries(TEXTS), atol=1e-6)
    documents = _vectors(_post(server, "/document/embeddings", {"input": TEXTS}))
    np.testing.assert_allclose(documents, local.encode_documents(TEXTS), atol=1e-6)
    tei = np.asarray(_post(server, "/query/embed", {"inputs": TEXTS}).json(), dtype=np.float32)
    np.testing.assert_allclose(tei, local.encode_queries(TEXTS), atol=1e-6)
    # a role in the body wins over the route's
    named = _vectors(_post(server, "/query/v1/embeddings", {"input": TEXTS, "input_type": "document"}))
    np.testing.assert_allclose(named, documents, atol=1e-6)
