"""`instructor ingest` / `instructor search` against embedded Chroma and Qdrant, and a Chroma server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from instructor_core import InstructorEncoder
from instructor_core.cli import main
from instructor_core.cli.commands.store import DEFAULT_STORE, parse_filters
from instructor_core.ingest.stores import split_store_url
from tests.tiny_models import corpus_lines

REPO = Path(__file__).resolve().parent.parent
Q = "Represent the question for retrieval: "
D = "Represent the document for retrieval: "
QUERY = "cell protein gene study"


@pytest.fixture()
def corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    rows = [
        {"doc_id": f"d{i}", "body": t, "topic": "even" if i % 2 == 0 else "odd"} for i, t in enumerate(corpus_lines(24))
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path, rows


def expected_ranking(model_path, rows, k, keep=lambda row: True):
    enc = InstructorEncoder.from_pretrained(model_path, device="cpu")
    kept = [r for r in rows if keep(r)]
    scores = enc.encode_documents([r["body"] for r in kept], D) @ enc.encode_queries([QUERY], Q)[0]
    order = np.argsort(-scores, kind="stable")[:k]
    return [kept[i]["doc_id"] for i in order], scores[order]


def ingest_args(corpus_path, store, model):
    return [
        "ingest", str(corpus_path), "--store", store, "--collection", "notes", "--model", str(model),
        "--document-instruction", D, "--query-instruction", Q,
        "--text-field", "body", "--id-field", "doc_id", "--batch-size", "10", "--quiet",
    ]  # fmt: skip


def search_json(capsys, store, *extra):
    capsys.readouterr()
    assert main(["search", QUERY, "--store", store, "--collection", "notes", "-k", "5", "--json", *extra]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_parse_store():
    assert split_store_url("chroma:/tmp/db") == ("chroma", "/tmp/db")
    assert split_store_url("qdrant:rel/dir") == ("qdrant", "rel/dir")
    assert split_store_url("chroma+http://127.0.0.1:8000") == ("chroma", "http://127.0.0.1:8000")
    assert split_store_url("qdrant+https://q.example.com:6333/") == ("qdrant", "https://q.example.com:6333")
    assert split_store_url(DEFAULT_STORE)[0] == "chroma"
    for bad in ("chroma:", "qdrant+ftp://h:1", "chroma"):
        with pytest.raises(ValueError, match="store"):
            split_store_url(bad)
    assert parse_filters(["topic=even", "n=3", "flag=true", "name=[1]"]) == {
        "topic": "even", "n": 3, "flag": True, "name": "[1]",
    }  # fmt: skip


@pytest.mark.parametrize("kind", ["chroma", "qdrant"])
def test_ingest_then_search_without_model(kind, tmp_path, corpus, tiny_t5_path, capsys):
    corpus_path, rows = corpus
    store = f"{kind}:{tmp_path / 'store'}"
    assert main(ingest_args(corpus_path, store, tiny_t5_path)) == 0
    assert main(ingest_args(corpus_path, store, tiny_t5_path)) == 0  # re-run: upserts, no duplicates
    hits = search_json(capsys, store)  # no --model: taken from the collection
    ids, scores = expected_ranking(tiny_t5_path, rows, 5)
    assert [h["id"] for h in hits] == ids
    np.testing.assert_allclose([h["score"] for h in hits], scores, atol=1e-5)
    top = next(r for r in rows if r["doc_id"] == ids[0])
    assert hits[0]["text"] == top["body"] and hits[0]["metadata"] == {"topic": top["topic"]}
    assert hits[0]["rank"] == 1
    even = search_json(capsys, store, "--filter", "topic=even")
    assert [h["id"] for h in even] == expected_ranking(tiny_t5_path, rows, 5, lambda r: r["topic"] == "even")[0]
    if kind == "chroma":
        from chromadb import PersistentClient
        from chromadb.config import Settings

        count = PersistentClient(str(tmp_path / "store"), Settings(anonymized_telemetry=False))
        assert count.get_collection("notes").count() == 24
    else:
        from instructor_core.ingest.stores import open_store

        opened = open_store(store)  # Qdrant Edge, not qdrant-client's local mode
        assert opened.info("notes").count == 24
        opened.close()


def test_plain_output_and_errors(tmp_path, corpus, tiny_t5_path, tiny_bert_path, capsys):
    corpus_path, _ = corpus
    store = f"chroma:{tmp_path / 'store'}"
    assert main(ingest_args(corpus_path, store, tiny_t5_path)) == 0
    capsys.readouterr()
    assert main(["search", QUERY, "--store", store, "--collection", "notes", "-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("  1. ") and " d" in lines[0]
    # another model against the same collection is refused, for search and for ingest
    args = ["search", QUERY, "--store", store, "--collection", "notes", "--model", str(tiny_bert_path)]
    assert main(args) == 2
    assert "was made with model" in capsys.readouterr().err
    assert main(ingest_args(corpus_path, store, tiny_t5_path)[:-1] + ["--document-instruction", "X: "]) == 2
    assert "cannot change document_instruction" in capsys.readouterr().err
    assert main(["search", QUERY, "--store", store, "--collection", "missing"]) == 2
    assert "no collection 'missing'" in capsys.readouterr().err
    assert main(["search", QUERY, "--store", "redis:/x", "--collection", "notes"]) == 2
    assert main(ingest_args(tmp_path / "nope.jsonl", store, tiny_t5_path)) == 2
    assert "corpus not found" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"doc_id": "a", "body": "x"}\n{"doc_id": "b", "body": 5}\n', encoding="utf-8")
    assert main(ingest_args(bad, store, tiny_t5_path)) == 2
    assert "record 1, id 'b': text must be a str" in capsys.readouterr().err


def test_csv_and_text_folder_corpora(tmp_path, tiny_t5_path, capsys):
    csv_path = tmp_path / "intents.csv"
    csv_path.write_text("text,category\nmy card was declined,card\nhow do I transfer money,transfer\n")
    store = f"qdrant:{tmp_path / 'q'}"
    base = ["--store", store, "--model", str(tiny_t5_path), "--quiet"]
    assert main(["ingest", str(csv_path), "--collection", "intents", "--id-field", "", *base]) == 0
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.txt").write_text("the river runs to the sea\n")
    (folder / "b.txt").write_text("a guitar plays music\n")
    assert main(["ingest", str(folder), "--collection", "files", *base]) == 0
    capsys.readouterr()
    assert main(["search", "card", "--store", store, "--collection", "intents", "--json"]) == 0
    hits = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert sorted(h["id"] for h in hits) == ["0", "1"]
    assert {h["metadata"]["category"] for h in hits} == {"card", "transfer"}
    assert main(["search", "music", "--store", store, "--collection", "files", "--json", "--filter", "path=b.txt"]) == 0
    hits = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(h["id"], h["text"]) for h in hits] == [("b.txt", "a guitar plays music\n")]


def test_console_script_in_a_fresh_process(tmp_path, corpus, tiny_t5_path):
    corpus_path, rows = corpus
    store = f"chroma:{tmp_path / 'store'}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    exe = [sys.executable, "-m", "instructor_core.cli"]
    run = subprocess.run(exe + ingest_args(corpus_path, store, tiny_t5_path), env=env, cwd=tmp_path, timeout=240)
    assert run.returncode == 0
    out = subprocess.run(
        exe + ["search", QUERY, "--store", store, "--collection", "notes", "-k", "5", "--json"],
        env=env, cwd=tmp_path, timeout=240, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert [json.loads(x)["id"] for x in out.stdout.splitlines()] == expected_ranking(tiny_t5_path, rows, 5)[0]


@pytest.mark.server
def test_chroma_server_store(chroma_server, corpus, tiny_t5_path, capsys):
    corpus_path, rows = corpus
    store = f"chroma+http://127.0.0.1:{chroma_server}"
    assert main(ingest_args(corpus_path, store, tiny_t5_path)) == 0
    hits = search_json(capsys, store)
    assert [h["id"] for h in hits] == expected_ranking(tiny_t5_path, rows, 5)[0]


@pytest.mark.slow
def test_demo_answers_each_query_from_the_right_document(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    out = subprocess.run(
        [sys.executable, str(REPO / "examples" / "demo.py"), "--store-dir", str(tmp_path / "demo"), "-k", "2"],
        env=env, cwd=tmp_path, timeout=300, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ingested 300 documents" in out.stdout
    tops = [line.split("] ")[1].split(":")[0] for line in out.stdout.splitlines() if line.startswith("  1. ")]
    # each default query has one document in the corpus that answers it
    assert tops == ["biology-02", "finance-10", "astronomy-02", "cooking-02", "music-04", "climate-01"]
    # the task instructions are shown, and what they change (issue 24): one query ranked with and without
    assert "document instruction: 'Represent the document for retrieval: '" in out.stdout
    assert "one query, ranked with and without the instructions" in out.stdout
    assert "4 of the top 5 places differ" in out.stdout


def test_unreachable_qdrant_server_is_one_clear_line(tmp_path, corpus, tiny_t5_path, capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = f"qdrant+http://127.0.0.1:{port}"
    # (qdrant-client's version check warns from a background thread that the server is down)
    code = main(["search", QUERY, "--store", store, "--collection", "notes", "--model", str(tiny_t5_path)])
    assert code == 2  # an expected failure: one line, exit 2 (issue 11)
    assert f"instructor search: error: cannot reach qdrant at http://127.0.0.1:{port}" in capsys.readouterr().err
    assert main(ingest_args(corpus[0], store, tiny_t5_path)) == 2
    assert "instructor ingest: error: cannot reach qdrant" in capsys.readouterr().err
