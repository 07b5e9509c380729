"""What the CLI says to a careless user: an empty corpus, a folder where a file is expected, a named
pipe, flags that cannot go together, a keyword query of stop words only, a collection cut to fewer
dimensions. Each was silent or misleading (a success with nothing done, "does not exist" for a folder,
a Python argument name the CLI does not have)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from instructor_core.cli import main
from tests.cli_helpers import ingest_argv, write_corpus


def one_line(capsys, command: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(f"instructor {command}: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("kind", ["empty file", "empty folder", "folder of skipped files"])
def test_an_empty_corpus_is_refused_and_no_collection_is_made(kind, tmp_path, tiny_t5_path, capsys):
    if kind == "empty file":
        corpus = tmp_path / "c.jsonl"
        corpus.write_text("")
        says = "holds no records"
    else:
        corpus = tmp_path / "notes"
        corpus.mkdir()
        says = "holds no files"
        if kind == "folder of skipped files":
            (corpus / "a.pdf").write_bytes(b"%PDF")
            (corpus / "b.md").write_text("   \n")
            says = "no file read, 2 skipped (a.pdf: does not match *.txt, *.md; b.md: empty"
    folder = tmp_path / "db"
    assert main(ingest_argv(corpus, f"qdrant:{folder}", tiny_t5_path)) == 2
    line = one_line(capsys, "ingest")
    assert says in line and "nothing was ingested" in line, line
    assert not folder.exists()


def test_embed_of_a_folder_says_it_is_a_folder(tmp_path, tiny_t5_path, capsys):
    assert main(["embed", str(tmp_path), "-o", str(tmp_path / "x.npy"), "--model", str(tiny_t5_path)]) == 2
    assert f"input file {tmp_path} is a folder; expected a file" in one_line(capsys, "embed")


def _feed(fifo: Path, text: str) -> threading.Thread:
    def write() -> None:
        with open(fifo, "w", encoding="utf-8") as handle:  # blocks until the CLI opens it
            handle.write(text)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_is_read_as_input_and_as_queries(tmp_path, tiny_t5_path, capsys):
    """``embed <(cmd)`` and ``search --queries <(cmd)``: the pipe is read (it was refused as "does not
    exist", and the writer was left blocked)."""
    fifo = tmp_path / "in"
    os.mkfifo(fifo)
    writer = _feed(fifo, "first text\nsecond text\n")
    out = tmp_path / "x.npy"
    assert main(["embed", str(fifo), "-o", str(out), "--model", str(tiny_t5_path), "--quiet"]) == 0
    writer.join(timeout=30)
    assert not writer.is_alive() and np.load(out).shape[0] == 2

    store = f"qdrant:{tmp_path / 'db'}"
    assert main(ingest_argv(write_corpus(tmp_path / "c.jsonl", 4), store, tiny_t5_path)) == 0
    writer = _feed(fifo, "cell\nriver\n")
    capsys.readouterr()
    argv = ["search", "--queries", str(fifo), "--store", store, "--collection", "notes", "--quiet"]
    assert main(argv) == 0
    writer.join(timeout=30)
    assert not writer.is_alive()
    assert [json.loads(line)["query"] for line in capsys.readouterr().out.splitlines()] == ["cell", "river"]


def test_embed_names_its_own_flags_not_python_arguments(tmp_path, tiny_t5_path, capsys):
    texts = tmp_path / "t.txt"
    texts.write_text("one text\n")
    argv = ["embed", str(texts), "-o", str(tmp_path / "x.npy"), "--model", str(tiny_t5_path)]
    assert main([*argv, "--prompt-name", "query", "--instruction", "Represent: "]) == 2
    line = one_line(capsys, "embed")
    assert "pass --prompt-name or --instruction, not both" in line and "prompt_name" not in line
    assert main([*argv, "--precision", "int8"]) == 2
    line = one_line(capsys, "embed")
    assert "give at least two texts (got 1)" in line and "calibration_embeddings" not in line


def test_a_keyword_query_of_stop_words_says_it_has_no_terms(tmp_path, tiny_t5_path, capsys):
    pytest.importorskip("qdrant_edge")
    store = f"qdrant:{tmp_path / 'db'}"
    assert main(ingest_argv(write_corpus(tmp_path / "c.jsonl", 4), store, tiny_t5_path, "--hybrid")) == 0
    capsys.readouterr()
    argv = ["search", "the of and", "--store", store, "--collection", "notes", "--mode", "keyword", "--quiet"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "instructor search: warning: no keyword terms in the query 'the of and'" in captured.err


def test_a_collection_ingested_with_dim_names_the_dimension_to_search_with(tmp_path, tiny_t5_path, tiny_t5_encoder):
    """The Python API's refusal (the CLI searches at the collection's dimension by itself): it said
    "search with the model it was made with" when the model is the same and the fix is its dimension."""
    from instructor_core.ingest import store_ops
    from instructor_core.ingest.stores import CollectionMismatchError, open_store

    cut = tiny_t5_encoder.dimension // 2
    store = f"qdrant:{tmp_path / 'db'}"
    assert main(ingest_argv(write_corpus(tmp_path / "c.jsonl", 4), store, tiny_t5_path, "--dim", str(cut))) == 0
    opened = open_store(store, create=False)
    try:
        with pytest.raises(CollectionMismatchError, match=f"truncate_dim={cut} \\(CLI: --dim {cut}\\)"):
            store_ops.search(opened, "notes", ["cell"], tiny_t5_encoder, k=2)
    finally:
        opened.close()


def test_ingest_reads_a_folder_of_shards_and_a_parquet_file(tmp_path, tiny_t5_path, capsys):
    """The local engine read neither (0 records from a folder of shards; "unknown corpus type
    '.parquet'"), though the Ray engine did: one front door now (``readers.open_corpus``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from instructor_core.ingest.stores import open_store

    shards = tmp_path / "shards"
    shards.mkdir()
    write_corpus(shards / "part-0.jsonl", 3)
    write_corpus(shards / "part-1.jsonl", 2, start=3)
    pq.write_table(pa.table({"id": ["p0", "p1"], "text": ["a parquet row", "another row"]}), tmp_path / "c.parquet")
    store = f"qdrant:{tmp_path / 'db'}"
    assert main(ingest_argv(shards, store, tiny_t5_path)) == 0
    argv = ingest_argv(tmp_path / "c.parquet", store, tiny_t5_path)
    assert main([*argv[:4], "--collection", "pq", *argv[6:]]) == 0
    opened = open_store(store, create=False)
    try:
        assert (opened.info("notes").count, opened.info("pq").count) == (5, 2)
    finally:
        opened.close()


def test_skipped_file_names_are_printed_escaped(tmp_path, tiny_t5_path, capsys):
    """A file name is someone else's text: an ESC sequence in one (retitle, clear the screen) is shown
    escaped in the list of skipped files, as search output is."""
    corpus = tmp_path / "notes"
    corpus.mkdir()
    (corpus / "a.md").write_text("some text")
    (corpus / "\x1b]0;OWNED\x07\x1b[2J.pdf").write_bytes(b"%PDF")
    assert main([a for a in ingest_argv(corpus, f"qdrant:{tmp_path / 'db'}", tiny_t5_path) if a != "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b]0;OWNED\\x07\\x1b[2J.pdf: does not match" in err
