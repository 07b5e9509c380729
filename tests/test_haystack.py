"""The Haystack 3 embedders (haystack_integrations.components.embedders.instructor).

Their vectors equal the core encoder's (queries, documents, per-item instructions); run_async equals
run; a pipeline saved to YAML loads back with Haystack's default allowlist and gives the same vectors;
the sentence-transformers embedder's prefix= pools the instruction where these do not; bad input is one
error naming the item, with nothing embedded. The slow test puts SciFact into Haystack's own Qdrant
(dense, hybrid) and Chroma document stores and compares them with this package's stores.
"""

from __future__ import annotations

import asyncio
import os

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("haystack")

from haystack import Document, Pipeline  # noqa: E402
from haystack.core.errors import DeserializationError  # noqa: E402
from haystack.utils import ComponentDevice, Secret  # noqa: E402
from haystack_integrations.components.embedders.instructor import (  # noqa: E402
    InstructorDocumentEmbedder,
    InstructorSparseDocumentEmbedder,
    InstructorSparseTextEmbedder,
    InstructorTextEmbedder,
    clear_encoder_cache,
)

from instructor_core import InstructorEncoder, LoadOptions  # noqa: E402

QUERY = "Represent the science question for retrieving supporting documents: "
DOCUMENT = "Represent the science document for retrieval: "
CPU = ComponentDevice.from_str("cpu")
TEXTS = [
    "Photosynthesis turns sunlight, water and carbon dioxide into sugar.",
    "The mitochondrion is the powerhouse of the cell.",
    "Jupiter is the largest planet in the solar system.",
]


def _diff(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


@pytest.fixture(autouse=True)
def _fresh_cache():
    yield
    clear_encoder_cache()


# ---------------------------------------------------------------------------------------------- vectors
@pytest.mark.parametrize("fixture", ["minilm_path", "tiny_t5_path"])
def test_query_and_document_vectors_equal_the_core_encoders(request, fixture):
    path = request.getfixturevalue(fixture)
    core = InstructorEncoder.from_pretrained(path, device="cpu")
    text = InstructorTextEmbedder(model=path, device=CPU, instruction=QUERY)
    docs = InstructorDocumentEmbedder(model=path, device=CPU, instruction=DOCUMENT, progress_bar=False)
    for t in TEXTS:
        assert _diff(text.run(t)["embedding"], core.encode_queries([t], QUERY)[0]) <= 1e-6
    out = docs.run([Document(content=t) for t in TEXTS])["documents"]
    assert _diff([d.embedding for d in out], core.encode_documents(TEXTS, DOCUMENT)) <= 1e-6
    # the instruction changes the vector (it reaches the model), so the check above can fail
    assert _diff(out[0].embedding, core.encode_documents(TEXTS[:1], "")[0]) > 1e-3


def test_default_instructions_and_named_prompts_are_the_models(tiny_bert_path):
    core = InstructorEncoder.from_pretrained(tiny_bert_path, device="cpu")
    assert core.instructions.query and core.instructions.query != core.instructions.document
    text = InstructorTextEmbedder(model=tiny_bert_path, device=CPU)
    docs = InstructorDocumentEmbedder(model=tiny_bert_path, device=CPU, progress_bar=False)
    assert _diff(text.run(TEXTS[0])["embedding"], core.encode_queries(TEXTS[:1])[0]) <= 1e-6
    (doc,) = docs.run([Document(content=TEXTS[0])])["documents"]
    assert _diff(doc.embedding, core.encode_documents(TEXTS[:1])[0]) <= 1e-6
    # prompt_name="document" on the text embedder gives the document vector
    by_name = InstructorTextEmbedder(model=tiny_bert_path, device=CPU, prompt_name="document")
    assert _diff(by_name.run(TEXTS[0])["embedding"], doc.embedding) <= 1e-6


def test_per_document_instructions_from_meta_mix_in_one_batch(tiny_t5_path):
    core = InstructorEncoder.from_pretrained(tiny_t5_path, device="cpu")
    own = "Represent the biology sentence for clustering: "
    docs = [
        Document(content=TEXTS[0], meta={"instruction": own}),
        Document(content=TEXTS[1]),
        Document(content=TEXTS[2], meta={"instruction": ""}),
    ]
    embedder = InstructorDocumentEmbedder(
        model=tiny_t5_path, device=CPU, instruction=DOCUMENT, instruction_meta_key="instruction", progress_bar=False
    )
    out = embedder.run(docs)["documents"]
    for doc, instruction in zip(out, (own, DOCUMENT, ""), strict=True):
        assert _diff(doc.embedding, core.encode_documents([doc.content], instruction)[0]) <= 1e-6
    assert _diff(out[0].embedding, core.encode_documents(TEXTS[:1], DOCUMENT)[0]) > 1e-3
    # new Documents, same ids and meta; the input is untouched
    assert [d.id for d in out] == [d.id for d in docs] and all(d.embedding is None for d in docs)
    assert out[0].meta == {"instruction": own}


def test_meta_fields_are_embedded_before_the_content(minilm_path):
    core = InstructorEncoder.from_pretrained(minilm_path, device="cpu")
    embedder = InstructorDocumentEmbedder(
        model=minilm_path, device=CPU, instruction=DOCUMENT, meta_fields_to_embed=["title", "year"],
        embedding_separator=" | ", progress_bar=False,
    )  # fmt: skip
    (doc,) = embedder.run([Document(content=TEXTS[2], meta={"title": "Planets", "year": 2024})])["documents"]
    expected = core.encode_documents([f"Planets | 2024 | {TEXTS[2]}"], DOCUMENT)[0]
    assert _diff(doc.embedding, expected) <= 1e-6


def test_truncation_normalization_and_precision_follow_the_core(minilm_path):
    core = InstructorEncoder.from_pretrained(minilm_path, device="cpu")
    raw = core.encode_queries(TEXTS, QUERY)
    ranges = [raw.min(axis=0).tolist(), raw.max(axis=0).tolist()]
    cut = InstructorTextEmbedder(model=minilm_path, device=CPU, instruction=QUERY, truncate_dim=64)
    assert _diff(cut.run(TEXTS[0])["embedding"], core.encode_queries(TEXTS[:1], QUERY, truncate_dim=64)[0]) <= 1e-6
    int8 = InstructorTextEmbedder(
        model=minilm_path, device=CPU, instruction=QUERY, precision="int8", quantization_ranges=ranges
    )
    got = int8.run(TEXTS[0])["embedding"]
    want = core.encode_queries(TEXTS[:1], QUERY, precision="int8", calibration_embeddings=np.asarray(ranges))[0]
    assert got == want.tolist() and all(isinstance(v, int) for v in got)
    loose = InstructorDocumentEmbedder(model=minilm_path, device=CPU, normalize_embeddings=False, progress_bar=False)
    assert loose.encoder is int8.encoder  # the loading options are the same: one model


def test_run_async_equals_run(tiny_t5_path):
    text = InstructorTextEmbedder(model=tiny_t5_path, device=CPU, instruction=QUERY)
    docs = InstructorDocumentEmbedder(model=tiny_t5_path, device=CPU, progress_bar=False)
    sparse_text, sparse_docs = InstructorSparseTextEmbedder(), InstructorSparseDocumentEmbedder()
    documents = [Document(content=t) for t in TEXTS]

    async def both():
        return await asyncio.gather(
            text.run_async(TEXTS[0]), docs.run_async(documents),
            sparse_text.run_async(TEXTS[0]), sparse_docs.run_async(documents),
        )  # fmt: skip

    got = asyncio.run(both())
    assert got[0] == text.run(TEXTS[0])
    assert got[1] == docs.run(documents)
    assert got[2] == sparse_text.run(TEXTS[0])
    assert got[3] == sparse_docs.run(documents)


# ---------------------------------------------------------------------------------------------- one model
def test_a_text_and_a_document_embedder_share_one_loaded_model(tiny_t5_path):
    text = InstructorTextEmbedder(model=tiny_t5_path, device=CPU)
    docs = InstructorDocumentEmbedder(model=str(tiny_t5_path), device=CPU, truncate_dim=8)  # encode-time option
    assert text.encoder is docs.encoder
    other = InstructorTextEmbedder(model=tiny_t5_path, device=CPU, max_length=64)  # another load: another model
    assert other.encoder is not text.encoder and other.encoder.max_length == 64
    given = InstructorDocumentEmbedder(encoder=text.encoder)
    assert given.encoder is text.encoder
    with pytest.raises(ValueError, match="max_length only applies when loading"):
        InstructorTextEmbedder(encoder=text.encoder, max_length=32)
    with pytest.raises(ValueError, match="cannot be saved: pass model="):
        given.to_dict()
    with pytest.raises(ValueError, match="pass model .* or encoder"):
        InstructorTextEmbedder()


def test_embedders_warming_up_at_once_load_the_model_once(tiny_t5_path, monkeypatch):
    import threading
    import time

    calls = []
    real = InstructorEncoder.from_pretrained

    def slow_load(*args, **kwargs):
        calls.append(args[0])
        time.sleep(0.3)  # the others arrive while the first loads
        return real(*args, **kwargs)

    monkeypatch.setattr(InstructorEncoder, "from_pretrained", slow_load)
    embedders = [InstructorTextEmbedder(model=tiny_t5_path, device=CPU) for _ in range(2)]
    embedders += [InstructorDocumentEmbedder(model=tiny_t5_path, device=CPU) for _ in range(2)]
    threads = [threading.Thread(target=e.warm_up) for e in embedders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(calls) == 1
    assert all(e.encoder is embedders[0].encoder for e in embedders)


def test_a_gated_model_gets_the_token_through_the_hub_client(monkeypatch, minilm_path):
    import huggingface_hub

    calls = []

    def fake_snapshot(repo_id, revision=None, cache_dir=None, token=None):
        calls.append((repo_id, revision, token))
        return str(minilm_path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    embedder = InstructorTextEmbedder(model="owner/gated-model", token=Secret.from_token("hf_secret"), device=CPU)
    embedder.warm_up()
    assert calls == [("owner/gated-model", None, "hf_secret")]
    assert embedder.encoder.dimension == 384
    with pytest.raises(ValueError, match="Cannot serialize token-based secret"):
        embedder.to_dict()  # Haystack's own rule: a token value is never written to a pipeline file

    def refuse(repo_id, revision=None, cache_dir=None, token=None):
        raise PermissionError(f"401 for {token}")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)
    clear_encoder_cache()
    with pytest.raises(Exception, match="could not fetch 'owner/gated-model'") as caught:
        InstructorTextEmbedder(model="owner/gated-model", token=Secret.from_token("hf_secret")).warm_up()
    assert "hf_secret" not in str(caught.value)


# ---------------------------------------------------------------------------------------------- serialization
def test_every_loading_option_round_trips_through_to_dict(tmp_path):
    embedder = InstructorDocumentEmbedder(
        model=tmp_path, device=CPU, instruction="", instruction_meta_key="task", meta_fields_to_embed=["title"],
        embedding_separator=" ", batch_size=7, progress_bar=False, normalize_embeddings=False, truncate_dim=16,
        precision="binary", dtype="bfloat16", max_length=99, backend="torch", backend_cache_dir=str(tmp_path / "onnx"),
        revision="v1", trust_remote_code=True, cache_dir=str(tmp_path / "hub"), instructor=True,
        prompts={"STS": "Represent the sentence: "}, default_prompt_name="STS", attn_implementation="eager",
        token=Secret.from_env_var("MY_HF_TOKEN"),
    )  # fmt: skip
    data = embedder.to_dict()
    assert data["type"] == "haystack_integrations.components.embedders.instructor.document_embedder." + (
        "InstructorDocumentEmbedder"
    )
    given = data["init_parameters"]
    assert set(LoadOptions.names()) - {"device"} <= set(given)  # every loading option is a parameter
    back = InstructorDocumentEmbedder.from_dict(data)
    assert back.to_dict() == data
    assert back.options == embedder.options and back.options.changed().keys() == set(LoadOptions.names()) - {
        "truncate_dim",
        "backend",
    }
    assert back.token == Secret.from_env_var("MY_HF_TOKEN") and back.device == CPU


def _pipeline(path) -> Pipeline:
    pipe = Pipeline()
    pipe.add_component("query", InstructorTextEmbedder(model=str(path), device=CPU, instruction=QUERY))
    pipe.add_component(
        "docs",
        InstructorDocumentEmbedder(
            model=str(path), device=CPU, instruction=DOCUMENT, instruction_meta_key="instruction", progress_bar=False
        ),
    )
    pipe.add_component("sparse_query", InstructorSparseTextEmbedder())
    pipe.add_component("sparse_docs", InstructorSparseDocumentEmbedder(k=1.5))
    return pipe


def test_a_saved_pipeline_loads_with_the_default_allowlist_and_gives_the_same_vectors(tiny_t5_path, monkeypatch):
    monkeypatch.delenv("HAYSTACK_DESERIALIZATION_ALLOWLIST", raising=False)
    monkeypatch.delenv("HAYSTACK_UNSAFE_DESERIALIZATION", raising=False)
    documents = [
        Document(content=TEXTS[0], meta={"instruction": "Represent the sentence: "}),
        Document(content=TEXTS[1]),
    ]
    inputs = {
        "query": {"text": TEXTS[2]},
        "docs": {"documents": documents},
        "sparse_query": {"text": TEXTS[2]},
        "sparse_docs": {"documents": documents},
    }
    first = _pipeline(tiny_t5_path)
    yaml = first.dumps()
    assert "haystack_integrations.components.embedders.instructor.text_embedder.InstructorTextEmbedder" in yaml
    before = first.run(inputs)
    loaded = Pipeline.loads(yaml)  # Haystack's default allowlist: haystack, haystack_integrations, ...
    after = loaded.run(inputs)
    assert after["query"]["embedding"] == before["query"]["embedding"]
    assert [d.embedding for d in after["docs"]["documents"]] == [d.embedding for d in before["docs"]["documents"]]
    assert after["sparse_query"] == before["sparse_query"]
    assert after["sparse_docs"] == before["sparse_docs"]
    assert loaded.get_component("docs").encoder is first.get_component("docs").encoder  # one model in the process
    assert loaded.get_component("sparse_docs").k == 1.5
    # the same classes saved under the alias's path would need the allowlist widened: why they live where they do
    with pytest.raises(DeserializationError, match="instructor_haystack"):
        Pipeline.loads(
            yaml.replace("haystack_integrations.components.embedders.instructor.text_embedder", "instructor_haystack")
        )


def test_the_alias_package_holds_the_same_classes():
    import instructor_haystack

    assert instructor_haystack.InstructorTextEmbedder is InstructorTextEmbedder
    assert set(instructor_haystack.__all__) == {
        "InstructorDocumentEmbedder",
        "InstructorSparseDocumentEmbedder",
        "InstructorSparseTextEmbedder",
        "InstructorTextEmbedder",
        "clear_encoder_cache",
    }


# ---------------------------------------------------------------------------------------------- prefix= pools it
def test_sentence_transformers_prefix_pools_the_instruction_where_these_do_not(tiny_t5_path):
    st = pytest.importorskip("sentence_transformers")
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersDocumentEmbedder,
        SentenceTransformersTextEmbedder,
    )

    core = InstructorEncoder.from_pretrained(tiny_t5_path, device="cpu")
    assert not core.spec.include_prompt  # an INSTRUCTOR-style pooling: the instruction is left out of the mean
    ours = InstructorTextEmbedder(model=tiny_t5_path, device=CPU, instruction=QUERY).run(TEXTS[0])["embedding"]
    prefixed = SentenceTransformersTextEmbedder(
        model=str(tiny_t5_path), device=CPU, prefix=QUERY, normalize_embeddings=True, progress_bar=False
    ).run(TEXTS[0])["embedding"]
    # sentence-transformers' own prompt= (its instruction-aware path) equals ours; its prefix= is text
    reference = st.SentenceTransformer(str(tiny_t5_path), device="cpu").encode([TEXTS[0]], prompt=QUERY)[0]
    assert _diff(ours, reference) <= 1e-5
    assert _diff(prefixed, ours) > 1e-3
    pooled = core.encode([("", QUERY + TEXTS[0])])[0]  # the instruction as text, pooled with it
    assert _diff(prefixed, pooled) <= 1e-5
    (doc,) = SentenceTransformersDocumentEmbedder(
        model=str(tiny_t5_path), device=CPU, prefix=DOCUMENT, normalize_embeddings=True, progress_bar=False
    ).run([Document(content=TEXTS[1])])["documents"]
    (mine,) = InstructorDocumentEmbedder(model=tiny_t5_path, device=CPU, instruction=DOCUMENT, progress_bar=False).run(
        [Document(content=TEXTS[1])]
    )["documents"]
    assert _diff(doc.embedding, mine.embedding) > 1e-3
    assert _diff(doc.embedding, core.encode([("", DOCUMENT + TEXTS[1])])[0]) <= 1e-5


# ---------------------------------------------------------------------------------------------- sparse
def test_sparse_vectors_are_the_bm25_that_hybrid_ingest_stores():
    from instructor_qdrant.bm25 import Bm25

    bm25 = Bm25()
    (query,) = [InstructorSparseTextEmbedder().run("gluten bread")["sparse_embedding"]]
    assert (query.indices, query.values) == bm25.embed_query("gluten bread") and query.values == [1.0, 1.0]
    docs = InstructorSparseDocumentEmbedder().run([Document(content=t) for t in TEXTS])["documents"]
    assert [(d.sparse_embedding.indices, d.sparse_embedding.values) for d in docs] == bm25.embed_documents(TEXTS)
    assert all(d.embedding is None for d in docs)


# ---------------------------------------------------------------------------------------------- bad input
@pytest.fixture
def watched(tiny_t5_path, monkeypatch):
    """A document embedder whose model must never be called (bad input is refused before it)."""
    embedder = InstructorDocumentEmbedder(
        model=tiny_t5_path, device=CPU, meta_fields_to_embed=["title"], instruction_meta_key="instruction"
    )
    monkeypatch.setattr(embedder, "_encode", lambda pairs: pytest.fail("the model ran on a bad batch"))
    return embedder


def test_a_non_string_to_the_text_embedders_names_it(tiny_t5_path):
    embedder = InstructorTextEmbedder(model=tiny_t5_path, device=CPU)
    with pytest.raises(
        TypeError, match=r"text must be a str, got list; embed Documents with InstructorDocumentEmbedder"
    ):
        embedder.run([TEXTS[0]])
    with pytest.raises(TypeError, match="text must be a str, got int"):
        asyncio.run(embedder.run_async(3))
    with pytest.raises(TypeError, match="text must be a str, got NoneType"):
        InstructorSparseTextEmbedder().run(None)


def test_a_document_without_content_names_it_and_nothing_is_embedded(watched):
    docs = [Document(content="a", meta={"title": "t"}), Document(id="doc-2", meta={"title": "t"})]
    with pytest.raises(ValueError, match=r"documents\[1\] \(id 'doc-2'\) has no content"):
        watched.run(docs)
    with pytest.raises(ValueError, match=r"documents\[1\] \(id 'doc-2'\) has no content"):
        InstructorSparseDocumentEmbedder().run([Document(content="a"), docs[1]])
    assert all(d.embedding is None and d.sparse_embedding is None for d in docs)


def test_a_missing_meta_field_names_the_document_and_the_field(watched):
    docs = [Document(content="a", meta={"title": "t"}), Document(id="doc-2", content="b", meta={"other": 1})]
    with pytest.raises(ValueError, match=r"documents\[1\] \(id 'doc-2'\) has no meta field 'title'"):
        watched.run(docs)
    sparse = InstructorSparseDocumentEmbedder(meta_fields_to_embed=["title"])
    with pytest.raises(ValueError, match=r"documents\[1\] \(id 'doc-2'\) has no meta field 'title'"):
        sparse.run(docs)


def test_other_bad_batches_name_the_item(watched):
    with pytest.raises(TypeError, match=r"documents\[1\] must be a haystack Document, got str"):
        watched.run([Document(content="a", meta={"title": "t"}), "b"])
    with pytest.raises(TypeError, match="documents must be a list of haystack Documents, got str"):
        watched.run("a text")
    bad = [Document(id="doc-1", content="a", meta={"title": "t", "instruction": 5})]
    with pytest.raises(TypeError, match=r"documents\[0\] \(id 'doc-1'\) meta\['instruction'\] .* must be a str"):
        watched.run(bad)
    assert watched.run([]) == {"documents": []}


def test_bad_settings_are_refused_at_construction(tiny_t5_path):
    with pytest.raises(ValueError, match="needs quantization_ranges"):
        InstructorTextEmbedder(model=tiny_t5_path, precision="int8")
    with pytest.raises(ValueError, match="pass instruction or prompt_name, not both"):
        InstructorTextEmbedder(model=tiny_t5_path, instruction="x", prompt_name="query")
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        InstructorDocumentEmbedder(model=tiny_t5_path, batch_size=0)
    with pytest.raises(ValueError, match="dtype must be one of"):
        InstructorDocumentEmbedder(model=tiny_t5_path, dtype="float64")
    with pytest.raises(TypeError, match="meta_fields_to_embed must be a list"):
        InstructorDocumentEmbedder(model=tiny_t5_path, meta_fields_to_embed="title")
    with pytest.raises(TypeError, match="device must be a haystack ComponentDevice"):
        InstructorTextEmbedder(model=tiny_t5_path, device="cpu")


# ---------------------------------------------------------------------------------------------- the guide
def test_the_guides_pipeline_example_runs_as_printed(capsys):
    """docs/integrations/haystack.md's first example (indexing, hybrid query, YAML round trip) prints what it says."""
    pytest.importorskip("haystack_integrations.document_stores.qdrant")
    import re

    from tests.conftest import REPO

    page = (REPO / "docs" / "integrations" / "haystack.md").read_text(encoding="utf-8")
    block = re.search(r"```python\n(.*?)```", page, re.DOTALL).group(1)
    exec(compile(block, "docs/integrations/haystack.md", "exec"), {})
    printed = [line for line in capsys.readouterr().out.splitlines() if line]
    lines = block.splitlines()
    assert printed == [lines[i + 1][2:] for i, line in enumerate(lines) if line.startswith("print(")]
    assert printed[-1] == "True" and printed[0].startswith("Vitamin D")


# ---------------------------------------------------------------------------------------------- SciFact
#: Every judged document of SciFact's test split, then the corpus in file order up to this many: the whole
#: corpus (5,183 abstracts) takes more than 3 minutes to encode once on MiniLM on this 2-core machine.
SUBSET = 1000
K = 10
CLAIM = "Represent the scientific claim for retrieving supporting abstracts: "
ABSTRACT = "Represent the scientific abstract for retrieval: "


class _Precomputed:
    """The core encoder, with the document vectors of one earlier encode looked up by text (this
    package's three stores take them instead of encoding the corpus three times); queries live."""

    def __init__(self, encoder, texts, vectors):
        self.encoder, self.table = encoder, dict(zip(texts, vectors, strict=True))
        self.instructions, self.dimension, self.max_length = encoder.instructions, encoder.dimension, encoder.max_length

    def encode_documents(self, texts, instruction=None, *, batch_size=32, normalize=True, show_progress=False):
        assert instruction in (None, self.instructions.document)
        return np.stack([self.table[t] for t in texts])

    def encode_queries(self, texts, instruction=None, *, batch_size=32, normalize=True, show_progress=False):
        return self.encoder.encode_queries(texts, instruction, batch_size=batch_size, normalize=normalize)


@pytest.fixture(scope="module")
def scifact(data_dir, minilm_path):
    from instructor_core import Instructions
    from instructor_core.evaluation import load_beir

    data = load_beir(data_dir / "scifact", split="test")
    judged = {doc for rels in data.qrels.values() for doc in rels}
    ids = [d for d in data.corpus if d in judged]
    ids += [d for d in data.corpus if d not in judged][: SUBSET - len(ids)]
    core = InstructorEncoder.from_pretrained(minilm_path, Instructions(query=CLAIM, document=ABSTRACT), device="cpu")
    texts = [data.corpus[d] for d in ids]
    return {"data": data, "ids": ids, "texts": texts, "core": core, "doc_vectors": core.encode_documents(texts)}


def _project_hits(tmp_path, scifact, scheme: str, modes: tuple[str, ...]) -> dict[str, dict[str, list]]:
    """This package's own store (``instructor ingest`` / ``instructor search``'s code path, ``-k 10``):
    ``{mode: {query id: [(document id, score), ...]}}``; a ``qdrant`` collection is made ``--hybrid``."""
    from instructor_core.ingest import store_ops
    from instructor_core.ingest.stores import open_store

    encoder = _Precomputed(scifact["core"], scifact["texts"], scifact["doc_vectors"])
    records = [{"id": d, "text": t} for d, t in zip(scifact["ids"], scifact["texts"], strict=True)]
    store = open_store(f"{scheme}:{tmp_path / scheme}")
    queries = scifact["data"].queries
    out = {}
    try:
        hybrid = scheme == "qdrant"
        store_ops.ingest(store, "scifact", records, encoder, model="minilm", hybrid=hybrid, show_progress=False)
        for mode in modes:
            hits = store_ops.search(store, "scifact", list(queries.values()), encoder, k=K, mode=mode)
            out[mode] = {q: [(h.id, h.score) for h in row] for q, row in zip(queries, hits, strict=True)}
    finally:
        store.close()
    return out


def _rrf(*rankings: list[str]) -> dict[str, float]:
    """Qdrant's reciprocal-rank fusion: each list adds ``1 / (position + 2)`` (positions from 0)."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for position, doc_id in enumerate(ranking):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (position + 2)
    return scores


def _by_score_then_id(scores: dict[str, float]) -> list[str]:
    """The top ``K`` with exact ties (RRF makes many) in document-id order, on both sides alike."""
    return sorted(scores, key=lambda d: (-round(scores[d], 6), d))[:K]


def _ids(hits) -> list[str]:
    return [doc_id for doc_id, _ in hits]


# system too (make test-all, CI), as tests/test_store_retrieval.py: 1,000 abstracts encoded twice with the real
# model take minutes on 2 cores (pyproject's markers: "1,000+ abstracts (minutes each)")
@pytest.mark.slow
@pytest.mark.system
def test_scifact_inside_haystacks_qdrant_and_chroma_stores_ranks_as_this_packages_stores(
    scifact, minilm_path, tmp_path
):
    from haystack_integrations.components.retrievers.chroma import ChromaEmbeddingRetriever
    from haystack_integrations.components.retrievers.qdrant import QdrantEmbeddingRetriever, QdrantHybridRetriever
    from haystack_integrations.document_stores.chroma import ChromaDocumentStore
    from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

    from instructor_core.evaluation import retrieval_metrics

    data, core = scifact["data"], scifact["core"]
    # indexing through Haystack: the dense and the sparse document embedders
    embedder = InstructorDocumentEmbedder(model=minilm_path, device=CPU, instruction=ABSTRACT, progress_bar=False)
    docs = [Document(id=d, content=t) for d, t in zip(scifact["ids"], scifact["texts"], strict=True)]
    dense_docs = embedder.run(docs)["documents"]
    assert _diff([d.embedding for d in dense_docs], scifact["doc_vectors"]) <= 1e-6
    both_docs = InstructorSparseDocumentEmbedder().run(dense_docs)["documents"]
    dense = QdrantDocumentStore(":memory:", index="dense", embedding_dim=core.dimension, progress_bar=False)
    hybrid = QdrantDocumentStore(
        ":memory:", index="hybrid", embedding_dim=core.dimension, use_sparse_embeddings=True, sparse_idf=True,
        progress_bar=False,
    )  # fmt: skip
    chroma = ChromaDocumentStore(
        collection_name="scifact", persist_path=str(tmp_path / "hs-chroma"), distance_function="cosine"
    )
    for store, written in ((dense, dense_docs), (hybrid, both_docs), (chroma, dense_docs)):
        store.write_documents(written)
        assert store.count_documents() == len(docs) == SUBSET
    # querying through Haystack; hybrid asks for the whole fused list (each side prefetches its top 10)
    query, sparse = (
        InstructorTextEmbedder(model=minilm_path, device=CPU, instruction=CLAIM),
        InstructorSparseTextEmbedder(),
    )
    retrievers = {
        "dense": lambda q: QdrantEmbeddingRetriever(dense, top_k=K).run(query_embedding=q["embedding"]),
        "hybrid": lambda q: QdrantHybridRetriever(hybrid, top_k=2 * K).run(
            query_embedding=q["embedding"], query_sparse_embedding=q["sparse_embedding"]
        ),
        "chroma": lambda q: ChromaEmbeddingRetriever(chroma, top_k=K).run(query_embedding=q["embedding"]),
    }
    haystack: dict[str, dict[str, list]] = {name: {} for name in retrievers}
    for qid, text in data.queries.items():
        vectors = {**query.run(text), **sparse.run(text)}
        for name, retrieve in retrievers.items():
            haystack[name][qid] = [(d.id, d.score) for d in retrieve(vectors)["documents"]]
    qdrant = _project_hits(tmp_path, scifact, "qdrant", ("dense", "keyword", "hybrid"))
    project = {
        "dense": qdrant["dense"],
        "hybrid": qdrant["hybrid"],
        "chroma": _project_hits(tmp_path, scifact, "chroma", ("dense",))["dense"],
    }

    def ndcg(rankings) -> float:
        return retrieval_metrics(rankings, data.qrels)["ndcg@10"]

    table, problems = {}, []
    # Qdrant Edge searches this collection exactly: every ranking equal. Chroma's HNSW is approximate and
    # two indexes built of the same vectors by separate inserts can differ for a rare query (1 of 300 in
    # one CI run under load, none in the others): at most 1% of its rankings, and nDCG@10 within 0.005.
    for name, allowed in (("dense", 0), ("chroma", len(data.queries) // 100)):
        ours, theirs = {q: _ids(h) for q, h in project[name].items()}, {q: _ids(h) for q, h in haystack[name].items()}
        table[name] = (ndcg(theirs), ndcg(ours))
        differ = [q for q in data.queries if theirs[q] != ours[q]]
        if len(differ) > allowed or abs(table[name][0] - table[name][1]) > 0.005:
            problems.append(f"{name}: {len(differ)} of {len(data.queries)} rankings differ, e.g. {differ[:3]}")
    # hybrid: RRF ties exactly (a document at rank r of one list and one at rank r of the other), and the
    # order of tied documents is the engine's (Qdrant Edge's varies between runs); the fused scores must be
    # the same, and with ties in document-id order so must the rankings and nDCG@10
    fused = {q: _rrf(_ids(qdrant["dense"][q]), _ids(qdrant["keyword"][q])) for q in data.queries}
    as_returned = {q: _ids(h)[:K] for q, h in haystack["hybrid"].items()}
    canonical_ours = {q: _by_score_then_id(fused[q]) for q in data.queries}
    canonical_theirs = {q: _by_score_then_id(dict(haystack["hybrid"][q])) for q in data.queries}
    table["hybrid"] = (ndcg(as_returned), ndcg({q: _ids(h) for q, h in project["hybrid"].items()}))
    table["hybrid, ties by id"] = (ndcg(canonical_theirs), ndcg(canonical_ours))
    for q in data.queries:
        returned = project["hybrid"][q]
        if any(abs(score - fused[q][doc]) > 1e-6 for doc, score in returned):
            problems.append(
                f"hybrid: the project's scores for query {q} are not the RRF of its dense and keyword lists"
            )
        theirs_scores = [score for _, score in haystack["hybrid"][q][:K]]
        if _diff(theirs_scores, [score for _, score in returned]) > 1e-6:
            problems.append(f"hybrid: query {q}: fused scores differ")
    differ = [q for q in data.queries if canonical_theirs[q] != canonical_ours[q]]
    if differ:
        problems.append(f"hybrid: {len(differ)} rankings differ beyond tied documents, e.g. {differ[:3]}")
    print("\n".join(f"{name}: haystack nDCG@10 {h:.4f}, project {p:.4f}" for name, (h, p) in table.items()))
    assert not problems, problems
    for name in ("dense", "chroma", "hybrid, ties by id"):
        assert table[name][0] == table[name][1], name
    # the instructions reached both sides: without the query instruction the figure moves
    plain = retrieval_metrics(
        {q: [scifact["ids"][i] for i in row] for q, row in zip(data.queries, _cosine(core, scifact, ""), strict=True)},
        data.qrels,
    )
    assert abs(plain["ndcg@10"] - table["dense"][1]) > 0.005


def _cosine(core, scifact, instruction: str):
    from instructor_core.evaluation import rank_by_cosine

    queries = core.encode_queries(list(scifact["data"].queries.values()), instruction)
    return rank_by_cosine(queries, scifact["doc_vectors"], k=K)[0]
