"""Hybrid retrieval in this package's own stores: a BM25 keyword index beside the dense vectors
(``ingest(..., hybrid=True)``, ``instructor ingest --hybrid``), searched by ``mode`` dense, keyword or
hybrid (RRF or DBSF), in Qdrant Edge (``qdrant:DIR``) and through qdrant-client's server code path
(its local mode); Chroma refuses in one line."""

from __future__ import annotations

import json
import re

import pytest

from instructor_core import InstructorEncoder
from instructor_core.ingest import store_ops
from instructor_core.ingest.stores import NoKeywordIndexError, StoreError, open_store
from tests.conftest import REPO

QUERY = "Represent the question for retrieving supporting documents: "
DOCUMENT = "Represent the document for retrieval: "
QUESTIONS = ("Which planet is the biggest?", "How do plants turn sunlight into food?", "Why does bread dough rise?")
K = 5
#: A word one document holds (Apollo 11's) that all-MiniLM-L6-v2 ranks far down on its own.
RARE = "mission"


def _rrf(*rankings: list[str]) -> dict[str, float]:
    """Qdrant's reciprocal-rank fusion: each list adds ``1 / (position + 2)`` (k = 2, positions from 0)."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for position, doc_id in enumerate(ranking):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (position + 2)
    return scores


def _dbsf(*rankings: list[tuple[str, float]]) -> dict[str, float]:
    """Distribution-based score fusion as Qdrant does it: each list's scores mapped from
    ``mean - 3 sd .. mean + 3 sd`` (sample sd) onto 0 .. 1 (one hit, or all equal: 0.5), then summed."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        values = [score for _, score in ranking]
        mean = sum(values) / len(values)
        sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
        for doc_id, score in ranking:
            normal = 0.5 if sd == 0 else (score - (mean - 3 * sd)) / (6 * sd)
            scores[doc_id] = scores.get(doc_id, 0.0) + normal
    return scores


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    lines = (REPO / "examples" / "demo_documents.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[:120]]


@pytest.fixture(scope="module")
def encoder(minilm_path) -> InstructorEncoder:
    enc = InstructorEncoder.from_pretrained(minilm_path, device="cpu")
    enc.instructions = enc.instructions.replace(query=QUERY, document=DOCUMENT)
    return enc


def _edge(tmp_path_factory):
    return open_store(f"qdrant:{tmp_path_factory.mktemp('edge')}")


def _local_mode(tmp_path_factory):
    from instructor_qdrant.store import open_local_mode

    return open_local_mode(str(tmp_path_factory.mktemp("local")))


@pytest.fixture(scope="module", params=["edge", "local-mode"])
def hybrid_store(request, tmp_path_factory, corpus, encoder):
    """A store holding the corpus in a collection with a keyword index (and one without)."""
    store = (_edge if request.param == "edge" else _local_mode)(tmp_path_factory)
    store_ops.ingest(store, "docs", corpus, encoder, model="minilm", hybrid=True, show_progress=False)
    store_ops.ingest(store, "dense", corpus, encoder, model="minilm", show_progress=False)
    yield store
    store.close()


def _ids(hits) -> list[str]:
    return [h.id for h in hits]


def test_the_layout_records_the_keyword_index(hybrid_store):
    info = hybrid_store.info("docs")
    assert info.layout is not None and info.layout.sparse == "bm25"
    assert info.layout.sparse_settings == {"k": 1.2, "b": 0.75, "avg_len": 256.0, "language": "english"}
    assert info.count == 120
    assert hybrid_store.info("dense").layout.sparse is None


def test_keyword_search_finds_a_rare_word_that_dense_misses(hybrid_store, encoder, corpus):
    apollo = next(d["id"] for d in corpus if "Apollo 11" in d["text"])
    dense = store_ops.search(hybrid_store, "docs", [RARE], encoder, k=100, mode="dense")[0]
    keyword = store_ops.search(hybrid_store, "docs", [RARE], encoder, k=K, mode="keyword")[0]
    assert _ids(dense).index(apollo) >= 50  # 61st for all-MiniLM-L6-v2
    assert _ids(keyword)[0] == apollo
    hybrid = store_ops.search(hybrid_store, "docs", [RARE], encoder, k=K)[0]  # the default on this collection
    assert apollo in _ids(hybrid)


def _lists_without_ties(store, encoder, question: str) -> tuple[list[str], list[str]] | None:
    """The dense and keyword top K, or None where either has two equal scores in its top K + 1: an
    engine breaks such ties in no fixed order (Qdrant Edge: not the same from one call to the next)."""
    out = []
    for mode in ("dense", "keyword"):
        hits = store_ops.search(store, "docs", [question], encoder, k=K + 1, mode=mode)[0]
        scores = [round(h.score, 5) for h in hits]
        if len(set(scores)) < len(scores):
            return None
        out.append(_ids(hits[:K]))
    return out[0], out[1]


#: Questions whose dense and keyword lists have no tied scores (checked: at least two are compared); the
#: last two rank differently under RRF and DBSF (all-MiniLM-L6-v2), so a swapped fusion cannot pass.
UNTIED = (
    *QUESTIONS,
    "When did humans first land on the Moon?",
    "Apollo 11 lunar mission",
    "What does yeast eat?",
    "How do vaccines work?",
    "moon landing astronauts",
)


def test_hybrid_is_the_rrf_of_the_dense_and_keyword_lists(hybrid_store, encoder):
    compared = 0
    for question in UNTIED:
        lists = _lists_without_ties(hybrid_store, encoder, question)
        if lists is None:
            continue
        fused = _rrf(*lists)
        hits = store_ops.search(hybrid_store, "docs", [question], encoder, k=K, mode="hybrid", fusion="rrf")[0]
        assert {h.id: pytest.approx(h.score) for h in hits} == {h.id: fused[h.id] for h in hits}
        assert sorted((h.score for h in hits), reverse=True) == pytest.approx(sorted(fused.values(), reverse=True)[:K])
        compared += 1
    assert compared >= 2


def _scored_lists_without_ties(store, encoder, question: str) -> tuple[list, list] | None:
    """The dense and keyword top K as ``(id, score)`` pairs, or None where either has tied scores in its top K + 1."""
    out = []
    for mode in ("dense", "keyword"):
        hits = store_ops.search(store, "docs", [question], encoder, k=K + 1, mode=mode)[0]
        if len({round(h.score, 5) for h in hits}) < len(hits):
            return None
        out.append([(h.id, h.score) for h in hits[:K]])
    return out[0], out[1]


def _ranked(scores: dict[str, float]) -> list[str]:
    return sorted(scores, key=lambda doc_id: -scores[doc_id])[:K]


def _opposed(first: dict[str, float], second: dict[str, float], ids: set[str]) -> tuple[str, str] | None:
    """Two of ``ids`` that ``first`` ranks strictly one way and ``second`` strictly the other, if any."""
    for a in sorted(ids):
        for b in sorted(ids):
            if first[a] > first[b] + 1e-6 and second[a] < second[b] - 1e-6:
                return a, b
    return None


def test_dbsf_is_the_distribution_based_fusion_of_the_two_lists(hybrid_store, encoder):
    """Each store's DBSF equals a naive DBSF of the dense and keyword lists, ids in order and scores."""
    compared = 0
    for question in UNTIED:
        lists = _scored_lists_without_ties(hybrid_store, encoder, question)
        if lists is None:
            continue
        fused = _dbsf(*lists)
        hits = store_ops.search(hybrid_store, "docs", [question], encoder, k=K, mode="hybrid", fusion="dbsf")[0]
        assert _ids(hits) == _ranked(fused), question
        assert [h.score for h in hits] == pytest.approx([fused[h.id] for h in hits], abs=1e-5)
        compared += 1
    assert compared >= 2


def test_rrf_and_dbsf_each_rank_as_their_own_fusion_where_the_two_disagree(hybrid_store, encoder):
    """A question where RRF and DBSF rank two documents in opposite orders: ``fusion="rrf"`` puts
    them in RRF's order, ``"dbsf"`` in DBSF's, so a store that ran one for the other fails."""
    for question in UNTIED:
        lists = _scored_lists_without_ties(hybrid_store, encoder, question)
        if lists is None:
            continue
        by_rrf, by_dbsf = _rrf(*([i for i, _ in ranking] for ranking in lists)), _dbsf(*lists)
        rrf_hits, dbsf_hits = (
            _ids(store_ops.search(hybrid_store, "docs", [question], encoder, k=K, mode="hybrid", fusion=f)[0])
            for f in ("rrf", "dbsf")
        )
        pair = _opposed(by_rrf, by_dbsf, set(rrf_hits) & set(dbsf_hits))
        if pair is None:
            continue
        first, second = pair  # RRF: first above second; DBSF: second above first
        assert rrf_hits.index(first) < rrf_hits.index(second), question
        assert dbsf_hits.index(second) < dbsf_hits.index(first), question
        return
    pytest.fail("no question of UNTIED ranks two documents in opposite orders under RRF and DBSF")


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_filters_work_in_every_mode(hybrid_store, encoder, corpus, mode):
    topics = {d["id"]: d["metadata"]["topic"] for d in corpus}
    question = QUESTIONS[1]
    best = store_ops.search(hybrid_store, "docs", [question], encoder, k=K, mode=mode)[0][0]
    for topic in (topics[best.id], next(t for t in sorted(set(topics.values())) if t != topics[best.id])):
        hits = store_ops.search(hybrid_store, "docs", [question], encoder, k=K, mode=mode, filters={"topic": topic})[0]
        assert {topics[h.id] for h in hits} <= {topic}
        assert (best.id in {h.id for h in hits}) == (topic == topics[best.id])
    # the rare word of one topic's document, searched in another topic: the filter holds there too
    apollo = next(d for d in corpus if "Apollo 11" in d["text"])
    other = next(t for t in sorted(set(topics.values())) if t != apollo["metadata"]["topic"])
    hits = store_ops.search(hybrid_store, "docs", [RARE], encoder, k=K, mode=mode, filters={"topic": other})[0]
    assert apollo["id"] not in {h.id for h in hits} and {topics[h.id] for h in hits} <= {other}


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
def test_keyword_modes_on_a_collection_without_the_index_name_the_fix(hybrid_store, encoder, mode):
    with pytest.raises(NoKeywordIndexError, match="re-ingest .* with --hybrid") as err:
        store_ops.search(hybrid_store, "dense", ["x"], encoder, k=K, mode=mode)
    assert "\n" not in str(err.value)
    assert len(store_ops.search(hybrid_store, "dense", ["x"], encoder, k=K)[0]) == K  # default: dense


def test_the_keyword_side_never_sees_the_instruction(hybrid_store, encoder):
    """Neither side of the keyword index sees an instruction. Documents: the words of the document
    instruction ("Represent", "document", "retrieval") are in no document's text, so a keyword
    search for them finds nothing. Queries: an instruction naming the Apollo 11 document's words
    ("Apollo", "mission"), with a query whose own words are in no document, finds nothing by
    keyword, and the hybrid list is the dense list alone."""
    assert store_ops.search(hybrid_store, "docs", ["Represent"], encoder, k=K, mode="keyword")[0] == []
    instruction, question = "Represent the Apollo mission question: ", "zebra quokka"
    for given in (instruction, None):
        words = store_ops.search(hybrid_store, "docs", [question], encoder, k=K, mode="keyword", instruction=given)
        assert words == [[]]
    dense = store_ops.search(hybrid_store, "docs", [question], encoder, k=K, mode="dense", instruction=instruction)[0]
    fused = store_ops.search(hybrid_store, "docs", [question], encoder, k=K, mode="hybrid", instruction=instruction)[0]
    assert _ids(fused) == _ids(dense)
    assert [h.score for h in fused] == pytest.approx([_rrf(_ids(dense))[i] for i in _ids(dense)])
    keyword = store_ops.search(hybrid_store, "docs", [f"{instruction}{question}"], encoder, k=K, mode="keyword")[0]
    assert keyword and "Apollo 11" in keyword[0].text  # the same words in the query text itself are found


def test_hybrid_cannot_be_added_to_a_dense_collection(hybrid_store, encoder, corpus):
    from instructor_core.ingest.stores import CollectionMismatchError

    with pytest.raises(CollectionMismatchError, match="without a keyword index"):
        store_ops.ingest(hybrid_store, "dense", corpus[:2], encoder, model="minilm", hybrid=True, show_progress=False)


def test_chroma_refuses_hybrid_in_one_line_before_creating_anything(tmp_path, encoder, corpus):
    store = open_store(f"chroma:{tmp_path / 'db'}")
    try:
        with pytest.raises(StoreError, match="no sparse index") as err:
            store_ops.ingest(store, "docs", corpus[:2], encoder, model="minilm", hybrid=True, show_progress=False)
        assert "\n" not in str(err.value)
        assert store.list_collections() == []
    finally:
        store.close()


# ---------------------------------------------------------------------------------------------- the CLI
def _cli_corpus(tmp_path, corpus) -> str:
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in corpus), encoding="utf-8")
    return str(path)


def test_cli_ingest_hybrid_info_and_search_modes(tmp_path, corpus, minilm_path, capsys):
    from instructor_core.cli import main

    apollo = next(d["id"] for d in corpus if "Apollo 11" in d["text"])
    store = f"qdrant:{tmp_path / 'store'}"
    base = ["--store", store, "--collection", "docs"]
    ingest = ["ingest", _cli_corpus(tmp_path, corpus), *base, "--model", str(minilm_path), "--quiet",
              "--query-instruction", QUERY, "--document-instruction", DOCUMENT]  # fmt: skip
    assert main([*ingest, "--hybrid"]) == 0
    assert main(["ingest", _cli_corpus(tmp_path, corpus), "--store", store, "--collection", "plain",
                 "--model", str(minilm_path), "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["collections", "info", "docs", "--store", store]) == 0
    assert re.search(
        r"keyword index: +bm25 \(k=1.2, b=0.75, avg_len=256.0, language=english\)", capsys.readouterr().out
    )
    assert main(["collections", "info", "docs", "--store", store, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["keyword_index"]["kind"] == "bm25"

    def ranked(*extra: str) -> list[str]:
        capsys.readouterr()
        assert main(["search", RARE, *base, "-k", "5", "--json", "--quiet", *extra]) == 0
        return [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()]

    assert ranked("--mode", "keyword")[0] == apollo
    assert apollo not in ranked("--mode", "dense")
    assert apollo in ranked()  # hybrid: the default on this collection
    assert apollo in ranked("--mode", "hybrid", "--fusion", "dbsf")
    assert apollo not in ranked("--mode", "keyword", "--filter", "topic=cooking")
    capsys.readouterr()
    assert main(["search", RARE, "--store", store, "--collection", "plain", "--mode", "keyword", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no keyword index" in err and "re-ingest" in err and "--hybrid" in err and "\n" not in err


def test_cli_chroma_refuses_hybrid_before_making_the_store(tmp_path, corpus, minilm_path, capsys):
    from instructor_core.cli import main

    folder = tmp_path / "chroma"
    args = ["ingest", _cli_corpus(tmp_path, corpus), "--store", f"chroma:{folder}", "--collection", "docs",
            "--model", str(minilm_path), "--hybrid", "--quiet"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "no sparse index" in err and "\n" not in err
    assert not folder.exists()


def test_cli_chroma_refuses_quantization_before_making_the_store(tmp_path, corpus, minilm_path, capsys):
    """``--quantization int8`` on a new Chroma store was refused only after chroma.sqlite3 was made."""
    from instructor_core.cli import main

    folder = tmp_path / "chroma"
    args = ["ingest", _cli_corpus(tmp_path, corpus), "--store", f"chroma:{folder}", "--collection", "docs",
            "--model", str(minilm_path), "--quantization", "int8", "--quiet"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot hold int8-quantized collections" in err and "\n" not in err
    assert not folder.exists()
