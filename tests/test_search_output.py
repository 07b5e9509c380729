"""`instructor search` says what ran: the mode and what its scores are (stderr line, --json, --queries), reads
the dimension from the collection, and refuses what needs no model before loading one."""

from __future__ import annotations

import json

import pytest

from instructor_core.cli import main

ROWS = [
    {"id": "bio", "text": "Aspirin irreversibly inhibits the enzyme cyclooxygenase."},
    {"id": "geo", "text": "The Nile flows north through Egypt into the Mediterranean."},
    {"id": "sport", "text": "The marathon distance is forty-two kilometres."},
]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    return path


def _ingest(corpus, store, model, *extra):
    assert main(["ingest", str(corpus), "--store", store, "--collection", "docs", "--model", str(model), "--quiet",
                 *extra]) == 0  # fmt: skip


def test_a_dense_search_names_its_mode_and_cosine_scores(corpus, tmp_path, tiny_bert_path, capsys):
    store = f"chroma:{tmp_path / 'c'}"
    _ingest(corpus, store, tiny_bert_path)
    capsys.readouterr()
    assert main(["search", "which drug blocks an enzyme?", "--store", store, "--collection", "docs", "-k", "2"]) == 0
    captured = capsys.readouterr()
    assert "mode dense, score: cosine" in captured.err.splitlines()
    assert len(captured.out.splitlines()) == 2  # stdout: the hits only
    assert main(["search", "enzyme", "--store", store, "--collection", "docs", "-k", "2", "--json", "--quiet"]) == 0
    assert {json.loads(line)["score_kind"] for line in capsys.readouterr().out.splitlines()} == {"cosine"}
    queries = tmp_path / "q.txt"
    queries.write_text("enzyme\nriver\n", encoding="utf-8")
    assert main(["search", "--queries", str(queries), "--store", store, "--collection", "docs", "--quiet"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["mode"], r["score_kind"]) for r in rows] == [("dense", "cosine")] * 2


def test_keyword_mode_on_chroma_is_refused_before_the_model_loads(corpus, tmp_path, capsys):
    store = f"chroma:{tmp_path / 'c'}"
    missing = tmp_path / "no-model"  # loading it would fail with another message
    argv = ["search", "q", "--store", store, "--collection", "docs", "--model", str(missing), "--mode", "keyword"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "has no sparse index; use a Qdrant store" in err and "--hybrid" not in err.replace("hybrid search", "")


def test_hybrid_and_keyword_scores_are_named(corpus, tmp_path, tiny_bert_path, capsys):
    pytest.importorskip("qdrant_edge")
    store = f"qdrant:{tmp_path / 'q'}"
    _ingest(corpus, store, tiny_bert_path, "--hybrid")
    for mode, fusion, kind in (("hybrid", "rrf", "rrf"), ("hybrid", "dbsf", "dbsf"), ("keyword", "rrf", "bm25")):
        capsys.readouterr()
        argv = ["search", "Nile river Egypt", "--store", store, "--collection", "docs", "--json", "--quiet"]
        assert main([*argv, "--mode", mode, "--fusion", fusion]) == 0
        assert {json.loads(line)["score_kind"] for line in capsys.readouterr().out.splitlines()} == {kind}
    assert main(["search", "Nile", "--store", store, "--collection", "docs", "-k", "1"]) == 0
    assert "mode hybrid, score: rrf" in capsys.readouterr().err  # hybrid, the default on such a collection


def test_a_collection_made_with_dim_is_searched_without_repeating_it(corpus, tmp_path, tiny_bert_path, capsys):
    pytest.importorskip("qdrant_edge")
    store = f"qdrant:{tmp_path / 'q'}"
    _ingest(corpus, store, tiny_bert_path, "--dim", "8")
    capsys.readouterr()
    assert main(["search", "enzyme", "--store", store, "--collection", "docs", "-k", "3", "--json", "--quiet"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
