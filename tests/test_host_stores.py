"""The embeddings inside the host stacks' own vector stores: langchain-chroma's ``Chroma``,
langchain-qdrant's ``QdrantVectorStore`` (dense and hybrid), LlamaIndex's ``ChromaVectorStore`` and
``QdrantVectorStore`` (dense and hybrid), all local. Each returns the documents in the ranking this
package's own vectors give (brute force over the same encoder), the document instruction reaches only
the stored vectors and the query instruction only the queries; hybrid fuses a real BM25 side by RRF."""

from __future__ import annotations

import json
import os
import uuid

import numpy as np
import pytest

from instructor_core import InstructorEncoder
from tests.conftest import REPO

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

QUERY = "Represent the question for retrieving supporting documents: "
DOCUMENT = "Represent the document for retrieval: "
QUESTIONS = ("Which planet is the biggest?", "How do plants turn sunlight into food?", "Why does bread dough rise?")
K = 5
#: A word one document holds (Apollo 11's) that all-MiniLM-L6-v2 ranks far down on its own.
RARE = "mission"


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    lines = (REPO / "examples" / "demo_documents.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[:120]]


@pytest.fixture(scope="module")
def encoder(minilm_path) -> InstructorEncoder:
    return InstructorEncoder.from_pretrained(minilm_path, device="cpu")


@pytest.fixture(scope="module")
def expected(encoder, corpus) -> dict[str, list[str]]:
    """This package's own ranking: document vectors under the document instruction, queries under the
    query instruction, cosine by brute force."""
    docs = encoder.encode_documents([d["text"] for d in corpus], DOCUMENT)
    out = {}
    for question in QUESTIONS:
        scores = docs @ encoder.encode_queries([question], QUERY)[0]
        out[question] = [corpus[i]["id"] for i in np.argsort(-scores, kind="stable")[:K]]
    return out


@pytest.fixture(scope="module")
def lc_embeddings(encoder):
    from instructor_langchain import InstructorEmbeddings

    return InstructorEmbeddings(encoder=encoder, query_instruction=QUERY, document_instruction=DOCUMENT)


@pytest.fixture(scope="module")
def li_embedding(encoder):
    from instructor_llamaindex import InstructorEmbedding

    return InstructorEmbedding(encoder=encoder, query_instruction=QUERY, text_instruction=DOCUMENT)


def _rrf(*rankings: list[str]) -> dict[str, float]:
    """Qdrant's reciprocal-rank fusion: each list adds ``1 / (position + 2)`` (k = 2, positions from 0)."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for position, doc_id in enumerate(ranking):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (position + 2)
    return scores


# ---------------------------------------------------------------------------------------------- LangChain
def _lc_documents(corpus):
    from langchain_core.documents import Document

    return [Document(page_content=d["text"], metadata={"doc_id": d["id"]}, id=None) for d in corpus]


def test_langchain_chroma_ranks_as_our_vectors(tmp_path, lc_embeddings, corpus, expected, encoder):
    from langchain_chroma import Chroma

    store = Chroma(
        collection_name="demo",
        embedding_function=lc_embeddings,
        persist_directory=str(tmp_path / "chroma"),
        collection_metadata={"hnsw:space": "cosine"},
    )
    store.add_documents(_lc_documents(corpus), ids=[d["id"] for d in corpus])
    for question in QUESTIONS:
        hits = store.similarity_search(question, k=K)
        assert [h.metadata["doc_id"] for h in hits] == expected[question]
    stored = store.get(ids=[corpus[0]["id"]], include=["embeddings"])["embeddings"][0]
    assert np.abs(np.asarray(stored) - encoder.encode_documents([corpus[0]["text"]], DOCUMENT)[0]).max() <= 1e-5


def _qdrant_store(lc_embeddings, corpus, mode, sparse=None):
    from langchain_qdrant import QdrantVectorStore, RetrievalMode

    from instructor_qdrant.bm25 import IDF_SPARSE_PARAMS

    return QdrantVectorStore.from_documents(
        _lc_documents(corpus),
        embedding=lc_embeddings,
        sparse_embedding=sparse,
        retrieval_mode=getattr(RetrievalMode, mode),
        location=":memory:",
        collection_name="demo",
        sparse_vector_params=IDF_SPARSE_PARAMS,
        ids=list(range(len(corpus))),
    )


def test_langchain_qdrant_dense_ranks_as_our_vectors(lc_embeddings, corpus, expected, encoder):
    store = _qdrant_store(lc_embeddings, corpus, "DENSE")
    for question in QUESTIONS:
        assert [h.metadata["doc_id"] for h in store.similarity_search(question, k=K)] == expected[question]
    (point,) = store.client.retrieve("demo", [0], with_vectors=True)
    stored = np.asarray(point.vector if not isinstance(point.vector, dict) else next(iter(point.vector.values())))
    assert np.abs(stored - encoder.encode_documents([corpus[0]["text"]], DOCUMENT)[0]).max() <= 1e-5
    assert np.abs(stored - encoder.encode_documents([corpus[0]["text"]], QUERY)[0]).max() > 1e-3


def test_langchain_qdrant_hybrid_is_rrf_of_dense_and_bm25(lc_embeddings, corpus, expected):
    from instructor_langchain import Bm25SparseEmbeddings  # exported, loaded on first use

    sparse = Bm25SparseEmbeddings()
    hybrid = _qdrant_store(lc_embeddings, corpus, "HYBRID", sparse)
    keyword = _qdrant_store(lc_embeddings, corpus, "SPARSE", sparse)
    for question in QUESTIONS:
        words = [h.metadata["doc_id"] for h in keyword.similarity_search(question, k=K)]
        fused = _rrf(expected[question], words)
        hits = hybrid.similarity_search_with_score(question, k=K)
        assert {h.metadata["doc_id"]: pytest.approx(score) for h, score in hits} == {
            h.metadata["doc_id"]: fused[h.metadata["doc_id"]] for h, _ in hits
        }
        best = sorted(fused.values(), reverse=True)[:K]
        assert sorted((s for _, s in hits), reverse=True) == pytest.approx(best)
    # a rare word: the dense side ranks its one document far down (61st here), BM25 first, hybrid in its top K
    dense = [h.metadata["doc_id"] for h in _qdrant_store(lc_embeddings, corpus, "DENSE").similarity_search(RARE, k=K)]
    apollo = [d["id"] for d in corpus if RARE in d["text"]]
    assert len(apollo) == 1 and apollo[0] not in dense
    assert [h.metadata["doc_id"] for h in keyword.similarity_search(RARE, k=1)] == apollo
    assert apollo[0] in [h.metadata["doc_id"] for h in hybrid.similarity_search(RARE, k=K)]


def test_bm25_keyword_side_sees_the_raw_text_only():
    from instructor_langchain.sparse import Bm25SparseEmbeddings

    sparse = Bm25SparseEmbeddings()
    query = sparse.embed_query("gluten bread")
    assert len(query.indices) == 2 and query.values == [1.0, 1.0]  # no instruction words on this side
    (document,) = sparse.embed_documents(["Gluten gives bread dough its stretch; bread rises."])
    assert set(query.indices) <= set(document.indices)


# ---------------------------------------------------------------------------------------------- LlamaIndex
def _nodes(corpus):
    from llama_index.core.schema import TextNode

    # Qdrant takes uuids as point ids: the document id travels in the metadata
    return [
        TextNode(
            text=d["text"],
            id_=str(uuid.uuid5(uuid.NAMESPACE_URL, d["id"])),
            metadata={"doc_id": d["id"]},
            excluded_embed_metadata_keys=["doc_id"],  # else LlamaIndex embeds "doc_id: ..." with the text
        )
        for d in corpus
    ]


def _li_index(store, li_embedding, corpus):
    from llama_index.core import StorageContext, VectorStoreIndex

    context = StorageContext.from_defaults(vector_store=store)
    return VectorStoreIndex(_nodes(corpus), storage_context=context, embed_model=li_embedding)


def test_llamaindex_chroma_ranks_as_our_vectors(tmp_path, li_embedding, corpus, expected):
    import chromadb
    from llama_index.vector_stores.chroma import ChromaVectorStore

    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    collection = client.get_or_create_collection("demo", metadata={"hnsw:space": "cosine"})
    index = _li_index(ChromaVectorStore(chroma_collection=collection), li_embedding, corpus)
    for question in QUESTIONS:
        hits = index.as_retriever(similarity_top_k=K).retrieve(question)
        assert [h.node.metadata["doc_id"] for h in hits] == expected[question]


def _li_qdrant(li_embedding, corpus, hybrid: bool):
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    from instructor_llamaindex import bm25_functions  # exported, loaded on first use
    from instructor_qdrant.bm25 import idf_sparse_config

    client = QdrantClient(location=":memory:")
    extra = {}
    if hybrid:
        doc_fn, query_fn = bm25_functions()
        extra = dict(
            enable_hybrid=True,
            sparse_doc_fn=doc_fn,
            sparse_query_fn=query_fn,
            sparse_config=idf_sparse_config(),
        )
    store = QdrantVectorStore(collection_name="demo", client=client, **extra)
    return _li_index(store, li_embedding, corpus)


def test_llamaindex_qdrant_dense_ranks_as_our_vectors(li_embedding, corpus, expected):
    index = _li_qdrant(li_embedding, corpus, hybrid=False)
    for question in QUESTIONS:
        hits = index.as_retriever(similarity_top_k=K).retrieve(question)
        assert [h.node.metadata["doc_id"] for h in hits] == expected[question]


def test_llamaindex_qdrant_hybrid_fuses_dense_and_bm25(li_embedding, corpus, expected):
    index = _li_qdrant(li_embedding, corpus, hybrid=True)
    apollo = [d["id"] for d in corpus if RARE in d["text"]]

    def ids(mode: str, query: str) -> list[str]:
        retriever = index.as_retriever(similarity_top_k=K, sparse_top_k=K, vector_store_query_mode=mode)
        return [h.node.metadata["doc_id"] for h in retriever.retrieve(query)]

    for question in QUESTIONS:
        assert ids("default", question) == expected[question]  # the dense side of the hybrid store
        fused = ids("hybrid", question)
        assert len(fused) == K and set(fused) <= set(expected[question]) | set(ids("sparse", question))
    assert ids("sparse", RARE)[:1] == apollo and apollo[0] not in ids("default", RARE)
    assert apollo[0] in ids("hybrid", RARE)


@pytest.mark.parametrize("own", ["edge", "local-mode"])
def test_langchain_qdrant_hybrid_ranks_as_our_own_hybrid_store(tmp_path, own, lc_embeddings, corpus, encoder):
    """langchain-qdrant's hybrid store and this package's own (``ingest(..., hybrid=True)``, Qdrant Edge
    or qdrant-client's server code path) fuse the same dense and BM25 lists into the same ranking."""
    from instructor_core.ingest import store_ops
    from instructor_core.ingest.stores import open_store
    from instructor_langchain.sparse import Bm25SparseEmbeddings
    from instructor_qdrant.store import open_local_mode

    theirs_store = _qdrant_store(lc_embeddings, corpus, "HYBRID", Bm25SparseEmbeddings())
    mine = open_store(f"qdrant:{tmp_path / 'edge'}") if own == "edge" else open_local_mode(str(tmp_path / "local"))
    encoder.instructions = encoder.instructions.replace(query=QUERY, document=DOCUMENT)
    try:
        store_ops.ingest(mine, "demo", corpus, encoder, model="minilm", hybrid=True, show_progress=False)
        for question in (*QUESTIONS, RARE):
            if own == "edge" and _tied(store_ops.search(mine, "demo", [question], encoder, k=K + 1, mode="keyword")[0]):
                continue  # equal BM25 scores: Edge orders them in no fixed way, so the fused ranks may differ
            ours = {h.id: h.score for h in store_ops.search(mine, "demo", [question], encoder, k=K, mode="hybrid")[0]}
            theirs = {h.metadata["doc_id"]: s for h, s in theirs_store.similarity_search_with_score(question, k=K)}
            assert sorted(ours.values(), reverse=True) == pytest.approx(sorted(theirs.values(), reverse=True))
            assert all(ours[i] == pytest.approx(theirs[i]) for i in set(ours) & set(theirs))
            cut = min(ours.values())  # ties at the K-th place may fall either way
            assert {i for i, s in ours.items() if s > cut + 1e-6} == {i for i, s in theirs.items() if s > cut + 1e-6}
    finally:
        mine.close()


def _tied(hits) -> bool:
    scores = [round(h.score, 5) for h in hits]
    return len(set(scores)) < len(scores)


def test_check_idf_passes_the_helpers_collections_and_warns_on_one_without_idf():
    import warnings

    from langchain_qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient, models

    from instructor_core.errors import InputError
    from instructor_qdrant.bm25 import IDF_SPARSE_PARAMS, check_idf, idf_sparse_config

    client = QdrantClient(location=":memory:")
    dense = models.VectorParams(size=4, distance=models.Distance.COSINE)
    name = QdrantVectorStore.SPARSE_VECTOR_NAME
    client.create_collection("good", vectors_config=dense,
                             sparse_vectors_config={name: models.SparseVectorParams(**IDF_SPARSE_PARAMS)})  # fmt: skip
    client.create_collection("good_li", vectors_config=dense, sparse_vectors_config={"s": idf_sparse_config()})
    client.create_collection("plain", vectors_config=dense, sparse_vectors_config={name: models.SparseVectorParams()})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_idf(client, "good", name) and check_idf(client, "good_li", "s")
    with pytest.warns(UserWarning, match="no IDF modifier.*IDF_SPARSE_PARAMS"):
        assert check_idf(client, "plain", name) is False
    with pytest.raises(InputError, match="has no sparse vector 'nope'"):
        check_idf(client, "good", "nope")
