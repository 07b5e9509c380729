"""Reliability round 2 (issue 24): each probe that broke main, reproduced, and held.

The outcome of every attack is one of: refused in one line naming the problem (exit 2), nothing
run, nothing lost outside the store, the store still readable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from instructor_core.cli import main
from instructor_core.locking import LOCK_FILE, store_lock
from instructor_core.safe_paths import UnsafePathError
from tests.tiny_models import corpus_lines

Q = "Represent the question for retrieval: "
D = "Represent the document for retrieval: "


def write_corpus(path: Path, n: int, *, start: int = 0) -> Path:
    rows = [{"id": f"d{i}", "text": t, "topic": "even" if i % 2 == 0 else "odd"}
            for i, t in enumerate(corpus_lines(n), start=start)]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def ingest_argv(corpus: Path, store: str, model: Path | str, *extra: str, collection: str = "notes") -> list[str]:
    return ["ingest", str(corpus), "--store", store, "--collection", collection, "--model", str(model),
            "--document-instruction", D, "--query-instruction", Q, "--quiet", *extra]  # fmt: skip


def one_error_line(capsys, command: str) -> str:
    """The single line the CLI printed on stderr for an expected failure (exit 2 checked by the caller)."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("instructor ")]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"instructor {command}: error: ")
    return lines[0]


# ------------------------------------------------------------------------ 1, 2. lock files
def test_a_lock_file_linked_to_a_victim_is_refused_and_the_victim_kept(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    folder = tmp_path / "store"
    folder.mkdir()
    (folder / LOCK_FILE).symlink_to(victim)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        with store_lock(folder, timeout=0):
            pytest.fail("locked through a link")
    assert victim.read_text() == "precious"


def test_a_dangling_lock_link_creates_nothing(tmp_path):
    folder = tmp_path / "store"
    folder.mkdir()
    (folder / LOCK_FILE).symlink_to(tmp_path / "created.txt")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        with store_lock(folder, timeout=0):
            pass
    assert not (tmp_path / "created.txt").exists()


def test_a_lock_file_hard_linked_to_a_victim_is_refused(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    folder = tmp_path / "store"
    folder.mkdir()
    os.link(victim, folder / LOCK_FILE)
    with pytest.raises(UnsafePathError, match="hard links"):
        with store_lock(folder, timeout=0):
            pass
    assert victim.read_text() == "precious"


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_lock_file_that_is_not_a_regular_file_is_one_line(kind, tmp_path):
    folder = tmp_path / "store"
    folder.mkdir()
    if kind == "fifo":
        os.mkfifo(folder / LOCK_FILE)
    else:
        (folder / LOCK_FILE).mkdir()
    with pytest.raises(UnsafePathError, match="not a regular file") as info:
        with store_lock(folder, timeout=0):
            pass
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kind", ["qdrant", "chroma"])
def test_read_only_commands_on_a_store_with_a_planted_lock_link(kind, tmp_path, tiny_t5_path, capsys):
    folder = tmp_path / "store"
    store = f"{kind}:{folder}"
    assert main(ingest_argv(write_corpus(tmp_path / "c.jsonl", 4), store, tiny_t5_path)) == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (folder / LOCK_FILE).unlink(missing_ok=True)
    (folder / LOCK_FILE).symlink_to(Path("..") / "victim.txt")
    capsys.readouterr()
    assert main(["collections", "info", "notes", "--store", store]) == 2
    assert "symbolic link" in one_error_line(capsys, "collections")
    assert main(["collections", "list", "--store", store]) == 2
    assert "symbolic link" in one_error_line(capsys, "collections")
    assert victim.read_text() == "precious"


def test_the_onnx_cache_lock_refuses_a_link(tmp_path):
    pytest.importorskip("onnxruntime")
    import torch

    from instructor_core.model.backends.onnxrt import OnnxTransformer, export_key

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    folder = tmp_path / "cache" / "onnx" / export_key(model_dir)
    folder.mkdir(parents=True)
    (folder / LOCK_FILE).symlink_to(victim)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        OnnxTransformer.prepare(torch.nn.Identity(), model_dir, "onnx", cache_dir=tmp_path / "cache")
    assert victim.read_text() == "precious"


# ------------------------------------------------------------------------ 3. links inside a Qdrant Edge store
def test_a_collections_folder_linked_out_is_refused_and_nothing_outside_deleted(tmp_path, tiny_t5_path, capsys):
    other = tmp_path / "other"
    (other / "proj" / "shard").mkdir(parents=True)
    (other / "proj" / "shard" / "keep.txt").write_text("precious")
    folder = tmp_path / "store"
    folder.mkdir()
    (folder / "collections").symlink_to(other)
    corpus = write_corpus(tmp_path / "c.jsonl", 4)
    assert main(ingest_argv(corpus, f"qdrant:{folder}", tiny_t5_path, collection="proj")) == 2
    assert "symbolic link" in one_error_line(capsys, "ingest")
    assert (other / "proj" / "shard" / "keep.txt").read_text() == "precious"
    assert sorted(p.name for p in (other / "proj").iterdir()) == ["shard"]


def test_a_collection_folder_linked_out_is_not_deleted_through(tmp_path, tiny_t5_path, capsys):
    folder = tmp_path / "store"
    store = f"qdrant:{folder}"
    corpus = write_corpus(tmp_path / "c.jsonl", 4)
    assert main(ingest_argv(corpus, store, tiny_t5_path)) == 0
    outside = tmp_path / "outside"
    (folder / "collections" / "notes").rename(outside)
    (folder / "collections" / "docs").symlink_to(outside)
    before = sorted(p.relative_to(outside) for p in outside.rglob("*"))
    capsys.readouterr()
    assert main(["collections", "delete", "docs", "--yes", "--store", store]) == 2
    assert "symbolic link" in one_error_line(capsys, "collections")
    assert sorted(p.relative_to(outside) for p in outside.rglob("*")) == before
    assert main(["collections", "info", "docs", "--store", store]) == 2  # refused, not read through the link
    assert "symbolic link" in one_error_line(capsys, "collections")


def test_confined_allows_plain_paths_and_refuses_escapes(tmp_path):
    from instructor_core.safe_paths import confined, safe_rmtree

    (tmp_path / "root" / "a").mkdir(parents=True)
    assert confined(tmp_path / "root", tmp_path / "root" / "a" / "new") == (tmp_path / "root" / "a" / "new").resolve()
    with pytest.raises(UnsafePathError, match="outside"):
        confined(tmp_path / "root", tmp_path / "root" / ".." / "x")
    (tmp_path / "root" / "link").symlink_to(tmp_path / "root" / "a")  # a link, even one that stays inside
    with pytest.raises(UnsafePathError, match="symbolic link"):
        safe_rmtree(tmp_path / "root", tmp_path / "root" / "link" / "x")
    assert (tmp_path / "root" / "a").is_dir()


# ------------------------------------------------------------------------ 7. valid records before a read error
def test_batched_yields_the_partial_batch_before_the_error():
    from instructor_core.ingest.records import batched

    def items():
        yield from range(5)
        raise ValueError("bad line")

    got = []
    with pytest.raises(ValueError, match="bad line"):
        for chunk in batched(items(), 3):
            got.append(chunk)
    assert got == [[0, 1, 2], [3, 4]]


def _edge_count(folder: Path) -> int:
    from instructor_core.ingest.stores import open_store

    opened = open_store(f"qdrant:{folder}", create=False)
    try:
        return opened.info("notes").count
    finally:
        opened.close()


@pytest.mark.parametrize(("bad_at", "total", "written"), [(49, 100, 49), (99, 100, 99)])
def test_every_valid_record_before_a_read_error_is_written_and_counted(bad_at, total, written, tmp_path,
                                                                        tiny_t5_path, capsys):  # fmt: skip
    corpus = write_corpus(tmp_path / "c.jsonl", total)
    lines = corpus.read_bytes().splitlines(keepends=True)
    lines[bad_at] = b'{"id": "bad", "text": "caf\xe9"}\n' if bad_at < total - 1 else b'{"id": "broken", "te'
    corpus.write_bytes(b"".join(lines))
    folder = tmp_path / "store"
    assert main(ingest_argv(corpus, f"qdrant:{folder}", tiny_t5_path, "--write-batch-size", "64")) == 2
    line = one_error_line(capsys, "ingest")
    assert f"record {bad_at}" in line and f"{written} records before it were written" in line
    assert _edge_count(folder) == written


# ------------------------------------------------------------------------ 14. Ctrl-C during an ingest
def test_ctrl_c_during_an_ingest_is_one_line_exit_130(tmp_path, tiny_t5_path, capsys, monkeypatch):
    from instructor_core.cli.commands import store as store_command

    rows = [json.loads(line) for line in write_corpus(tmp_path / "c.jsonl", 20).read_text().splitlines()]

    def records(args):
        def stream():
            yield from rows[:10]
            raise KeyboardInterrupt

        return stream()

    monkeypatch.setattr(store_command, "_records", records)
    folder = tmp_path / "store"
    argv = ingest_argv(tmp_path / "c.jsonl", f"qdrant:{folder}", tiny_t5_path, "--write-batch-size", "4")
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "instructor ingest: interrupted: 8 records written; re-run the same command to complete"
    ]
    assert _edge_count(folder) == 8
    monkeypatch.undo()
    assert main(argv) == 0  # the re-run completes it
    assert _edge_count(folder) == 20


# ------------------------------------------------------------------------ 8. dotted metadata keys on Qdrant
def test_a_dotted_metadata_key_is_refused_for_qdrant_naming_key_and_record(tmp_path, tiny_t5_path, capsys):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "ok", "text": "x"}\n{"id": "dot", "text": "x", "a.b": "v1"}\n', encoding="utf-8")
    folder = tmp_path / "store"
    assert main(ingest_argv(corpus, f"qdrant:{folder}", tiny_t5_path)) == 2
    line = one_error_line(capsys, "ingest")
    assert "record 1" in line and "'dot'" in line and "'a.b'" in line and "'a_b'" in line


def test_the_qdrant_server_rules_refuse_dotted_keys_too():
    from instructor_core.ingest.records import RecordError, validate_batch
    from instructor_qdrant.points import QDRANT_RULES

    with pytest.raises(RecordError, match="'a.b'"):
        validate_batch([{"id": "dot", "text": "x", "metadata": {"a.b": 1}}], rules=QDRANT_RULES)


# ------------------------------------------------------------------------ 9. terminal escapes in stored text
def test_search_escapes_control_and_bidi_characters_and_json_stays_exact(tmp_path, tiny_t5_path, capsys):
    evil = "\x1b[31mred\u202eRTL\x9b2J\u2066x"
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "e\x1b]0;title\x07", "text": evil}) + "\n", encoding="utf-8")
    store = f"qdrant:{tmp_path / 'store'}"
    assert main(ingest_argv(corpus, store, tiny_t5_path)) == 0
    capsys.readouterr()
    assert main(["search", "red", "--store", store, "--collection", "notes", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "\\x1b[31mred\\u202eRTL\\x9b2J\\u2066x" in out and "e\\x1b]0;title\\x07" in out
    assert not any(c in out for c in "\x1b\u202e\x9b\u2066\x07")
    assert main(["search", "red", "--store", store, "--collection", "notes", "--json", "--quiet"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["text"] == evil and row["id"] == "e\x1b]0;title\x07"


# ------------------------------------------------------------------------ 10. malformed layout files, deep nesting
@pytest.mark.parametrize("content", ["[1, 2]", "null", '"text"', "[" * 100_000 + "]" * 100_000, "{not json"])
def test_a_malformed_layout_file_is_one_line(content, tmp_path, tiny_t5_path, capsys):
    folder = tmp_path / "store"
    store = f"qdrant:{folder}"
    assert main(ingest_argv(write_corpus(tmp_path / "c.jsonl", 3), store, tiny_t5_path)) == 0
    (folder / "collections" / "notes" / "instructor.json").write_text(content, encoding="utf-8")
    capsys.readouterr()
    assert main(["collections", "info", "notes", "--store", store]) == 2
    line = one_error_line(capsys, "collections")
    assert "instructor.json" in line and len(line) < 400


def test_a_record_nested_too_deeply_is_a_record_error_naming_its_line(tmp_path):
    from instructor_core.ingest.readers import read_jsonl
    from instructor_core.ingest.records import RecordError

    corpus = tmp_path / "c.jsonl"
    deep = '{"a": ' * 5000 + "1" + "}" * 5000
    corpus.write_text('{"id": "ok", "text": "x"}\n{"id": "deep", "text": "x", "m": ' + deep + "}\n", encoding="utf-8")
    reader = read_jsonl(corpus)
    assert next(reader)["id"] == "ok"
    with pytest.raises(RecordError, match=r"c\.jsonl:2: .*nested too deeply"):
        next(reader)


def test_deep_metadata_through_the_cli_is_one_line(tmp_path, tiny_t5_path, capsys):
    corpus = tmp_path / "c.jsonl"
    deep = '{"a": ' * 900 + "1" + "}" * 900  # parses, but deeper than a store should be asked to keep
    corpus.write_text('{"id": "deep", "text": "x", "m": ' + deep + "}\n", encoding="utf-8")
    assert main(ingest_argv(corpus, f"qdrant:{tmp_path / 'store'}", tiny_t5_path)) == 2
    assert "nested" in one_error_line(capsys, "ingest")


# ------------------------------------------------------------------------ 15. collection names
@pytest.mark.parametrize("kind", ["qdrant", "chroma"])
def test_a_bad_collection_name_is_refused_before_a_store_folder_is_made(kind, tmp_path, tiny_t5_path, capsys):
    corpus = write_corpus(tmp_path / "c.jsonl", 3)
    folder = tmp_path / "new-store"
    name = "x" * 10_000 + "/.."
    assert main(ingest_argv(corpus, f"{kind}:{folder}", tiny_t5_path, collection=name)) == 2
    line = one_error_line(capsys, "ingest")
    assert "collection name" in line and len(line) < 300 and "10003 characters" in line
    assert not folder.exists()


# ------------------------------------------------------------------------ decided: empty texts, Unicode-twin ids
@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_an_empty_or_whitespace_text_is_refused_naming_the_id(text, tmp_path, tiny_t5_path, capsys):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "ok", "text": "x"}) + "\n" + json.dumps({"id": "blank", "text": text}) + "\n")
    assert main(ingest_argv(corpus, f"qdrant:{tmp_path / 'store'}", tiny_t5_path)) == 2
    line = one_error_line(capsys, "ingest")
    assert "record 1" in line and "'blank'" in line and "empty or whitespace only" in line


def test_an_empty_file_in_a_folder_corpus_is_listed_as_skipped(tmp_path):
    from instructor_core.ingest.readers import TextFolderReader

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("text")
    (tmp_path / "docs" / "b.txt").write_text("  \n")
    reader = TextFolderReader(tmp_path / "docs")
    assert [r["id"] for r in reader] == ["a.txt"]
    assert [(s.path, s.reason) for s in reader.skipped] == [("b.txt", "empty (whitespace only)")]


def test_unicode_normalisation_twin_ids_are_two_ids(tmp_path, tiny_t5_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        json.dumps({"id": "caf\u00e9", "text": "one"}) + "\n" + json.dumps({"id": "cafe\u0301", "text": "two"}) + "\n"
    )
    folder = tmp_path / "store"
    assert main(ingest_argv(corpus, f"qdrant:{folder}", tiny_t5_path)) == 0
    assert _edge_count(folder) == 2


# ------------------------------------------------------------------------ 11-13. damaged stores, full disks
def _damaged_edge_store(tmp_path: Path, tiny_t5_path: Path) -> tuple[str, Path]:
    folder = tmp_path / "store"
    store = f"qdrant:{folder}"
    assert main(ingest_argv(write_corpus(tmp_path / "c.jsonl", 20), store, tiny_t5_path)) == 0
    (segment,) = (folder / "collections" / "notes" / "shard" / "segments").iterdir()
    return store, segment


def test_a_truncated_edge_segment_is_one_line_naming_the_damage(tmp_path, tiny_t5_path, capsys):
    store, segment = _damaged_edge_store(tmp_path, tiny_t5_path)
    os.truncate(segment / "vector_storage" / "vectors" / "chunk_0.mmap", 1000)
    capsys.readouterr()
    assert main(["search", "cell", "--store", store, "--collection", "notes", "--quiet"]) == 2
    line = one_error_line(capsys, "search")
    assert "Service runtime error" in line and "damaged" in line and "disk is or was full" in line


def test_a_garbage_edge_payload_page_is_one_line(tmp_path, tiny_t5_path, capsys):
    store, segment = _damaged_edge_store(tmp_path, tiny_t5_path)
    with open(segment / "payload_storage" / "page_0.dat", "r+b") as handle:
        handle.write(bytes(range(256)) * 16)
    capsys.readouterr()
    assert main(["search", "cell", "--store", store, "--collection", "notes", "--quiet"]) == 2
    assert "damaged" in one_error_line(capsys, "search")


def test_an_edge_write_on_a_full_disk_says_the_disk_is_full(tmp_path, tiny_t5_path, capsys, monkeypatch):
    from instructor_qdrant.edge import EdgeSink

    def full(self, records, vectors):  # the engine's own text for ENOSPC, as a bare Exception
        raise Exception("Service runtime error: No space left on device (os error 28)")

    monkeypatch.setattr(EdgeSink, "write", full)
    assert main(ingest_argv(write_corpus(tmp_path / "c.jsonl", 5), f"qdrant:{tmp_path / 'store'}", tiny_t5_path)) == 2
    assert "the disk is full" in one_error_line(capsys, "ingest")


@pytest.mark.parametrize(
    ("error", "says"),
    [("InternalError:Error in compaction: Error purging logs", "damaged, or the disk is or was full"),
     ("OSError", "the disk is full")],
)  # fmt: skip
def test_chroma_on_a_full_disk_says_so(error, says, tmp_path, tiny_t5_path, capsys, monkeypatch):
    import errno

    from chromadb.errors import InternalError

    from instructor_chroma.ingest import ChromaSink

    def full(self, records, vectors):
        if error == "OSError":
            raise OSError(errno.ENOSPC, "No space left on device")
        raise InternalError(error.partition(":")[2])

    monkeypatch.setattr(ChromaSink, "write", full)
    assert main(ingest_argv(write_corpus(tmp_path / "c.jsonl", 5), f"chroma:{tmp_path / 'store'}", tiny_t5_path)) == 2
    assert says in one_error_line(capsys, "ingest")


def test_collections_list_with_an_unreadable_collection_exits_2(tmp_path, tiny_t5_path, capsys):
    folder = tmp_path / "store"
    store = f"qdrant:{folder}"
    corpus = write_corpus(tmp_path / "c.jsonl", 3)
    assert main(ingest_argv(corpus, store, tiny_t5_path)) == 0
    assert main(ingest_argv(corpus, store, tiny_t5_path, collection="other")) == 0
    (folder / "collections" / "other" / "instructor.json").write_text("[1, 2]")
    capsys.readouterr()
    assert main(["collections", "list", "--store", store]) == 2
    captured = capsys.readouterr()
    assert "? documents" not in captured.out
    assert "notes  3 documents" in captured.out and "other  unreadable" in captured.out
    line = [x for x in captured.err.splitlines() if x.startswith("instructor ")]
    assert len(line) == 1 and "1 of 2 collection(s) could not be read; 'other'" in line[0]


def test_collections_list_names_a_collection_another_tool_made_and_exits_0(tmp_path, tiny_t5_path, capsys):
    import chromadb
    from chromadb.config import Settings

    folder = tmp_path / "store"
    store = f"chroma:{folder}"
    assert main(ingest_argv(write_corpus(tmp_path / "c.jsonl", 3), store, tiny_t5_path)) == 0
    client = chromadb.PersistentClient(path=str(folder), settings=Settings(anonymized_telemetry=False))
    client.create_collection("plain", embedding_function=None)
    del client
    capsys.readouterr()
    assert main(["collections", "list", "--store", store]) == 0
    out = capsys.readouterr().out
    assert "notes  3 documents" in out and "plain  other tool  (" in out and "?" not in out


def test_search_queries_output_is_never_its_input_and_is_written_whole(tmp_path, tiny_t5_path, capsys):
    store = f"qdrant:{tmp_path / 'store'}"
    assert main(ingest_argv(write_corpus(tmp_path / "c.jsonl", 3), store, tiny_t5_path)) == 0
    queries = tmp_path / "q.txt"
    queries.write_text("cell\nriver\n")
    capsys.readouterr()
    argv = ["search", "--queries", str(queries), "--store", store, "--collection", "notes", "--quiet"]
    assert main([*argv, "-o", str(queries)]) == 2
    assert "is the --queries file itself" in one_error_line(capsys, "search")
    assert queries.read_text() == "cell\nriver\n"
    assert main([*argv, "-o", str(tmp_path / "run.jsonl")]) == 0
    assert len((tmp_path / "run.jsonl").read_text().splitlines()) == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary file left


def test_a_lock_file_that_cannot_be_created_on_a_full_disk_is_one_line(tmp_path, monkeypatch):
    import errno

    from instructor_core.errors import InstructorError

    real_open = os.open

    def full(path, flags, *args, **kwargs):
        if str(path).endswith(LOCK_FILE):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", full)
    with pytest.raises(InstructorError, match="the disk is full"):
        with store_lock(tmp_path / "store", timeout=0):
            pass


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 200 MiB tmpfs to fill: a real full disk. Needs root (mount); skipped otherwise, saying why."""
    import shutil
    import subprocess

    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a real full disk needs a tmpfs mount, which needs root")
    mount = tmp_path / "fs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=60)


def _fill(folder: Path) -> None:
    with open(folder / "filler", "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * (1 << 20))
        except OSError:
            pass


@pytest.mark.parametrize("command", [["collections", "info", "notes"], ["collections", "list"]])
def test_a_read_only_command_on_an_edge_store_on_a_full_disk_is_one_line(command, small_tmpfs, tiny_t5_path):
    """Qdrant Edge fills its sparse mapped files when it opens a shard: on a full disk that was SIGBUS
    (exit 135, no message) even for ``collections info``. Now one line, exit 2, before the shard opens."""
    import subprocess
    import sys

    from tests.cli_helpers import cli_env, error_lines

    store = f"qdrant:{small_tmpfs / 'db'}"
    assert main(ingest_argv(write_corpus(small_tmpfs / "c.jsonl", 3), store, tiny_t5_path)) == 0

    def run() -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "instructor_core.cli", *command, "--store", store]
        return subprocess.run(argv, env=cli_env(), capture_output=True, text=True, timeout=120)

    _fill(small_tmpfs)
    done = run()
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    lines = error_lines(done.stderr)
    assert len(lines) == 1 and "the disk is full" in lines[0] and "SIGBUS" in lines[0], done.stderr[-2000:]
    (small_tmpfs / "filler").unlink()
    again = run()
    assert again.returncode == 0, again.stderr[-2000:]


def test_an_edge_shard_is_not_opened_without_room_for_its_mapped_files(tmp_path, tiny_t5_path, capsys, monkeypatch):
    """The same check without a real full disk: the free space reported is less than the holes."""
    import shutil
    from collections import namedtuple

    import instructor_qdrant.edge as edge

    store = f"qdrant:{tmp_path / 'db'}"
    assert main(ingest_argv(write_corpus(tmp_path / "c.jsonl", 3), store, tiny_t5_path)) == 0
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(1 << 30, 1 << 30, 1 << 20))
    loaded = []
    monkeypatch.setattr(edge._edge().EdgeShard, "load", lambda path: loaded.append(path))
    capsys.readouterr()
    assert main(["collections", "info", "notes", "--store", store]) == 2
    line = one_error_line(capsys, "collections")
    assert "the disk is full" in line and "1 MiB are free" in line
    assert loaded == []
