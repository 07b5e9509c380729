"""Retrieval through Chroma and Qdrant equals brute-force cosine retrieval (SciFact, real MiniLM).

The corpus is a fixed subset of SciFact: every document in the test qrels, then the corpus in file
order up to 1,000 documents. Documents are encoded once; both stores are fed those vectors through
an encoder wrapper, while queries go through each store's real query path (query instruction).
"""

from __future__ import annotations

import numpy as np
import pytest

from instructor_core.evaluation import load_beir, rank_by_cosine, retrieval_metrics

# system (make test-all, CI): encoding the 1,000 abstracts with the real model takes minutes on 2 cores
pytestmark = [pytest.mark.slow, pytest.mark.system]

SUBSET = 1000
K = 100
QUERY_INSTRUCTION = "Represent the scientific claim for retrieving supporting abstracts: "
DOCUMENT_INSTRUCTION = "Represent the scientific abstract: "


class PrecomputedDocuments:
    """Encoder stand-in: document vectors looked up from one earlier encode, queries encoded live."""

    def __init__(self, encoder, texts, vectors):
        self.encoder = encoder
        self.instructions = encoder.instructions
        self.dimension = encoder.dimension
        self.max_length = encoder.max_length
        self.table = dict(zip(texts, vectors, strict=True))
        self.lookups = 0

    def encode_documents(self, texts, instruction=None, *, batch_size=32, normalize=True, show_progress=False):
        assert instruction in (None, self.instructions.document)
        self.lookups += len(texts)
        return np.stack([self.table[t] for t in texts])

    def encode_queries(self, texts, instruction=None, *, batch_size=32, normalize=True, show_progress=False):
        return self.encoder.encode_queries(texts, instruction, batch_size=batch_size, normalize=normalize)


@pytest.fixture(scope="module")
def scifact(data_dir, minilm_path):
    from instructor_core import Instructions, InstructorEncoder

    # explicit, different instructions: the stores must embed queries with the query one
    instructions = Instructions(query=QUERY_INSTRUCTION, document=DOCUMENT_INSTRUCTION)
    encoder = InstructorEncoder.from_pretrained(minilm_path, instructions, device="cpu")
    data = load_beir(data_dir / "scifact", split="test")
    wanted = {doc for rels in data.qrels.values() for doc in rels}
    ids = [d for d in data.corpus if d in wanted]
    ids += [d for d in data.corpus if d not in wanted][: SUBSET - len(ids)]
    texts = [data.corpus[d] for d in ids]
    doc_vectors = encoder.encode_documents(texts, DOCUMENT_INSTRUCTION, batch_size=64)
    qids = list(data.queries)
    queries = [data.queries[q] for q in qids]

    def brute_force(query_instruction):
        indices, _ = rank_by_cosine(encoder.encode_queries(queries, query_instruction), doc_vectors, k=K)
        rankings = {q: [ids[i] for i in row] for q, row in zip(qids, indices, strict=True)}
        return retrieval_metrics(rankings, data.qrels)

    brute = brute_force(QUERY_INSTRUCTION)
    # the tolerance below (0.005) tells a store that drops the query instruction apart
    assert abs(brute_force("")["ndcg@10"] - brute["ndcg@10"]) > 0.01
    records = [{"id": d, "text": t} for d, t in zip(ids, texts, strict=True)]
    return {
        "data": data,
        "ids": ids,
        "records": records,
        "qids": qids,
        "brute": brute,
        "encoder": PrecomputedDocuments(encoder, texts, doc_vectors),
    }


def test_subset_holds_every_judged_document(scifact):
    judged = {doc for rels in scifact["data"].qrels.values() for doc in rels}
    assert len(scifact["ids"]) == SUBSET == len(set(scifact["ids"]))
    assert judged <= set(scifact["ids"])
    assert len(scifact["qids"]) == 300
    assert 0.6 < scifact["brute"]["ndcg@10"] < 0.9  # MiniLM on full SciFact: 0.6451; a subset is easier


def test_chroma_retrieval_equals_brute_force(scifact, tmp_path, minilm_path):
    chromadb = pytest.importorskip("chromadb")
    from chromadb.config import Settings

    from instructor_chroma import InstructorEmbeddingFunction, clear_encoder_cache, ingest, open_collection

    client = chromadb.PersistentClient(path=str(tmp_path / "db"), settings=Settings(anonymized_telemetry=False))
    ef = InstructorEmbeddingFunction(str(minilm_path), encoder=scifact["encoder"])
    try:
        collection = open_collection(client, "scifact", ef, hnsw={"ef_search": 200, "ef_construction": 200})
        report = ingest(collection, scifact["records"], show_progress=False)
        assert report.written == SUBSET == collection.count()
        data = scifact["data"]
        result = collection.query(query_texts=[data.queries[q] for q in scifact["qids"]], n_results=K)
        metrics = retrieval_metrics(dict(zip(scifact["qids"], result["ids"], strict=True)), data.qrels)
    finally:
        clear_encoder_cache()
    print(f"chroma ndcg@10={metrics['ndcg@10']:.4f} brute={scifact['brute']['ndcg@10']:.4f}")
    assert abs(metrics["ndcg@10"] - scifact["brute"]["ndcg@10"]) <= 0.005
    assert abs(metrics["recall@100"] - scifact["brute"]["recall@100"]) <= 0.005


def test_qdrant_retrieval_equals_brute_force(scifact):
    pytest.importorskip("qdrant_client")
    from qdrant_client import QdrantClient

    from instructor_qdrant import ingest, search

    client = QdrantClient(":memory:")
    report = ingest(client, "scifact", scifact["records"], scifact["encoder"], batch_size=128, show_progress=False)
    assert report.written == SUBSET == client.count("scifact").count
    data = scifact["data"]
    rankings = {
        q: [h.id for h in search(client, "scifact", data.queries[q], scifact["encoder"], limit=K)]
        for q in scifact["qids"]
    }
    metrics = retrieval_metrics(rankings, data.qrels)
    client.close()
    print(f"qdrant ndcg@10={metrics['ndcg@10']:.4f} brute={scifact['brute']['ndcg@10']:.4f}")
    assert abs(metrics["ndcg@10"] - scifact["brute"]["ndcg@10"]) <= 0.005
    assert abs(metrics["recall@100"] - scifact["brute"]["recall@100"]) <= 0.005
