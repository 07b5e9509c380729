"""Store-level reliability and security probes of issue 11, each reproduced against real stores:
no code from a store folder, one writer per embedded store, no silent model mixing, duplicates
across batches, one line (exit 2) for every expected failure."""

from __future__ import annotations

import json
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from instructor_core.cli import main
from tests.tiny_models import corpus_lines

REPO = Path(__file__).resolve().parent.parent
Q = "Represent the question for retrieval: "
D = "Represent the document for retrieval: "


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "integrations"), env.get("PYTHONPATH", "")])
    env["HF_HUB_OFFLINE"] = "1"
    env.update(extra)
    return env


def write_corpus(path: Path, n: int, *, start: int = 0) -> Path:
    rows = [{"id": f"d{i}", "text": t, "topic": "even" if i % 2 == 0 else "odd"}
            for i, t in enumerate(corpus_lines(n), start=start)]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def ingest_argv(corpus: Path, store: str, model: Path | str, *extra: str) -> list[str]:
    return ["ingest", str(corpus), "--store", store, "--collection", "notes", "--model", str(model),
            "--document-instruction", D, "--query-instruction", Q, "--quiet", *extra]  # fmt: skip


# ------------------------------------------------------------------------------------ 1. no pickle
class _Plant:
    """Unpickling this creates ``path`` (harmless, but it is code run from a store file)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def plant_pickle(folder: Path, marker: Path) -> None:
    """A real qdrant-client local-mode store whose stored point is replaced by a planted pickle."""
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(folder))
    client.create_collection("notes", vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE))
    client.upsert("notes", [models.PointStruct(id=1, vector=[1.0, 0, 0, 0], payload={"id": "a", "text": "x"})])
    client.close()
    db = sqlite3.connect(folder / "collection" / "notes" / "storage.sqlite")
    with db:
        db.execute("UPDATE points SET point = ?", (pickle.dumps(_Plant(str(marker))),))
    db.close()


def test_qdrant_dir_never_unpickles_a_planted_store(tmp_path, tiny_t5_path, capsys):
    from qdrant_client import QdrantClient

    from instructor_core.stores import StoreError, open_store

    folder, marker = tmp_path / "qdb", tmp_path / "PWNED"
    plant_pickle(folder, marker)

    with pytest.raises(StoreError, match="qdrant-client local-mode folder") as caught:
        open_store(f"qdrant:{folder}")
    assert "\n" not in str(caught.value)
    assert not marker.exists()

    argv = ["search", "q", "--store", f"qdrant:{folder}", "--collection", "notes", "--model", str(tiny_t5_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("instructor search: error: ") and "unpickles" in err and len(err.splitlines()) == 1
    assert main(ingest_argv(write_corpus(tmp_path / "c.jsonl", 3), f"qdrant:{folder}", tiny_t5_path)) == 2
    assert "local-mode folder" in capsys.readouterr().err
    assert not marker.exists()

    # the probe is real: qdrant-client's own local mode runs the planted pickle on open
    try:
        QdrantClient(path=str(folder)).close()
    except Exception:
        pass  # the unpickled object is not a point; the code already ran
    assert marker.exists()


def test_qdrant_dir_is_an_edge_store(tmp_path, tiny_t5_path, capsys):
    from instructor_core import InstructorEncoder
    from instructor_core.stores import open_store

    corpus = write_corpus(tmp_path / "c.jsonl", 12)
    store = f"qdrant:{tmp_path / 'edge'}"
    assert main(ingest_argv(corpus, store, tiny_t5_path)) == 0
    assert main(ingest_argv(corpus, store, tiny_t5_path)) == 0  # upsert, no duplicates
    assert (tmp_path / "edge" / "collections" / "notes" / "shard" / "edge_config.json").is_file()
    assert not list((tmp_path / "edge").rglob("*.sqlite"))  # nothing of qdrant-client's local mode
    opened = open_store(store)
    try:
        info = opened.info("notes")
        assert (info.count, info.query_instruction, info.document_instruction) == (12, Q, D)
        assert info.model == str(Path(tiny_t5_path).resolve()) and info.created
        enc = InstructorEncoder.from_pretrained(tiny_t5_path, device="cpu")
        assert info.dimension == enc.dimension
        (hits,) = opened.search("notes", ["cell"], enc, k=20, filters={"topic": "even"}, instruction=Q)
        assert len(hits) == 6 and all(h.metadata == {"topic": "even"} for h in hits)
        from instructor_core.records import point_id

        assert all(h.point_id == point_id(h.id) for h in hits)
        # scores are the cosine of the same vectors computed here
        docs = {f"d{i}": t for i, t in enumerate(corpus_lines(12))}
        q = enc.encode_queries(["cell"], Q)[0]
        for h in hits:
            assert abs(float(enc.encode_documents([docs[h.id]], D)[0] @ q) - h.score) < 1e-4
        assert hits == sorted(hits, key=lambda h: -h.score)
    finally:
        opened.close()
    layout = json.loads((tmp_path / "edge" / "collections" / "notes" / "instructor.json").read_text())
    assert layout["instructor"]["dimension"] == info.dimension


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "", "x" * 256])
def test_edge_collection_names_stay_inside_the_folder(tmp_path, name):
    from instructor_core.stores import open_store

    opened = open_store(f"qdrant:{tmp_path / 'edge'}")
    try:
        with pytest.raises(ValueError, match="collection name"):
            opened.info(name)
    finally:
        opened.close()
