"""instructor_langchain.InstructorEmbeddings: exact instructions, batching async, errors, a real RAG chain."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from pydantic import ValidationError

from instructor_core import InstructorEncoder
from instructor_langchain import InstructorEmbeddings
from tests.shared_checks import run_doc_example, scifact_subset

TEXTS = ["A man plays the guitar.", "Cells divide.", "the bank transfer failed", "Water boils at 100 C."]


@pytest.fixture
def bert_embeddings(tiny_bert_encoder) -> InstructorEmbeddings:
    return InstructorEmbeddings(encoder=tiny_bert_encoder, batch_size=3)


def test_applies_each_instruction_exactly_once(tiny_bert_encoder, bert_embeddings):
    enc = tiny_bert_encoder
    assert enc.instructions.query and enc.instructions.document  # the test needs real instructions
    docs = np.array(bert_embeddings.embed_documents(TEXTS))
    query = np.array(bert_embeddings.embed_query(TEXTS[0]))
    np.testing.assert_allclose(docs, enc.encode_documents(TEXTS), rtol=0, atol=1e-6)
    np.testing.assert_allclose(query, enc.encode_queries(TEXTS[:1])[0], rtol=0, atol=1e-6)
    # not left out, not applied twice, and queries differ from documents
    bare = enc.encode_documents(TEXTS, "")
    twice = enc.encode_documents([enc.instructions.document + t for t in TEXTS])
    assert np.abs(docs - bare).max() > 1e-3
    assert np.abs(docs - twice).max() > 1e-3
    assert np.abs(query - docs[0]).max() > 1e-3
    assert bert_embeddings.instructions == enc.instructions


def test_custom_instructions_and_no_normalization(tiny_bert_encoder):
    emb = InstructorEmbeddings(
        encoder=tiny_bert_encoder, query_instruction="Q: ", document_instruction="", normalize=False
    )
    np.testing.assert_allclose(
        emb.embed_documents(TEXTS), tiny_bert_encoder.encode_documents(TEXTS, "", normalize=False), atol=1e-6
    )
    np.testing.assert_allclose(
        emb.embed_query("Cells divide."),
        tiny_bert_encoder.encode_queries(["Cells divide."], "Q: ")[0],
        atol=1e-6,
    )
    assert emb.instructions.query == "Q: " and emb.instructions.document == ""


def test_from_path_equals_shared_encoder(tiny_bert_path, tiny_bert_encoder, bert_embeddings):
    loaded = InstructorEmbeddings(model_name=tiny_bert_path, device="cpu")  # a Path is fine too
    assert loaded.model_name == str(tiny_bert_path)
    assert loaded.encoder is not tiny_bert_encoder and loaded.dimension == tiny_bert_encoder.dimension == 32
    np.testing.assert_allclose(loaded.embed_documents(TEXTS), bert_embeddings.embed_documents(TEXTS), atol=1e-6)
    second = InstructorEmbeddings(encoder=tiny_bert_encoder, query_instruction="Find: ")
    assert second.encoder is bert_embeddings.encoder  # one model serves several adapters


def test_return_types_are_python_floats(bert_embeddings):
    docs = bert_embeddings.embed_documents(TEXTS)
    query = bert_embeddings.embed_query("x")
    assert type(docs) is list and all(type(row) is list and len(row) == 32 for row in docs)
    assert all(type(value) is float for row in docs for value in row)
    assert type(query) is list and len(query) == 32 and all(type(value) is float for value in query)
    assert bert_embeddings.embed_documents([]) == []


def test_bad_input_raises_the_core_type_error(bert_embeddings):
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str, got NoneType"):
        bert_embeddings.embed_documents(["a", None])
    with pytest.raises(TypeError, match="single str"):
        bert_embeddings.embed_documents("just one string")
    with pytest.raises(TypeError, match="text must be a str, got int"):
        bert_embeddings.embed_query(3)
    with pytest.raises(TypeError, match=r"texts\[0\] must be a str"):
        asyncio.run(bert_embeddings.aembed_documents([b"bytes"]))


def test_rejects_unknown_fields_and_bad_settings(tiny_bert_encoder, tiny_bert_path):
    with pytest.raises(ValidationError, match="extra_forbidden|Extra inputs"):
        InstructorEmbeddings(encoder=tiny_bert_encoder, model_path="x")
    with pytest.raises(ValidationError, match="batch_size"):
        InstructorEmbeddings(encoder=tiny_bert_encoder, batch_size=0)
    with pytest.raises(ValidationError, match="query_instruction"):
        InstructorEmbeddings(encoder=tiny_bert_encoder, query_instruction=5)
    with pytest.raises(ValidationError, match="encoder"):
        InstructorEmbeddings(encoder="not an encoder")
    with pytest.raises(ValueError, match="model_name .* or encoder"):
        InstructorEmbeddings()
    with pytest.raises(ValueError, match="not both"):
        InstructorEmbeddings(model_name=str(tiny_bert_path), encoder=tiny_bert_encoder)
    with pytest.raises(ValueError, match="device only applies"):
        InstructorEmbeddings(encoder=tiny_bert_encoder, device="cpu")


async def test_async_equals_sync(bert_embeddings):
    docs = await bert_embeddings.aembed_documents(TEXTS)
    query = await bert_embeddings.aembed_query(TEXTS[1])
    assert docs == bert_embeddings.embed_documents(TEXTS)
    assert query == bert_embeddings.embed_query(TEXTS[1])
    assert await bert_embeddings.aembed_documents([]) == []


async def test_async_is_one_batched_call_in_a_worker_thread(bert_embeddings, monkeypatch):
    calls: list[tuple[int, int]] = []
    real = InstructorEncoder.encode_documents
    ticks = 0
    ticked = threading.Condition()
    waits: list[bool] = []

    def slow_encode(self, texts, *args, **kwargs):
        calls.append((threading.get_ident(), len(texts)))
        # a long encode: it ends once the event loop has ticked 3 times meanwhile (no clock: a loop blocked
        # by the encode never ticks, and the bounded wait reports False)
        with ticked:
            start = ticks
            waits.append(ticked.wait_for(lambda: ticks >= start + 3, timeout=10))
        return real(self, texts, *args, **kwargs)

    monkeypatch.setattr(InstructorEncoder, "encode_documents", slow_encode)

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            with ticked:
                ticks += 1
                ticked.notify_all()

    task = asyncio.create_task(ticker())
    texts = [f"document number {i}" for i in range(10)]
    vectors = await bert_embeddings.aembed_documents(texts)
    task.cancel()
    assert len(vectors) == 10
    assert calls == [(calls[0][0], 10)]  # one call for the whole list, not one per text
    assert calls[0][0] != threading.get_ident()  # not on the event loop's thread
    assert waits == [True]  # the loop kept ticking through the encode


def test_concurrent_threads_share_one_encoder(bert_embeddings):
    """Several threads on one encoder (a RAG chain's .batch does this) give the sequential answers."""
    from concurrent.futures import ThreadPoolExecutor

    expected = [bert_embeddings.embed_query(t) for t in TEXTS * 4]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(bert_embeddings.embed_query, TEXTS * 4))
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_import_without_extra_names_the_install_command():
    code = (
        "import sys\n"
        "sys.modules['langchain_core'] = None\n"
        "try:\n"
        "    import instructor_langchain\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    print('imported')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert 'pip install -e ".[langchain]"' in out.stdout


def test_docs_example_runs_and_prints_what_it_says(capsys):
    """The runnable example in docs/integrations/langchain.md: its printed lines are the ones it shows."""
    run_doc_example("integrations/langchain.md", capsys)


# ---------------------------------------------------------------------- a real RAG chain on SciFact
TOP_K = 5


@pytest.mark.slow
def test_rag_chain_retrieves_the_relevant_abstract(data_dir, minilm_encoder):
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.language_models import FakeListLLM
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import PromptTemplate
    from langchain_core.runnables import RunnablePassthrough
    from langchain_core.vectorstores import InMemoryVectorStore

    data, qids, doc_ids = scifact_subset(data_dir)
    emb = InstructorEmbeddings(encoder=minilm_encoder, batch_size=32)
    started = time.perf_counter()
    store = InMemoryVectorStore.from_texts(
        [data.corpus[d] for d in doc_ids], embedding=emb, metadatas=[{"doc_id": d} for d in doc_ids]
    )
    indexed = time.perf_counter() - started
    retriever = store.as_retriever(search_kwargs={"k": TOP_K})

    class PromptLog(BaseCallbackHandler):
        def __init__(self) -> None:
            self.prompts: list[str] = []

        def on_llm_start(self, serialized, prompts, **kwargs) -> None:
            self.prompts.extend(prompts)

    log = PromptLog()
    prompt = PromptTemplate.from_template("Abstracts:\n{context}\n\nClaim: {claim}\nVerdict:")
    llm = FakeListLLM(responses=["SUPPORTS"])

    def format_docs(docs) -> str:
        return "\n\n".join(doc.page_content for doc in docs)

    chain = RunnablePassthrough.assign(context=lambda x: retriever.invoke(x["claim"])) | RunnablePassthrough.assign(
        verdict=(lambda x: {"context": format_docs(x["context"]), "claim": x["claim"]})
        | prompt
        | llm
        | StrOutputParser()
    )
    claims = [data.queries[q] for q in qids]
    started = time.perf_counter()
    results = chain.batch([{"claim": c} for c in claims], config={"callbacks": [log], "max_concurrency": 2})
    answered = time.perf_counter() - started

    hits = 0
    for qid, claim, result in zip(qids, claims, results, strict=True):
        assert result["verdict"] == "SUPPORTS" and len(result["context"]) == TOP_K
        found = [doc.metadata["doc_id"] for doc in result["context"]]
        if set(found) & set(data.qrels[qid]):
            hits += 1
        # the LLM was fed this claim's retrieved abstracts
        fed = [p for p in log.prompts if f"Claim: {claim}\n" in p]
        assert len(fed) == 1 and all(doc.page_content in fed[0] for doc in result["context"])
    print(
        f"\nRAG chain: {hits}/{len(qids)} claims with a relevant abstract in top {TOP_K} of {len(doc_ids)}; "
        f"indexing {indexed:.1f}s, {len(qids)} chain runs {answered:.1f}s"
    )
    assert hits >= 18  # measured: 19/20 with all-MiniLM-L6-v2
