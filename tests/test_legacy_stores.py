"""Collections written before storage was split from encoding (commit 8c20ca7, see
tests/data/legacy_stores/make_legacy_stores.py) stay readable by the new code."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from instructor_core.cli import main
from instructor_core.ingest.records import point_id
from instructor_core.ingest.stores import open_store
from tests.data.legacy_stores.make_legacy_stores import DIMENSION, DOCS, FINGERPRINT, MODEL, FakeEncoder, vector

ARCHIVE = Path(__file__).parent / "data" / "legacy_stores" / "stores.tar.gz"


@pytest.fixture
def legacy(tmp_path) -> Path:
    """A copy of the archived stores (opening a store writes its lock file and the WAL)."""
    with tarfile.open(ARCHIVE) as archive:
        archive.extractall(tmp_path, filter="data")
    return tmp_path


@pytest.mark.parametrize("kind", ["chroma", "qdrant"])
def test_collections_info_reads_a_legacy_collection(kind, legacy, capsys):
    assert main(["collections", "info", "legacy", "--store", f"{kind}:{legacy / kind}", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert (row["model"], row["dimension"], row["count"], row["fingerprint"]) == (MODEL, DIMENSION, 6, FINGERPRINT)
    encoder = FakeEncoder()
    assert (row["query_instruction"], row["document_instruction"]) == (
        encoder.instructions.query,
        encoder.instructions.document,
    )
    assert main(["collections", "list", "--store", f"{kind}:{legacy / kind}"]) == 0
    assert capsys.readouterr().out.split() == ["legacy", "6", "documents", MODEL]


@pytest.mark.parametrize("kind", ["chroma", "qdrant"])
def test_a_search_by_vector_returns_the_stored_ids(kind, legacy):
    store = open_store(f"{kind}:{legacy / kind}", create=False)
    try:
        queries = [vector(DOCS[2]["text"]), vector(DOCS[5]["text"])]
        first, second = store.search("legacy", queries, k=3)
        assert first[0].id == "doc-2" and second[0].id == "doc-5"
        assert first[0].score == pytest.approx(1.0, abs=1e-5)
        assert first[0].text == DOCS[2]["text"] and first[0].metadata == {"n": 2}
        assert len({h.id for h in first}) == 3
        if kind == "qdrant":
            assert first[0].point_id == point_id("doc-2")
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["chroma", "qdrant"])
def test_a_legacy_collection_takes_more_documents_from_the_new_code(kind, legacy):
    from instructor_core.ingest import store_ops

    store = open_store(f"{kind}:{legacy / kind}")
    try:
        more = [{"id": "doc-9", "text": "one more legacy document"}]
        report = store_ops.ingest(store, "legacy", more, FakeEncoder(), model=MODEL, show_progress=False)
        assert report.written == 1 and store.info("legacy").count == 7
        (hits,) = store_ops.search(store, "legacy", ["one more legacy document"], FakeEncoder(), k=1)
        assert hits[0].id == "doc-9"
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["chroma", "qdrant"])
def test_legacy_points_without_a_hash_are_embedded_once_then_skipped(kind, legacy):
    """Points written before content hashes were kept (issue 23) have none: the first re-run embeds
    them again (and stores their hash), the next one skips them."""
    from instructor_core.ingest import store_ops

    store = open_store(f"{kind}:{legacy / kind}")
    try:
        first = store_ops.ingest(store, "legacy", DOCS, FakeEncoder(), model=MODEL, show_progress=False)
        second = store_ops.ingest(store, "legacy", DOCS, FakeEncoder(), model=MODEL, show_progress=False)
        assert (first.unchanged, first.embedded, first.written) == (0, 6, 6)
        assert (second.unchanged, second.embedded, second.written) == (6, 0, 0)
        assert store.info("legacy").count == 6
    finally:
        store.close()
