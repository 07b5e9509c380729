"""A damaged keyword-index layout (BM25 settings in ``instructor.json`` or the collection's metadata) and
filters a store cannot take: one line naming the collection and the field, exit 2, before the store is asked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instructor_core.cli import main
from instructor_core.errors import InstructorError
from tests.tiny_models import corpus_lines

Q = "Represent the question for retrieval: "
D = "Represent the document for retrieval: "


def one_error_line(capsys, command: str) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("instructor ")]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"instructor {command}: error: ")
    return lines[0]


def write_corpus(path: Path, n: int) -> Path:
    rows = [{"id": f"d{i}", "text": t, "topic": "even" if i % 2 == 0 else "odd"} for i, t in enumerate(corpus_lines(n))]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def ingest_argv(corpus: Path, store: str, model: Path, *extra: str) -> list[str]:
    return ["ingest", str(corpus), "--store", store, "--collection", "notes", "--model", str(model),
            "--document-instruction", D, "--query-instruction", Q, "--quiet", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def hybrid_edge(tmp_path_factory, tiny_t5_path) -> Path:
    """A Qdrant Edge store with a collection 'notes' that has a keyword index; tests copy it."""
    folder = tmp_path_factory.mktemp("hybrid") / "store"
    corpus = write_corpus(folder.parent / "c.jsonl", 6)
    assert main(ingest_argv(corpus, f"qdrant:{folder}", tiny_t5_path, "--hybrid")) == 0
    return folder


BAD_SETTINGS = {
    "language klingon": ("language", "klingon", "keyword index setting language 'klingon'"),
    "k not a number": ("k", "x", "keyword index setting k 'x': expected a finite number"),
    "avg_len 0": ("avg_len", 0, "keyword index setting avg_len 0: expected a number above 0"),
    "b above 1": ("b", 5, "keyword index setting b 5: expected a number from 0 to 1"),
}


def commands(store: str, corpus: Path, model: Path) -> dict[str, list[str]]:
    return {
        "search": ["search", "hello", "--store", store, "--collection", "notes", "--model", str(model),
                   "--mode", "keyword", "--quiet"],
        "collections": ["collections", "info", "notes", "--store", store],
        "ingest": ingest_argv(corpus, store, model, "--hybrid"),
    }  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_SETTINGS))
def test_a_damaged_keyword_index_layout_is_one_line_naming_collection_and_field(
    case, tmp_path, hybrid_edge, tiny_t5_path, capsys
):
    import shutil

    field, value, says = BAD_SETTINGS[case]
    folder = tmp_path / "store"
    shutil.copytree(hybrid_edge, folder)
    layout_file = folder / "collections" / "notes" / "instructor.json"
    layout = json.loads(layout_file.read_text(encoding="utf-8"))
    layout["instructor"]["sparse"]["settings"][field] = value
    layout_file.write_text(json.dumps(layout), encoding="utf-8")
    capsys.readouterr()
    corpus = write_corpus(tmp_path / "c.jsonl", 3)
    for command, argv in commands(f"qdrant:{folder}", corpus, tiny_t5_path).items():
        assert main(argv) == 2, command
        line = one_error_line(capsys, command)
        assert "collection 'notes'" in line and says in line, line


def test_a_damaged_keyword_index_in_server_metadata_names_collection_and_field(tmp_path, tiny_t5_encoder):
    """qdrant-client's local mode runs the server store's code path: the layout is collection metadata."""
    from instructor_core.ingest import store_ops
    from instructor_qdrant.store import open_local_mode

    store = open_local_mode(str(tmp_path / "local"))
    try:
        records = [{"id": f"d{i}", "text": t} for i, t in enumerate(corpus_lines(4))]
        store_ops.ingest(store, "notes", records, tiny_t5_encoder, model="tiny", hybrid=True, show_progress=False)
        client = store.client
        metadata = dict(client.get_collection("notes").config.metadata)
        metadata["instructor"]["sparse"]["settings"]["language"] = "klingon"
        client.update_collection("notes", metadata=metadata)
        with pytest.raises(InstructorError, match="collection 'notes'.*keyword index setting language 'klingon'"):
            store_ops.search(store, "notes", ["hello"], tiny_t5_encoder, k=2, mode="keyword")
    finally:
        store.close()
