"""Filters Qdrant cannot take (a ``$`` operator, an integer past 64 bits, a float, a key its JSON path
parser refuses): one line naming the filter, exit 2 (an ``InputError`` from Python), before the store is
asked; a key with a space or a slash, which Qdrant reads only quoted, finds its records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instructor_core.cli import main
from instructor_core.errors import InputError
from instructor_core.ingest import store_ops

Q = "Represent the question for retrieval: "
D = "Represent the document for retrieval: "
RECORDS = [
    {"id": "a", "text": "alpha text about cells", "metadata": {"topic": 1, "a b": "x", "a/b": "y"}},
    {"id": "b", "text": "beta text about genes", "metadata": {"topic": 2, "a b": "w", "a/b": "v"}},
]


def one_error_line(capsys, command: str) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("instructor ")]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"instructor {command}: error: ")
    return lines[0]


@pytest.fixture(scope="module")
def edge_store(tmp_path_factory, tiny_t5_path) -> str:
    folder = tmp_path_factory.mktemp("filters")
    corpus = folder / "c.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8")
    store = f"qdrant:{folder / 'store'}"
    argv = ["ingest", str(corpus), "--store", store, "--collection", "notes", "--model", str(tiny_t5_path),
            "--document-instruction", D, "--query-instruction", Q, "--quiet"]  # fmt: skip
    assert main(argv) == 0
    return store


REFUSED = {
    "$ne=1": "filter key '$ne': expected a metadata key (not empty, not a $ operator)",
    "topic=99999999999999999999": "filter 'topic': 99999999999999999999 is past the 64-bit integers Qdrant matches",
    "topic=-9223372036854775809": "filter 'topic': -9223372036854775809 is past the 64-bit integers Qdrant matches",
    "topic=1.5": "filter 'topic': Qdrant matches a str, int or bool exactly, not the float 1.5",
    'q"k=1': "filter key 'q\"k': Qdrant cannot filter on a key with a double quote",
    "a[=1": "filter key 'a[': not a key or a path Qdrant can read",
}


@pytest.mark.parametrize("item", list(REFUSED))
def test_a_filter_qdrant_cannot_take_is_one_line(item, edge_store, tiny_t5_path, capsys):
    capsys.readouterr()
    argv = ["search", "cells", "--store", edge_store, "--collection", "notes", "--model", str(tiny_t5_path), "--quiet"]
    assert main([*argv, "--filter", item]) == 2
    assert REFUSED[item] in one_error_line(capsys, "search")


def _local_store(tmp_path: Path, encoder):
    from instructor_qdrant.store import open_local_mode

    store = open_local_mode(str(tmp_path / "local"))
    store_ops.ingest(store, "notes", RECORDS, encoder, model="tiny", show_progress=False)
    return store


@pytest.mark.parametrize("kind", ["edge", "local-mode"])
@pytest.mark.parametrize(
    ("filters", "says"),
    [
        ({"$ne": 1}, "not a $ operator"),
        ({"topic": 2**70}, "past the 64-bit integers"),
        ({"topic": [1, 2**64]}, "past the 64-bit integers"),
        ({"topic": 1.5}, "not the float 1.5"),
        ({"topic": [1, "x"]}, "all str or all int"),
    ],
)
def test_the_python_search_refuses_them_too(kind, filters, says, tmp_path, tiny_t5_encoder):
    from instructor_core.ingest.stores import open_store

    store = open_store(f"qdrant:{tmp_path / 'edge'}") if kind == "edge" else _local_store(tmp_path, tiny_t5_encoder)
    try:
        if kind == "edge":
            store_ops.ingest(store, "notes", RECORDS, tiny_t5_encoder, model="tiny", show_progress=False)
        with pytest.raises(InputError, match=says.replace("$", r"\$")):
            store_ops.search(store, "notes", ["cells"], tiny_t5_encoder, k=2, filters=filters)
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["edge", "local-mode"])
def test_keys_with_a_space_or_a_slash_find_their_records(kind, tmp_path, tiny_t5_encoder):
    from instructor_core.ingest.stores import open_store

    store = open_store(f"qdrant:{tmp_path / 'edge'}") if kind == "edge" else _local_store(tmp_path, tiny_t5_encoder)
    try:
        if kind == "edge":
            store_ops.ingest(store, "notes", RECORDS, tiny_t5_encoder, model="tiny", show_progress=False)
        for filters, expected in [({"a b": "x"}, "a"), ({"a/b": "v"}, "b"), ({"topic": [2]}, "b"), ({"topic": 1}, "a")]:
            hits = store_ops.search(store, "notes", ["cells"], tiny_t5_encoder, k=2, filters=filters)[0]
            assert [hit.id for hit in hits] == [expected], filters
    finally:
        store.close()
