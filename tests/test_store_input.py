"""Input a store would drop or change, refused before anything of its batch is written (issue 11),
through real stores: embedded Chroma (PersistentClient) and Qdrant (QdrantClient(":memory:"))."""

from __future__ import annotations

import math
from unittest.mock import ANY

import pytest

chromadb = pytest.importorskip("chromadb")
from chromadb.config import Settings  # noqa: E402
from qdrant_client import QdrantClient  # noqa: E402

import instructor_qdrant  # noqa: E402
from instructor_chroma import InstructorEmbeddingFunction, RecordError, ingest, open_collection  # noqa: E402
from instructor_core.ingest.records import HASH_KEY  # noqa: E402


@pytest.fixture()
def collection(tmp_path, tiny_t5_path, tiny_t5_encoder):
    client = chromadb.PersistentClient(str(tmp_path / "db"), settings=Settings(anonymized_telemetry=False))
    ef = InstructorEmbeddingFunction(str(tiny_t5_path), encoder=tiny_t5_encoder)
    return open_collection(client, "docs", ef)


GOOD = [{"id": "a", "text": "first", "metadata": {"n": 1}}, {"id": "b", "text": "second"}]


@pytest.mark.parametrize(
    ("metadata", "pattern"),
    [
        ({"score": math.nan}, r"metadata\['score'\] is nan"),
        ({"score": -math.inf}, r"metadata\['score'\] is -inf"),
        ({"chroma:document": "x"}, r"metadata key 'chroma:document' is reserved"),
        ({"chroma:mine": "x"}, r"metadata key 'chroma:mine' starts with 'chroma:'"),
        ({"big": 2**63}, r"metadata\['big'\] = 9223372036854775808 does not fit a 64-bit integer"),
        ({"": "x"}, r"metadata key '' \(empty\)"),
        ({"nested": {"a": 1}}, r"metadata\['nested'\] must be a str, int, float or bool"),
        ({"bad": "x\ud800"}, r"metadata\['bad'\] holds a lone surrogate U\+D800"),
    ],
)
def test_chroma_metadata_it_would_drop_is_refused_before_writing(collection, metadata, pattern):
    docs = [*GOOD, {"id": "c", "text": "third", "metadata": metadata}, {"id": "d", "text": "fourth"}]
    with pytest.raises(RecordError, match=rf"record 2, id 'c': {pattern}"):
        ingest(collection, docs, batch_size=2, show_progress=False)
    assert sorted(collection.get()["ids"]) == ["a", "b"]  # the first batch only; nothing of c's batch


def test_lone_surrogate_text_is_refused_and_nul_is_kept_exactly(collection, tiny_t5_encoder):
    with pytest.raises(RecordError, match=r"record 1, id 'x': text holds a lone surrogate U\+DFFF"):
        ingest(collection, [GOOD[0], {"id": "x", "text": "low \udfff"}], show_progress=False)
    assert collection.count() == 0
    ingest(collection, [{"id": "nul", "text": "a\x00b", "metadata": {"k": "c\x00d"}}], show_progress=False)
    got = collection.get(ids=["nul"])
    assert (got["documents"], got["metadatas"]) == (["a\x00b"], [{"k": "c\x00d", HASH_KEY: ANY}])
    client = QdrantClient(":memory:")
    with pytest.raises(RecordError, match=r"record 0, id 'x': text holds a lone surrogate"):
        instructor_qdrant.ingest(client, "docs", [{"id": "x", "text": "\ud800"}], tiny_t5_encoder, show_progress=False)
    instructor_qdrant.ingest(client, "docs", [{"id": "nul", "text": "a\x00b"}], tiny_t5_encoder, show_progress=False)
    (hit,) = instructor_qdrant.search(client, "docs", "a", tiny_t5_encoder, limit=1)
    assert (hit.id, hit.text) == ("nul", "a\x00b")
