"""The real clients against a real instructor serve process: the openai client, langchain-openai,
LlamaIndex's OpenAI-like embedding, Chroma's OpenAIEmbeddingFunction; this project's adapters and
CLI through ``server=`` / ``--server``. Each returns the in-process encoder's vectors within 1e-6,
queries with the query slot where the client can say so."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from instructor_core import InstructorEncoder, RemoteEncoder
from tests.serve_helpers import REPO, running

pytestmark = pytest.mark.server

KEY = "client-key"
TEXTS = [f"Document {i}: " + "about cells and light " * (i % 7 + 1) for i in range(250)]
QUERY = "which organelle makes energy?"


@pytest.fixture(scope="module")
def server(tiny_bert_path):
    with running(tiny_bert_path, "--api-key", KEY) as (_, url):
        yield url


@pytest.fixture(scope="module")
def local(tiny_bert_path):
    return InstructorEncoder.from_pretrained(tiny_bert_path, device="cpu")


@pytest.fixture(scope="module")
def expected(local):
    return local.encode_documents(TEXTS), local.encode_queries([QUERY])[0]


def test_openai_client_float_and_default_base64(server, expected):
    import openai

    client = openai.OpenAI(base_url=f"{server}/v1", api_key=KEY)
    docs, query = expected
    default = client.embeddings.create(input=TEXTS[:50], model="tiny")  # the client asks for base64
    floats = client.embeddings.create(input=TEXTS[:50], model="tiny", encoding_format="float")
    for response in (default, floats):
        np.testing.assert_allclose([d.embedding for d in response.data], docs[:50], atol=1e-6)
    assert default.usage.prompt_tokens > 0 and default.model
    q = client.embeddings.create(input=QUERY, model="tiny", extra_body={"input_type": "query"})
    np.testing.assert_allclose(q.data[0].embedding, query, atol=1e-6)


def test_openai_async_client(server, expected):
    import asyncio

    import openai

    async def main():
        client = openai.AsyncOpenAI(base_url=f"{server}/v1", api_key=KEY)
        return await client.embeddings.create(input=[QUERY], model="tiny", extra_body={"input_type": "query"})

    np.testing.assert_allclose(asyncio.run(main()).data[0].embedding, expected[1], atol=1e-6)


def test_langchain_openai_embeddings(server, expected):
    from langchain_openai import OpenAIEmbeddings

    docs, query = expected
    common = {"model": "tiny", "base_url": f"{server}/v1", "api_key": KEY, "check_embedding_ctx_length": False}
    documents = OpenAIEmbeddings(**common)
    np.testing.assert_allclose(documents.embed_documents(TEXTS), docs, atol=1e-6)  # 250 texts, LangChain's chunks
    queries = OpenAIEmbeddings(**common, model_kwargs={"extra_body": {"input_type": "query"}})
    np.testing.assert_allclose(queries.embed_query(QUERY), query, atol=1e-6)
    # LangChain's embed_query sends what embed_documents sends: without the role it gets the document slot
    np.testing.assert_allclose(documents.embed_query(QUERY), expected_doc_of_query(server), atol=1e-6)


def expected_doc_of_query(server):
    return RemoteEncoder(server, api_key=KEY).encode_documents([QUERY])[0]


def test_token_ids_as_langchain_sends_them_are_refused_naming_the_setting(server):
    """LangChain's OpenAIEmbeddings (check_embedding_ctx_length=True, its default) tokenizes with tiktoken
    and sends token ids; tiktoken's tables cannot be fetched offline, so the same request is sent here
    through the openai client that LangChain calls."""
    import openai

    client = openai.OpenAI(base_url=f"{server}/v1", api_key=KEY)
    with pytest.raises(openai.APIStatusError, match="check_embedding_ctx_length=False") as caught:
        client.embeddings.create(input=[[9906, 1917], [15339]], model="text-embedding-ada-002")
    assert caught.value.status_code == 422


def test_llamaindex_openai_like_embedding_default_batch_of_100(server, expected):
    from llama_index.embeddings.openai_like import OpenAILikeEmbedding

    docs, query = expected
    # LlamaIndex's OpenAIEmbedding sends 100 texts a request (OpenAILikeEmbedding's own default is 10)
    texts = OpenAILikeEmbedding(model_name="tiny", api_base=f"{server}/v1", api_key=KEY, embed_batch_size=100)
    np.testing.assert_allclose(texts.get_text_embedding_batch(TEXTS), docs, atol=1e-6)
    queries = OpenAILikeEmbedding(
        model_name="tiny",
        api_base=f"{server}/v1",
        api_key=KEY,
        additional_kwargs={"extra_body": {"input_type": "query"}},
    )
    np.testing.assert_allclose(queries.get_query_embedding(QUERY), query, atol=1e-6)


def test_chroma_openai_embedding_function(server, expected):
    from chromadb.utils.embedding_functions import OpenAIEmbeddingFunction

    function = OpenAIEmbeddingFunction(api_key=KEY, model_name="tiny", api_base=f"{server}/v1")
    np.testing.assert_allclose(np.asarray(function(TEXTS[:20])), expected[0][:20], atol=1e-6)


def test_this_projects_adapters_through_server(server, expected):
    from instructor_chroma import InstructorEmbeddingFunction
    from instructor_langchain import InstructorEmbeddings
    from instructor_llamaindex import InstructorEmbedding

    docs, query = expected
    lc = InstructorEmbeddings(server=server, api_key=KEY)
    np.testing.assert_allclose(lc.embed_documents(TEXTS), docs, atol=1e-6)
    np.testing.assert_allclose(lc.embed_query(QUERY), query, atol=1e-6)
    li = InstructorEmbedding(server=server, api_key=KEY)
    np.testing.assert_allclose(li.get_text_embedding_batch(TEXTS[:30]), docs[:30], atol=1e-6)
    np.testing.assert_allclose(li.get_query_embedding(QUERY), query, atol=1e-6)
    ch = InstructorEmbeddingFunction(server=server, api_key=KEY)
    np.testing.assert_allclose(np.asarray(ch(TEXTS[:10])), docs[:10], atol=1e-6)
    np.testing.assert_allclose(np.asarray(ch.embed_query([QUERY])), [query], atol=1e-6)


def test_remote_encoder_is_the_encoder_protocol(server, local):
    from instructor_core.model.protocols import Encoder

    remote = RemoteEncoder(server, api_key=KEY, request_size=64)
    assert isinstance(remote, Encoder)
    assert remote.dimension == local.dimension and remote.fingerprint == local.fingerprint
    assert remote.max_length == local.max_length and remote.instructions == local.instructions
    pairs = [("Classify: ", "a"), ("", "b"), ("Classify: ", "c")]
    np.testing.assert_allclose(remote.encode(pairs), local.encode(pairs), atol=1e-6)
    cut = remote.encode_queries(["x"], truncate_dim=8)
    np.testing.assert_allclose(cut, local.encode_queries(["x"], truncate_dim=8), atol=1e-6)
    np.testing.assert_array_equal(
        remote.encode_documents(TEXTS[:40], precision="ubinary"),
        local.encode_documents(TEXTS[:40], precision="ubinary"),
    )


def test_a_wrong_key_or_no_server_is_one_clear_error(server, tmp_path):
    from instructor_core import RemoteEncoderError

    with pytest.raises(RemoteEncoderError, match="401"):
        RemoteEncoder(server, api_key="wrong")
    with pytest.raises(RemoteEncoderError, match="cannot reach instructor serve"):
        RemoteEncoder("http://127.0.0.1:9", timeout=2)


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-m", "instructor_core.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "INSTRUCTOR_API_KEY": KEY, **(env or {})},
    )  # fmt: skip


def test_cli_ingest_through_the_server_and_search_either_way(server, tiny_bert_path, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    import json

    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(TEXTS[:60])))
    store = f"chroma:{tmp_path / 'store'}"
    done = _cli("ingest", str(corpus), "--server", server, "--store", store, "--collection", "col", "--quiet")
    assert done.returncode == 0, done.stderr
    through = _cli("search", QUERY, "--server", server, "--store", store, "--collection", "col", "--json", "--quiet")
    here = _cli("search", QUERY, "--store", store, "--collection", "col", "--json", "--quiet")  # loads the model here
    assert through.returncode == 0 and here.returncode == 0, (through.stderr, here.stderr)
    ranked = [json.loads(line)["id"] for line in through.stdout.splitlines()]
    assert ranked == [json.loads(line)["id"] for line in here.stdout.splitlines()] and len(ranked) == 10
    both = _cli("search", QUERY, "--server", server, "--model", str(tiny_bert_path), "--store", store,
                "--collection", "col")  # fmt: skip
    assert both.returncode == 2 and "not both" in both.stderr


def test_cli_refuses_a_server_of_another_model_naming_both_fingerprints(server, tiny_t5_path, tmp_path):
    import json

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(TEXTS[:10])))
    store = f"chroma:{tmp_path / 'store'}"
    assert _cli("ingest", str(corpus), "--model", str(tiny_t5_path), "--store", store, "--collection", "col",
                "--quiet").returncode == 0  # fmt: skip
    local_print = InstructorEncoder.from_pretrained(tiny_t5_path, device="cpu").fingerprint
    served_print = RemoteEncoder(server, api_key=KEY).fingerprint
    refused = _cli("search", QUERY, "--server", server, "--store", store, "--collection", "col")
    assert refused.returncode == 2, refused.stderr
    assert local_print in refused.stderr and served_print in refused.stderr
    loading = _cli("search", QUERY, "--server", server, "--device", "cpu", "--store", store, "--collection", "col")
    assert loading.returncode == 2 and "--device" in loading.stderr


def test_haystack_openai_embedders_through_the_role_routes(server, expected):
    pytest.importorskip("haystack")
    from haystack import Document
    from haystack.components.embedders import OpenAIDocumentEmbedder, OpenAITextEmbedder
    from haystack.utils import Secret

    docs, query = expected
    key = Secret.from_token(KEY)
    text = OpenAITextEmbedder(api_key=key, model="tiny", api_base_url=f"{server}/query/v1")
    np.testing.assert_allclose(text.run(QUERY)["embedding"], query, atol=1e-6)
    documents = OpenAIDocumentEmbedder(api_key=key, model="tiny", api_base_url=f"{server}/document/v1")
    embedded = documents.run([Document(content=t) for t in TEXTS[:40]])["documents"]
    np.testing.assert_allclose([d.embedding for d in embedded], docs[:40], atol=1e-6)


def test_haystack_instructor_embedders_with_server_url(server, expected, monkeypatch):
    pytest.importorskip("haystack")
    from haystack import Document, Pipeline
    from haystack_integrations.components.embedders.instructor import (
        InstructorDocumentEmbedder,
        InstructorTextEmbedder,
    )

    monkeypatch.setenv("INSTRUCTOR_API_KEY", KEY)
    docs, query = expected
    text = InstructorTextEmbedder(server_url=server)
    np.testing.assert_allclose(text.run(QUERY)["embedding"], query, atol=1e-6)
    documents = InstructorDocumentEmbedder(server_url=server, progress_bar=False)
    embedded = documents.run([Document(content=t) for t in TEXTS[:30]])["documents"]
    np.testing.assert_allclose([d.embedding for d in embedded], docs[:30], atol=1e-6)
    pipeline = Pipeline()
    pipeline.add_component("text", text)
    loaded = Pipeline.loads(pipeline.dumps())  # the URL and the key's variable name are saved, not the key
    assert KEY not in pipeline.dumps()
    np.testing.assert_allclose(loaded.run({"text": {"text": QUERY}})["text"]["embedding"], query, atol=1e-6)
    with pytest.raises(ValueError, match="one of them"):
        InstructorTextEmbedder(server_url=server, model="x")
    with pytest.raises(ValueError, match="max_length"):
        InstructorTextEmbedder(server_url=server, max_length=64)
