"""A store registered ONLY through an entry point (tests/plugin_store.py, ``jsondir:DIR``) works with
``instructor ingest``, ``search`` and ``collections``, and with the shared layer; the core imports
no integration; engines are found by entry point as stores are."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from instructor_core.ingest.stores import CollectionLayout, StoreError
from tests.conftest import REPO
from tests.plugin_store import registered
from tests.tiny_models import corpus_lines

Q, D = "Represent the question: ", "Represent the note: "


def plugin_env(root: Path) -> dict[str, str]:
    """The environment of a CLI subprocess that sees the test store's dist-info (and nothing else
    registers it: this process's entry points do not list ``jsondir``)."""
    env = dict(os.environ)
    paths = [str(registered(root)), str(REPO), str(REPO / "integrations"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["HF_HUB_OFFLINE"] = "1"
    return env


def cli(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "instructor_core.cli", *argv], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_the_test_store_is_registered_only_through_its_entry_point():
    from instructor_core.ingest.stores import store_schemes

    assert "jsondir" not in store_schemes()  # not in this process: only the subprocesses' PYTHONPATH has it


def test_a_plugin_store_works_with_ingest_search_and_collections(tmp_path, tiny_t5_path, tiny_t5_encoder):
    env = plugin_env(tmp_path / "plugin")
    rows = [{"id": f"d{i}", "text": t, "topic": "even" if i % 2 == 0 else "odd"}
            for i, t in enumerate(corpus_lines(12))]  # fmt: skip
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    store = f"jsondir:{tmp_path / 'db'}"
    common = ["--store", store, "--collection", "notes"]
    run = cli(env, "ingest", str(corpus), *common, "--model", str(tiny_t5_path), "--query-instruction", Q,
              "--document-instruction", D, "--quiet")  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    saved = json.loads((tmp_path / "db" / "notes.json").read_text(encoding="utf-8"))
    assert sorted(saved["points"]) == sorted(r["id"] for r in rows)
    assert saved["metadata"]["instructor"]["document_instruction"] == D

    run = cli(env, "search", "cell", *common, "-k", "3", "--json", "--filter", "topic=even")
    assert run.returncode == 0, run.stderr[-2000:]
    hits = [json.loads(line) for line in run.stdout.splitlines()]
    tiny_t5_encoder.instructions = tiny_t5_encoder.instructions.replace(query=Q, document=D)
    docs = tiny_t5_encoder.encode_documents([r["text"] for r in rows], D)
    scores = docs @ tiny_t5_encoder.encode_queries(["cell"], Q)[0]
    want = sorted((i for i in range(12) if i % 2 == 0), key=lambda i: -scores[i])[:3]
    assert [h["id"] for h in hits] == [f"d{i}" for i in want]
    assert hits[0]["score"] == pytest.approx(float(scores[want[0]]), abs=1e-4)

    run = cli(env, "collections", "list", "--store", store)
    assert run.returncode == 0 and re.fullmatch(r"notes\s+12 documents\s+\S+\n", run.stdout), run.stdout + run.stderr
    run = cli(env, "collections", "info", "notes", "--store", store, "--json")
    info = json.loads(run.stdout)
    assert (info["count"], info["dimension"], info["query_instruction"]) == (12, tiny_t5_encoder.dimension, Q)
    assert info["model"] == str(Path(tiny_t5_path).resolve())
    run = cli(env, "collections", "delete", "notes", "--store", store, "--yes")
    assert run.returncode == 0 and not (tmp_path / "db" / "notes.json").exists(), run.stderr
    run = cli(env, "collections", "info", "notes", "--store", store)
    assert run.returncode != 0 and "no collection 'notes'" in run.stderr


def test_reserved_layout_features_are_refused_by_stores_that_lack_them(tmp_path):
    from tests.plugin_store import open_store

    store = open_store(str(tmp_path / "db"))
    for layout in (CollectionLayout(dimension=4, quantization="int8"), CollectionLayout(dimension=4, sparse="bm25")):
        with pytest.raises(StoreError, match="cannot hold"):
            store.create_collection("c", layout)
    assert store.list_collections() == []


def test_the_core_imports_no_integration():
    pattern = re.compile(r"^\s*(from|import)\s+instructor_(ray|chroma|qdrant|langchain|llamaindex)\b", re.M)
    found = [str(p.relative_to(REPO)) for p in (REPO / "instructor_core").rglob("*.py")
             if pattern.search(p.read_text(encoding="utf-8"))]  # fmt: skip
    assert found == []


def test_engines_are_entry_points():
    from importlib.metadata import entry_points

    from instructor_core.cli.engines import engines

    registered_engines = {ep.name: ep.value for ep in entry_points(group="instructor.engines")}
    assert registered_engines == {"local": "instructor_core.cli.commands.store:LOCAL_ENGINE",
                                  "ray": "instructor_ray.cli:ENGINE"}  # fmt: skip
    assert sorted(engines()) == ["local", "ray"]
    code = "import sys; from instructor_core.cli import build_parser; build_parser(); print('ray' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "False", run.stderr  # finding the ray engine does not import Ray


def test_a_collection_the_store_makes_leaves_chromas_registry_to_the_real_function(tmp_path):
    from chromadb.utils.embedding_functions import known_embedding_functions

    from instructor_chroma import InstructorEmbeddingFunction
    from instructor_core.ingest.stores import open_store

    store = open_store(f"chroma:{tmp_path / 'db'}")
    try:
        store.create_collection("notes", CollectionLayout(dimension=4, model="m", query_instruction=Q))
        assert store.info("notes").query_instruction == Q
    finally:
        store.close()
    assert known_embedding_functions["instructor_chroma"] is InstructorEmbeddingFunction


@pytest.mark.parametrize("package", ["instructor_chroma", "instructor_qdrant", "instructor_ray"])
def test_integrations_export_what_a_user_calls(package):
    import importlib

    module = importlib.import_module(package)
    assert len(module.__all__) <= 12
    assert all(getattr(module, name) is not None for name in module.__all__)


def test_a_chroma_search_reads_the_collection_once(tmp_path, monkeypatch):
    from instructor_core.ingest.stores import CollectionNotFoundError, open_store

    store = open_store(f"chroma:{tmp_path / 'db'}")
    try:
        store.create_collection("notes", CollectionLayout(dimension=4, model="m"))
        calls = []
        real = store.client.get_collection
        monkeypatch.setattr(store.client, "get_collection", lambda *a, **k: calls.append(a) or real(*a, **k))
        info = store.info("notes")  # what store_ops.search reads first
        assert store.search("notes", [[1.0, 0.0, 0.0, 0.0]], k=1) == [[]]
        assert (info.count, len(calls)) == (0, 1)
        with pytest.raises(CollectionNotFoundError, match="no collection 'other'"):
            store.search("other", [[1.0, 0.0, 0.0, 0.0]], k=1)
    finally:
        store.close()


@pytest.mark.parametrize("option", [["--hybrid"], ["--quantization", "int8"]])
def test_a_plugin_store_refuses_what_its_factory_declares_it_cannot_hold_before_the_folder_is_made(
    option, tmp_path, tiny_t5_path
):
    """The early check the built-in stores get comes from the factory's declaration, not from a
    table in the core: the folder is never made."""
    env = plugin_env(tmp_path / "plugin")
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "a", "text": "one"}) + "\n", encoding="utf-8")
    folder = tmp_path / "db"
    run = cli(env, "ingest", str(corpus), "--store", f"jsondir:{folder}", "--collection", "notes",
              "--model", str(tiny_t5_path), "--quiet", *option)  # fmt: skip
    assert run.returncode == 2, run.stderr[-2000:]
    lines = [line for line in run.stderr.splitlines() if line.startswith("instructor ")]
    assert len(lines) == 1 and "cannot hold" in lines[0] and "nothing was created" in lines[0], run.stderr
    assert not folder.exists()


def test_a_plugin_store_gets_the_early_name_and_kind_checks_through_its_factory(tmp_path, tiny_t5_path):
    """The collection-name rule and the folder marker it declares are asked before its folder is made
    or opened; and a built-in store's URL on its folder names it (no line of the core names jsondir)."""
    env = plugin_env(tmp_path / "plugin")
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "a", "text": "one"}) + "\n", encoding="utf-8")
    folder = tmp_path / "db"
    ingest = ["ingest", str(corpus), "--model", str(tiny_t5_path), "--quiet"]
    run = cli(env, *ingest, "--store", f"jsondir:{folder}", "--collection", "Bad-Name")
    assert run.returncode == 2 and "jsondir takes 1-40 characters" in run.stderr, run.stderr[-2000:]
    assert not folder.exists()
    run = cli(env, *ingest, "--store", f"jsondir:{folder}", "--collection", "notes")
    assert run.returncode == 0, run.stderr[-2000:]
    run = cli(env, "collections", "list", "--store", f"chroma:{folder}")
    lines = [line for line in run.stderr.splitlines() if line.startswith("instructor ")]
    assert run.returncode == 2 and len(lines) == 1, run.stderr[-2000:]
    assert f"is a jsondir store (jsondir.marker); use --store jsondir:{folder}" in lines[0]
    assert "jsondir" not in "".join(p.read_text(encoding="utf-8") for p in (REPO / "instructor_core").rglob("*.py"))
