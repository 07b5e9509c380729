"""Resume without re-embedding (issue 23): every store keeps a content hash with each point, and a
re-run of an ingest embeds only the records that are missing or changed.

(a) an ingest stopped at about half (an encoder that fails after two batches) then re-run: only
the missing records are embedded, every id once, the report's numbers right; one changed text or
metadata is embedded again, the rest not. (b) the same with the CLI killed by SIGKILL. (d) a
user's metadata key equal to the reserved hash key is refused in one line. A third-party store
without ``stored_hashes`` still ingests, embedding everything.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from instructor_core.ingest import store_ops
from instructor_core.ingest.records import HASH_KEY, Record, RecordError, content_hash
from instructor_core.ingest.stores import open_store
from tests.cli_helpers import cli_env, ingest_argv, write_corpus
from tests.tiny_models import corpus_lines

N = 40
BATCH = 8


class Stopped(RuntimeError):
    """The simulated kill: raised by the encoder partway through an ingest."""


class CountingEncoder:
    """An encoder that counts the texts it embeds and, with ``fail_after``, raises on the call after
    that many ``encode_documents`` calls (an ingest killed partway)."""

    def __init__(self, inner: Any, fail_after: int | None = None) -> None:
        self._inner, self.fail_after = inner, fail_after
        self.calls, self.texts = 0, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def encode_documents(self, texts, *args, **kwargs):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise Stopped("killed")
        self.calls += 1
        self.texts += len(texts)
        return self._inner.encode_documents(texts, *args, **kwargs)


def records(n: int = N) -> list[dict]:
    return [{"id": f"d{i}", "text": t, "metadata": {"n": i}} for i, t in enumerate(corpus_lines(n))]


def run(store: Any, docs: list[dict], encoder: Any, **options: Any):
    return store_ops.ingest(store, "notes", docs, encoder, model="tiny", batch_size=BATCH, show_progress=False,
                            **options)  # fmt: skip


def _open(kind: str, tmp_path: Path) -> Any:
    if kind == "qdrant-local-mode":
        from instructor_qdrant.store import open_local_mode

        return open_local_mode(str(tmp_path / "local"))
    return open_store(f"{kind.split('-')[0]}:{tmp_path / kind}")


STORES = ["qdrant", "chroma", "qdrant-local-mode", "qdrant-hybrid"]


@pytest.mark.parametrize("kind", STORES)
def test_a_rerun_after_a_stop_embeds_only_the_missing_records(kind, tmp_path, tiny_t5_encoder):
    docs, hybrid = records(), {"hybrid": True} if kind == "qdrant-hybrid" else {}
    store = _open(kind, tmp_path)
    try:
        with pytest.raises(Stopped):
            run(store, docs, CountingEncoder(tiny_t5_encoder, fail_after=N // BATCH // 2), **hybrid)
        stored_after_stop = store.info("notes").count
        assert 0 < stored_after_stop < N

        again = CountingEncoder(tiny_t5_encoder)
        report = run(store, docs, again)
        assert again.texts == N - stored_after_stop  # only the missing part is embedded
        assert (report.seen, report.unchanged, report.embedded, report.written) == (
            N, stored_after_stop, N - stored_after_stop, N - stored_after_stop,
        )  # fmt: skip
        assert f"{stored_after_stop} unchanged (skipped), {N - stored_after_stop} embedded" in report.summary()
        assert store.info("notes").count == N  # every id exactly once
        sink = store.sink("notes")
        expected = {d["id"]: content_hash(Record(d["id"], d["text"], d["metadata"])) for d in docs}
        assert sink.stored_hashes(list(expected)) == expected

        changed = [dict(d) for d in docs]
        changed[3] = {**docs[3], "text": docs[3]["text"] + " (edited)"}
        changed[7] = {**docs[7], "metadata": {"n": 700}}
        third = CountingEncoder(tiny_t5_encoder)
        report = run(store, changed, third)
        assert (third.texts, report.unchanged, report.embedded, report.written) == (2, N - 2, 2, 2)
        assert store.info("notes").count == N

        every = CountingEncoder(tiny_t5_encoder)
        report = run(store, changed, every, skip_unchanged=False)
        assert (every.texts, report.unchanged, report.embedded, report.written) == (N, 0, N, N)

        hits = store_ops.search(store, "notes", [changed[7]["text"]], tiny_t5_encoder, k=N, mode="dense")[0]
        assert len(hits) == N and all(HASH_KEY not in hit.metadata for hit in hits)
        assert {hit.id: hit.metadata for hit in hits}["d7"] == {"n": 700}
    finally:
        store.close()


def test_a_repeated_id_kept_last_is_never_skipped(tmp_path, tiny_t5_encoder):
    """Under on_duplicate="last" a later copy of an id replaces an earlier one of the same ingest:
    its stored hash may be the earlier copy's on its way, so it is written, not skipped."""
    store = _open("qdrant", tmp_path)
    try:
        docs = records(4)
        run(store, docs, tiny_t5_encoder)
        again = CountingEncoder(tiny_t5_encoder)
        edited = {**docs[0], "text": "another text"}
        report = run(store, [*docs, edited, docs[0]], again, on_duplicate="last")
        assert report.unchanged == 3 and report.written >= 1
        found = store_ops.search(store, "notes", [docs[0]["text"]], tiny_t5_encoder, k=4, mode="dense")[0]
        assert {h.id: h.text for h in found}["d0"] == docs[0]["text"]
    finally:
        store.close()


def test_the_async_engine_skips_unchanged_records(tiny_t5_encoder):
    from qdrant_client import AsyncQdrantClient

    from instructor_qdrant.aio import aingest

    async def both() -> tuple[Any, Any, int]:
        client = AsyncQdrantClient(":memory:")
        try:
            first = await aingest(client, "notes", records(), tiny_t5_encoder, batch_size=BATCH)
            counting = CountingEncoder(tiny_t5_encoder)
            second = await aingest(client, "notes", records(), counting, batch_size=BATCH)
            return first, second, counting.texts
        finally:
            await client.close()

    first, second, texts = asyncio.run(both())
    assert (first.embedded, first.unchanged) == (N, 0)
    assert (second.embedded, second.unchanged, second.written, texts) == (0, N, 0, 0)


@pytest.mark.parametrize("kind", ["qdrant", "chroma", "qdrant-local-mode"])
def test_the_reserved_hash_key_is_refused_in_one_line(kind, tmp_path, tiny_t5_encoder):
    store = _open(kind, tmp_path)
    try:
        with pytest.raises(RecordError) as caught:
            run(store, [{"id": "a", "text": "x y", "metadata": {HASH_KEY: "mine"}}], tiny_t5_encoder)
    finally:
        store.close()
    message = str(caught.value)
    assert "\n" not in message and HASH_KEY in message and "reserved" in message and "'a'" in message


def test_the_cli_refuses_the_reserved_hash_key_in_one_line(tmp_path, tiny_t5_path, capsys):
    from instructor_core.cli import main

    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "a", "text": "x y", "metadata": {HASH_KEY: 1}}) + "\n", encoding="utf-8")
    assert main(ingest_argv(corpus, f"qdrant:{tmp_path / 'db'}", tiny_t5_path)) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("instructor ")]
    assert len(lines) == 1 and HASH_KEY in lines[0]


def test_a_store_without_stored_hashes_still_ingests_embedding_everything(tmp_path, tiny_t5_encoder):
    from tests.plugin_store import JsonDirStore, JsonSink

    assert not hasattr(JsonSink, "stored_hashes")
    (tmp_path / "json").mkdir()
    store = JsonDirStore(str(tmp_path / "json"))
    try:
        for _ in range(2):
            counting = CountingEncoder(tiny_t5_encoder)
            report = run(store, records(), counting)
            assert (counting.texts, report.embedded, report.unchanged, report.written) == (N, N, 0, N)
        assert store.info("notes").count == N
    finally:
        store.close()


# --------------------------------------------------------------------------------- (b) a real kill
_REPORT = re.compile(r"wrote (\d+) of (\d+) records in \d+ batch(?:es)?: (\d+) unchanged \(skipped\), (\d+) embedded")


# The CLI in a child process that sends itself SIGKILL right after the store write that crosses
# half the corpus: a real kill -9 mid-ingest at a point that does not depend on how fast the machine
# is (reading the progress bar and killing from outside raced a fast ingest on a loaded machine).
_KILL_AT_HALF = """
import os, signal, sys
from instructor_core.ingest import store_ops
half, written = int(sys.argv[1]), [0]
original = store_ops.EngineSink.write
def write(self, records, vectors):
    original(self, records, vectors)
    written[0] += len(records)
    if written[0] >= half:
        os.kill(os.getpid(), signal.SIGKILL)
store_ops.EngineSink.write = write
from instructor_core.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.system
@pytest.mark.parametrize("scheme", ["qdrant", "chroma"])
def test_the_cli_killed_at_half_then_rerun_embeds_only_the_rest(scheme, tmp_path, tiny_t5_path):
    """``instructor ingest`` killed with SIGKILL once half the corpus is written, then run again: it
    reports the stored part unchanged and embeds only the rest; every id once."""
    total = 320
    corpus = write_corpus(tmp_path / "c.jsonl", total)
    store = f"{scheme}:{tmp_path / 'db'}"
    argv = ingest_argv(corpus, store, tiny_t5_path, "--write-batch-size", "16")
    killed = subprocess.run(
        [sys.executable, "-c", _KILL_AT_HALF, str(total // 2), *argv],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    command = [sys.executable, "-m", "instructor_core.cli", *[a for a in argv if a != "--quiet"]]

    opened = open_store(store)
    try:
        stored = opened.info("notes").count
    finally:
        opened.close()
    assert 0 < stored < total

    done = subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    found = _REPORT.search(done.stderr)
    assert found, done.stderr[-2000:]
    print(found.group(0))  # the figure docs/reliability.md quotes
    written, seen_all, unchanged, embedded = map(int, found.groups())
    assert (seen_all, unchanged, embedded, written) == (total, stored, total - stored, total - stored)
    opened = open_store(store)
    try:
        assert opened.info("notes").count == total
    finally:
        opened.close()


def test_the_cli_reembed_option_embeds_everything(tmp_path, tiny_t5_path, capsys):
    from instructor_core.cli import main

    corpus = write_corpus(tmp_path / "c.jsonl", 12)
    store = f"qdrant:{tmp_path / 'db'}"
    argv = [a for a in ingest_argv(corpus, store, tiny_t5_path) if a != "--quiet"]
    assert main(argv) == 0
    assert main(argv) == 0
    assert "12 unchanged (skipped), 0 embedded" in capsys.readouterr().err
    assert main([*argv, "--reembed"]) == 0
    err = capsys.readouterr().err
    assert "wrote 12 of 12 records" in err and "unchanged" not in err


def test_content_hash_covers_text_and_metadata_only():
    a = Record("x", "some text", {"k": 1, "j": "é"})
    assert content_hash(a) == content_hash(Record("y", "some text", {"j": "é", "k": 1}))  # id, key order: no
    assert content_hash(a) != content_hash(Record("x", "some text.", {"k": 1, "j": "é"}))
    assert content_hash(a) != content_hash(Record("x", "some text", {"k": 2, "j": "é"}))
    assert re.fullmatch(r"[0-9a-f]{32}", content_hash(a))


def test_the_library_helpers_skip_unchanged_records_unless_told(tmp_path, tiny_t5_encoder):
    """``instructor_qdrant.ingest`` and ``instructor_chroma.ingest`` run the same engine: a re-run
    skips what is stored unchanged; ``skip_unchanged=False`` embeds everything."""
    import chromadb
    from chromadb.config import Settings
    from qdrant_client import QdrantClient

    import instructor_chroma
    import instructor_qdrant

    client = QdrantClient(":memory:")
    runs = [
        instructor_qdrant.ingest(client, "docs", records(), tiny_t5_encoder, batch_size=BATCH, show_progress=False,
                                 skip_unchanged=skip)
        for skip in (True, True, False)
    ]  # fmt: skip
    assert [(r.unchanged, r.embedded) for r in runs] == [(0, N), (N, 0), (0, N)]

    chroma = chromadb.PersistentClient(str(tmp_path / "c"), settings=Settings(anonymized_telemetry=False))
    ef = instructor_chroma.InstructorEmbeddingFunction("tiny", encoder=tiny_t5_encoder)
    collection = instructor_chroma.open_collection(chroma, "docs", ef)
    runs = [
        instructor_chroma.ingest(collection, records(), embedding_function=ef, batch_size=BATCH, show_progress=False,
                                 skip_unchanged=skip)
        for skip in (True, True, False)
    ]  # fmt: skip
    assert [(r.unchanged, r.embedded) for r in runs] == [(0, N), (N, 0), (0, N)]


# ------------------------------------------------------------- what the vectors depend on, on resume
def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("instructor ")]


@pytest.mark.parametrize("kind", ["qdrant", "chroma", "qdrant-local-mode"])
def test_a_resume_with_another_max_length_is_refused_naming_both(kind, tmp_path, tiny_t5_path, tiny_t5_encoder):
    """Vectors of each text's first 8 tokens are not those of the whole text: a re-run with another
    max_length is refused (never reported as unchanged), and one with the same embeds nothing."""
    from instructor_core import InstructorEncoder
    from instructor_core.ingest.stores import CollectionMismatchError

    short = InstructorEncoder.from_pretrained(tiny_t5_path, device="cpu", max_length=8)
    assert tiny_t5_encoder.max_length != 8
    store = _open(kind, tmp_path)
    try:
        run(store, records(12), short)
        assert store.info("notes").layout.loading["max_length"] == 8
        counting = CountingEncoder(tiny_t5_encoder)
        with pytest.raises(CollectionMismatchError) as caught:
            run(store, records(12), counting)
        assert counting.texts == 0
        again = CountingEncoder(short)
        assert run(store, records(12), again).unchanged == 12 and again.texts == 0
    finally:
        store.close()
    message = str(caught.value)
    assert "\n" not in message
    assert f"max_length=8, the encoder has {tiny_t5_encoder.max_length}" in message
    assert "--max-length 8" in message and "new collection" in message


def test_the_cli_refuses_a_resume_without_the_max_length_it_was_made_with(tmp_path, tiny_t5_path, capsys):
    """``ingest --max-length 12`` then the same without it: one line naming both values and the fix,
    exit 2 (it said "10 unchanged (skipped), 0 embedded"); ``collections info`` shows the max length."""
    from instructor_core.cli import main

    corpus = write_corpus(tmp_path / "c.jsonl", 10)
    store = f"qdrant:{tmp_path / 'db'}"
    argv = [a for a in ingest_argv(corpus, store, tiny_t5_path) if a != "--quiet"]
    assert main([*argv, "--max-length", "12"]) == 0
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = _error_lines(err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("instructor ingest: error: ")
    assert re.search(r"max_length=12, the encoder has \d+", lines[0]), lines[0]
    assert "--max-length 12" in lines[0] and "unchanged (skipped)" not in err
    assert main([*argv, "--max-length", "12"]) == 0
    assert "10 unchanged (skipped), 0 embedded" in capsys.readouterr().err

    assert main(["collections", "info", "notes", "--store", store]) == 0
    shown = capsys.readouterr().out
    assert re.search(r"^max length: +12$", shown, re.M), shown
    assert main(["collections", "info", "notes", "--store", store, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["max_length"] == 12


def test_a_collection_made_before_max_length_was_recorded_still_opens(tmp_path, tiny_t5_path, tiny_t5_encoder, capsys):
    """A layout without ``max_length`` (made before it was recorded) is accepted as before, and
    ``collections info`` says it is not recorded."""
    from instructor_core.cli import main

    store = _open("qdrant", tmp_path)
    try:
        run(store, records(6), tiny_t5_encoder)
    finally:
        store.close()
    layout_file = tmp_path / "qdrant" / "collections" / "notes" / "instructor.json"
    stored = json.loads(layout_file.read_text(encoding="utf-8"))
    assert stored["instructor"].pop("max_length") == tiny_t5_encoder.max_length
    layout_file.write_text(json.dumps(stored), encoding="utf-8")

    from instructor_core import InstructorEncoder

    store = _open("qdrant", tmp_path)
    try:
        short = CountingEncoder(InstructorEncoder.from_pretrained(tiny_t5_path, device="cpu", max_length=8))
        assert run(store, records(6), short).unchanged == 6
    finally:
        store.close()
    assert main(["collections", "info", "notes", "--store", f"qdrant:{tmp_path / 'qdrant'}"]) == 0
    assert re.search(r"^max length: +\(not recorded\)$", capsys.readouterr().out, re.M)


def _other_weights(tiny_t5_path: Path, tmp_path: Path) -> Path:
    """A copy of the tiny model whose configuration differs (so another fingerprint), same dimension."""
    import shutil

    copy = Path(shutil.copytree(tiny_t5_path, tmp_path / "retrained"))
    config = json.loads((copy / "config.json").read_text(encoding="utf-8"))
    config["layer_norm_epsilon"] = 1e-5
    (copy / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return copy


def test_allow_model_change_says_that_unchanged_records_keep_the_old_vectors(tmp_path, tiny_t5_path, capsys):
    """``--allow-model-change`` with new weights skips the records stored unchanged: a warning line
    says so and names ``--reembed``; with ``--reembed`` everything is embedded and nothing is said."""
    from instructor_core.cli import main

    corpus = write_corpus(tmp_path / "c.jsonl", 6)
    store = f"qdrant:{tmp_path / 'db'}"
    assert main([a for a in ingest_argv(corpus, store, tiny_t5_path) if a != "--quiet"]) == 0
    capsys.readouterr()
    argv = [a for a in ingest_argv(corpus, store, _other_weights(tiny_t5_path, tmp_path)) if a != "--quiet"]
    assert main([*argv, "--allow-model-change"]) == 0
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if line.startswith("instructor ingest: warning: ")]
    assert len(warned) == 1, err
    assert "6 unchanged (skipped)" in err and "keep the old model's vectors" in warned[0]
    assert "--reembed" in warned[0]
    assert main([*argv, "--allow-model-change", "--reembed"]) == 0
    err = capsys.readouterr().err
    assert "warning" not in err and "wrote 6 of 6 records" in err
