"""instructor_llamaindex.InstructorEmbedding: exact instructions through Settings, indexes and
ingestion pipelines, batched async, errors, and retrieval on SciFact."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from llama_index.core import Settings, VectorStoreIndex
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.schema import MetadataMode, TextNode
from pydantic import ValidationError

from instructor_core import InstructorEncoder
from instructor_llamaindex import InstructorEmbedding
from tests.shared_checks import run_doc_example, scifact_subset

TEXTS = ["A man plays the guitar.", "Cells divide.", "the bank transfer failed", "Water boils at 100 C."]


@pytest.fixture
def bert_embedding(tiny_bert_encoder) -> InstructorEmbedding:
    return InstructorEmbedding(encoder=tiny_bert_encoder, embed_batch_size=3)


@pytest.fixture
def embed_settings():
    """Set Settings.embed_model inside a test and put the previous one back afterwards."""
    previous = Settings._embed_model

    def use(model: InstructorEmbedding) -> None:
        Settings.embed_model = model

    yield use
    Settings._embed_model = previous


def make_nodes(texts: list[str]) -> list[TextNode]:
    """Nodes whose embedded content is exactly the text: the id metadata is kept out of embeddings."""
    return [
        TextNode(text=t, id_=f"doc-{i}", metadata={"doc_id": f"doc-{i}"}, excluded_embed_metadata_keys=["doc_id"])
        for i, t in enumerate(texts)
    ]


def test_applies_each_instruction_exactly_once(tiny_bert_encoder, bert_embedding):
    enc = tiny_bert_encoder
    assert enc.instructions.query and enc.instructions.document  # the test needs real instructions
    docs = np.array(bert_embedding.get_text_embedding_batch(TEXTS))
    query = np.array(bert_embedding.get_query_embedding(TEXTS[0]))
    np.testing.assert_allclose(docs, enc.encode_documents(TEXTS), rtol=0, atol=1e-6)
    np.testing.assert_allclose(query, enc.encode_queries(TEXTS[:1])[0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(bert_embedding.get_text_embedding(TEXTS[2]), docs[2], rtol=0, atol=1e-6)
    bare = enc.encode_documents(TEXTS, "")
    twice = enc.encode_documents([enc.instructions.document + t for t in TEXTS])
    assert np.abs(docs - bare).max() > 1e-3 and np.abs(docs - twice).max() > 1e-3
    assert np.abs(query - docs[0]).max() > 1e-3
    assert bert_embedding.instructions == enc.instructions


def test_custom_instructions_and_no_normalization(tiny_bert_encoder):
    emb = InstructorEmbedding(encoder=tiny_bert_encoder, query_instruction="Q: ", text_instruction="", normalize=False)
    np.testing.assert_allclose(
        emb.get_text_embedding_batch(TEXTS),
        tiny_bert_encoder.encode_documents(TEXTS, "", normalize=False),
        atol=1e-6,
    )
    np.testing.assert_allclose(
        emb.get_query_embedding("Cells divide."),
        tiny_bert_encoder.encode_queries(["Cells divide."], "Q: ")[0],
        atol=1e-6,
    )


def test_settings_index_and_retriever_use_both_instructions(tiny_bert_encoder, bert_embedding, embed_settings):
    embed_settings(bert_embedding)
    nodes = make_nodes(TEXTS)
    index = VectorStoreIndex(nodes)  # embeds with Settings.embed_model
    stored = np.array([index.vector_store.get(n.node_id) for n in nodes])
    np.testing.assert_allclose(stored, tiny_bert_encoder.encode_documents(TEXTS), atol=1e-6)
    hits = index.as_retriever(similarity_top_k=4).retrieve("Do cells divide?")
    expected = tiny_bert_encoder.encode_documents(TEXTS) @ tiny_bert_encoder.encode_queries(["Do cells divide?"])[0]
    got = {hit.node.node_id: hit.score for hit in hits}
    assert got == pytest.approx({f"doc-{i}": float(s) for i, s in enumerate(expected)}, abs=1e-5)


def test_ingestion_pipeline_sync_and_async_embed_with_document_instruction(tiny_bert_encoder, bert_embedding):
    texts = TEXTS * 3  # 12 texts, batches of 3
    nodes = make_nodes(texts)
    assert [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes] == texts
    expected = tiny_bert_encoder.encode_documents(texts)
    synced = IngestionPipeline(transformations=[bert_embedding]).run(nodes=make_nodes(texts))
    asynced = asyncio.run(IngestionPipeline(transformations=[bert_embedding]).arun(nodes=make_nodes(texts)))
    np.testing.assert_allclose([n.embedding for n in synced], expected, rtol=0, atol=1e-6)
    assert [n.embedding for n in asynced] == [n.embedding for n in synced]


async def test_async_embeds_whole_batches_in_a_worker_thread(tiny_bert_encoder, monkeypatch):
    emb = InstructorEmbedding(encoder=tiny_bert_encoder, embed_batch_size=4)
    texts = [f"document number {i}" for i in range(10)]
    sync_vectors = emb.get_text_embedding_batch(texts)
    calls: list[tuple[int, int]] = []
    real = InstructorEncoder.encode_documents

    ticks = 0
    ticked = threading.Condition()
    waits: list[bool] = []

    def slow_encode(self, batch, *args, **kwargs):
        calls.append((threading.get_ident(), len(batch)))
        # a long encode: it ends once the event loop has ticked 3 times meanwhile (no clock: a loop blocked
        # by the encode never ticks, and the bounded wait reports False)
        with ticked:
            start = ticks
            waits.append(ticked.wait_for(lambda: ticks >= start + 3, timeout=10))
        return real(self, batch, *args, **kwargs)

    monkeypatch.setattr(InstructorEncoder, "encode_documents", slow_encode)

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            with ticked:
                ticks += 1
                ticked.notify_all()

    task = asyncio.create_task(ticker())
    vectors = await emb.aget_text_embedding_batch(texts)
    task.cancel()
    assert vectors == sync_vectors
    assert sorted(size for _, size in calls) == [2, 4, 4]  # one call per embed_batch_size chunk, not per text
    assert threading.get_ident() not in {ident for ident, _ in calls}  # never on the event loop's thread
    assert waits == [True, True, True]  # the loop kept ticking through each encode
    monkeypatch.setattr(InstructorEncoder, "encode_documents", real)  # no ticker from here on
    assert await emb.aget_query_embedding("q") == emb.get_query_embedding("q")
    assert await emb.aget_text_embedding("t") == emb.get_text_embedding("t")


def test_return_types_and_empty_input(bert_embedding):
    docs = bert_embedding.get_text_embedding_batch(TEXTS)
    query = bert_embedding.get_query_embedding("x")
    assert type(docs) is list and all(type(row) is list and len(row) == 32 for row in docs)
    assert all(type(value) is float for row in docs for value in row)
    assert type(query) is list and all(type(value) is float for value in query)
    assert bert_embedding.get_text_embedding_batch([]) == []
    assert bert_embedding._get_text_embeddings([]) == []
    assert asyncio.run(bert_embedding.aget_text_embedding_batch([])) == []


def test_bad_input_raises_the_core_type_error(bert_embedding):
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str, got NoneType"):
        bert_embedding.get_text_embedding_batch(["a", None])
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str, got NoneType"):
        asyncio.run(bert_embedding.aget_text_embedding_batch(["a", None]))
    with pytest.raises(TypeError, match="query must be a str, got int"):
        bert_embedding.get_query_embedding(3)
    with pytest.raises(TypeError, match="text must be a str, got NoneType"):
        bert_embedding.get_text_embedding(None)


def test_constructors_share_or_load_and_reject_bad_settings(tiny_bert_path, tiny_bert_encoder, bert_embedding):
    loaded = InstructorEmbedding(str(tiny_bert_path), device="cpu")
    assert loaded.encoder is not tiny_bert_encoder and loaded.model_name == str(tiny_bert_path)
    np.testing.assert_allclose(
        loaded.get_text_embedding_batch(TEXTS), bert_embedding.get_text_embedding_batch(TEXTS), atol=1e-6
    )
    other = InstructorEmbedding(encoder=tiny_bert_encoder, query_instruction="Find: ")
    assert other.encoder is bert_embedding.encoder  # one model serves several adapters
    restored = InstructorEmbedding.from_dict(loaded.to_dict())  # LlamaIndex's own serialization
    assert restored.model_name == loaded.model_name and restored.embed_batch_size == 32
    with pytest.raises(ValueError, match="model_name .* or encoder"):
        InstructorEmbedding()
    with pytest.raises(ValueError, match="not both"):
        InstructorEmbedding(str(tiny_bert_path), encoder=tiny_bert_encoder)
    with pytest.raises(ValueError, match="device only applies"):
        InstructorEmbedding(encoder=tiny_bert_encoder, device="cpu")
    with pytest.raises(TypeError, match="InstructorEncoder"):
        InstructorEmbedding(encoder="not an encoder")
    with pytest.raises(TypeError, match="unexpected keyword"):
        InstructorEmbedding(encoder=tiny_bert_encoder, model_kwargs={})
    with pytest.raises(ValidationError, match="embed_batch_size"):
        InstructorEmbedding(encoder=tiny_bert_encoder, embed_batch_size=0)
    with pytest.raises(ValidationError, match="text_instruction"):
        InstructorEmbedding(encoder=tiny_bert_encoder, text_instruction=3)


def test_import_without_extra_names_the_install_command():
    code = (
        "import sys\n"
        "sys.modules['llama_index'] = None\n"
        "sys.modules['llama_index.core'] = None\n"
        "try:\n"
        "    import instructor_llamaindex\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    print('imported')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert 'pip install -e ".[llamaindex]"' in out.stdout


def test_docs_example_runs_and_prints_what_it_says(capsys, embed_settings):
    """The runnable example in docs/integrations/llamaindex.md: its printed lines are the ones it shows.

    The example sets Settings.embed_model; the embed_settings fixture puts the previous one back.
    """
    run_doc_example("integrations/llamaindex.md", capsys)


# ---------------------------------------------------------------------- retrieval on SciFact
TOP_K = 5


@pytest.mark.slow
def test_vector_index_retrieves_the_relevant_abstract(data_dir, minilm_encoder, embed_settings):
    data, qids, doc_ids = scifact_subset(data_dir)
    embed_settings(InstructorEmbedding(encoder=minilm_encoder, embed_batch_size=32))
    nodes = [
        TextNode(text=data.corpus[d], id_=d, metadata={"doc_id": d}, excluded_embed_metadata_keys=["doc_id"])
        for d in doc_ids
    ]
    started = time.perf_counter()
    index = VectorStoreIndex(nodes)
    indexed = time.perf_counter() - started
    retriever = index.as_retriever(similarity_top_k=TOP_K)
    hits = 0
    for qid in qids:
        found = [hit.node.metadata["doc_id"] for hit in retriever.retrieve(data.queries[qid])]
        assert len(found) == TOP_K
        hits += bool(set(found) & set(data.qrels[qid]))
    print(
        f"\nVectorStoreIndex: {hits}/{len(qids)} claims with a relevant abstract in top {TOP_K} "
        f"of {len(doc_ids)}; indexing {indexed:.1f}s"
    )
    assert hits >= 18  # measured: 19/20 with all-MiniLM-L6-v2 (the same subset as the LangChain test)
