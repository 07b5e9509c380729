"""The store protocol: stores found by entry point, the CLI working with the core alone."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest

from instructor_core.ingest import stores
from instructor_core.ingest.stores import CollectionNotFoundError, open_store, split_store_url, store_schemes

BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {"chromadb", "qdrant_client", "langchain_core", "llama_index", "ray"}:
            raise ImportError(f"{name} is not installed here")
sys.meta_path.insert(0, Block())
from instructor_core.cli import main
sys.argv = ["instructor", *sys.argv[1:]]
sys.exit(main())
"""


@pytest.mark.parametrize("argv", [["--help"], ["ingest", "--help"], ["search", "--help"]])
def test_help_works_with_the_core_alone(argv):
    run = subprocess.run([sys.executable, "-c", BLOCKER, *argv], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "usage: instructor" in run.stdout


def test_our_stores_are_registered_entry_points():
    schemes = store_schemes()
    assert schemes["chroma"].value == "instructor_chroma.store:open_store"
    assert schemes["qdrant"].value == "instructor_qdrant.store:open_store"


def test_a_third_party_store_is_found_by_its_entry_point(monkeypatch, tmp_path):
    opened = []

    class FakeStore:
        def __init__(self, location):
            opened.append(location)

        def list_collections(self):
            return ["a", "b"]

        def describe(self):
            return "lance at here"

    module = type(sys)("fake_lance_store")
    module.open_store = FakeStore
    monkeypatch.setitem(sys.modules, "fake_lance_store", module)
    extra = EntryPoint(name="lance", value="fake_lance_store:open_store", group=stores.ENTRY_POINT_GROUP)
    from instructor_core.ingest import registry

    monkeypatch.setattr(registry, "store_schemes", lambda: {**store_schemes(), "lance": extra})
    store = open_store(f"lance:{tmp_path}")
    assert isinstance(store, FakeStore) and opened == [str(tmp_path)]
    with pytest.raises(ValueError, match=r"unknown store 'milvus'; registered stores: chroma, lance, qdrant"):
        open_store("milvus:/x")


def test_urls_and_missing_collections_read_clearly():
    assert split_store_url("lance+https://h:1/") == ("lance", "https://h:1")
    error = CollectionNotFoundError("notez", "chroma at ./db", ["notes", "papers"])
    assert str(error) == "no collection 'notez' in chroma at ./db (collections there: 'notes', 'papers')"
