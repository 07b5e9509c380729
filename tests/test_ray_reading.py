"""The Ray path's reader, check pass and one-line errors, without a Ray instance.

The reader stage (``instructor_ray.reading.shard_rows``) is plain Python over the core readers; the
duplicate policy (``instructor_ray.checking.duplicate_positions``) runs on the driver; the CLI
refuses a bad store URL before Ray starts. None of these start Ray.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("ray")

from instructor_core.cli import main  # noqa: E402
from instructor_core.errors import InputError, InstructorError  # noqa: E402
from instructor_core.ingest.readers import read_jsonl, read_parquet  # noqa: E402
from instructor_core.ingest.records import RecordError  # noqa: E402
from instructor_core.ingest.stores import StoreUnavailableError  # noqa: E402
from instructor_ray.blocks import LINE_COLUMN, METADATA_JSON_COLUMN  # noqa: E402
from instructor_ray.checking import duplicate_positions  # noqa: E402
from instructor_ray.failures import expected_error_in  # noqa: E402
from instructor_ray.reading import ReadOptions, shard_rows  # noqa: E402


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _rows(shard: Path, options: ReadOptions, chunk_rows: int = 1024) -> list[dict]:
    out = []
    for chunk in shard_rows(str(shard), options, chunk_rows):
        names = list(chunk)
        out.extend(dict(zip(names, values, strict=True)) for values in zip(*chunk.values(), strict=True))
    return out


def test_shard_rows_are_the_single_process_readers_records(tmp_path):
    """A BEIR shard (``_id``, ``title``) with a blank line: the id fallback and the title join of
    ``read_jsonl``, metadata with different keys per row as JSON, and each row's line."""
    shard = _write(
        tmp_path / "corpus.jsonl",
        [
            json.dumps({"_id": "d1", "title": "Rivers", "text": "flow to the sea", "year": 2001}),
            "",
            json.dumps({"_id": "d2", "title": "", "text": "hills rise", "tags": ["a", "b"]}),
        ],
    )
    options = ReadOptions(title_field="title")
    rows = _rows(shard, options)
    expected = list(read_jsonl(shard, title_field="title"))
    assert [(r["id"], r["text"], json.loads(r[METADATA_JSON_COLUMN])) for r in rows] == [
        (e["id"], e["text"], e["metadata"]) for e in expected
    ]
    assert [r["text"] for r in rows] == ["Rivers flow to the sea", "hills rise"]
    assert [(r["path"], r[LINE_COLUMN]) for r in rows] == [(str(shard), 1), (str(shard), 3)]
    only = _rows(shard, ReadOptions(metadata_fields=("title",)))
    assert [json.loads(r[METADATA_JSON_COLUMN]) for r in only] == [{"title": "Rivers"}, {"title": ""}]


def test_shard_rows_chunks_keep_their_lines(tmp_path):
    shard = _write(tmp_path / "s.jsonl", [json.dumps({"id": str(i), "text": f"t {i}"}) for i in range(5)])
    chunks = list(shard_rows(str(shard), ReadOptions(), chunk_rows=2))
    assert [c[LINE_COLUMN] for c in chunks] == [[1, 2], [3, 4], [5]]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        # cut mid-string: the line's end is inside the string; the message keeps where (json's msg alone ends in "at")
        (
            '{"id": "d3", "text": "cut sh',
            r"s3\.jsonl:3: not valid JSON \(Invalid control character at line 1 column 29\)$",
        ),
        (json.dumps({"id": "d3"}), r"s3\.jsonl:3: no 'text' field \(fields: \['id'\]\)"),
        (json.dumps({"id": "d3", "text": 7}), r"s3\.jsonl:3: id 'd3': text must be a str, got int"),
        (json.dumps({"id": 2.5, "text": "x"}), r"s3\.jsonl:3: id 2\.5: id must be a non-empty str, got float"),
    ],
)
def test_a_bad_line_is_named_by_shard_line_and_id(tmp_path, line, message):
    good = [json.dumps({"id": f"d{i}", "text": f"text {i}"}) for i in range(2)]
    shard = _write(tmp_path / "s3.jsonl", [*good, line])
    with pytest.raises(RecordError) as err:
        _rows(shard, ReadOptions())
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(str(shard))
    assert pytest.importorskip("re").search(message, text), text


def test_non_utf8_is_named_by_shard_and_line(tmp_path):
    shard = tmp_path / "s1.jsonl"
    shard.write_bytes(b'{"id": "a", "text": "fine"}\n{"id": "b", "text": "caf\xe9"}\n')
    with pytest.raises(RecordError, match=r"s1\.jsonl:2: not UTF-8 \(byte 0xe9"):
        _rows(shard, ReadOptions())


def test_csv_and_parquet_shards_read_as_the_core_reads_them(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    csv_shard = _write(tmp_path / "s.csv", ["_id,title,text", "c1,T,body one", "c2,,body two"])
    rows = _rows(csv_shard, ReadOptions(title_field="title"))
    assert [(r["id"], r["text"], r[LINE_COLUMN]) for r in rows] == [("c1", "T body one", 2), ("c2", "body two", 3)]
    table = pa.table({"_id": ["p1", "p2"], "text": ["alpha", "beta"], "lang": ["en", "de"]})
    pq.write_table(table, tmp_path / "s.parquet")
    assert [r["id"] for r in read_parquet(tmp_path / "s.parquet")] == ["p1", "p2"]
    rows = _rows(tmp_path / "s.parquet", ReadOptions())
    assert [(r["id"], json.loads(r[METADATA_JSON_COLUMN]), r[LINE_COLUMN]) for r in rows] == [
        ("p1", {"lang": "en"}, 1),
        ("p2", {"lang": "de"}, 2),
    ]


def test_duplicates_across_shards_follow_the_policy():
    batches = [
        (["a", "b"], ["/s0.jsonl", "/s0.jsonl"], [1, 2]),
        (["c", "a"], ["/s2.jsonl", "/s2.jsonl"], [1, 4]),
        (["a"], ["/s1.jsonl"], [7]),  # arrives last, sits between the two others in corpus order
    ]
    with pytest.raises(RecordError, match=r"^id 'a' occurs twice: /s0\.jsonl:1 and /s2\.jsonl:4 \(--on-duplicate"):
        duplicate_positions(batches, "error")
    assert duplicate_positions(batches, "first") == {("/s1.jsonl", 7), ("/s2.jsonl", 4)}
    assert duplicate_positions(batches, "last") == {("/s0.jsonl", 1), ("/s1.jsonl", 7)}
    # past max_in_memory the ids move to SQLite: the same answer
    assert duplicate_positions(batches, "first", max_in_memory=1) == {("/s1.jsonl", 7), ("/s2.jsonl", 4)}
    assert duplicate_positions([(["x", "y"], ["/s.jsonl"] * 2, [1, 2])], "error") == set()


def test_the_expected_error_is_found_through_rays_wrappers():
    from ray.exceptions import RayTaskError

    cause = StoreUnavailableError("cannot reach chroma at http://127.0.0.1:1: connection refused")
    wrapped = RayTaskError("Write", "Traceback ...\nmany lines", cause).as_instanceof_cause()
    assert isinstance(wrapped, StoreUnavailableError)  # Ray's dual class: its text is the remote traceback
    outer = RuntimeError("execution failed")
    outer.__cause__ = wrapped
    found = expected_error_in(outer)
    assert type(found) is StoreUnavailableError and str(found) == str(cause)
    remote = RuntimeError(
        "ray::MapBatches(check)() (pid=1, ip=127.0.0.2)\n  File x\n"
        "instructor_core.errors.InputError: \x1b[31mthe dataset has no id column 'id'\x1b[0m"
    )
    assert expected_error_in(remote) is None  # not a Ray wrapper: a bug
    wrapped_text = RayTaskError("MapBatches", str(remote), ValueError("x")).as_instanceof_cause()
    found = expected_error_in(wrapped_text)
    assert isinstance(found, InputError) and str(found) == "the dataset has no id column 'id'"
    assert expected_error_in(RayTaskError("f", "tb", KeyError("k")).as_instanceof_cause()) is None
    assert isinstance(StoreUnavailableError("x"), InstructorError)


@pytest.fixture
def no_ray(monkeypatch):
    """Ray must not start: ``_start_ray`` fails the test if the CLI gets that far."""
    from instructor_ray import cli as ray_cli

    def refuse(*_args, **_kwargs):
        raise AssertionError("Ray was started")

    monkeypatch.setattr(ray_cli, "_start_ray", refuse)
    monkeypatch.setattr(ray_cli, "load_options", refuse)


def _ingest(tmp_path: Path, store: str, *extra: str) -> list[str]:
    shard = _write(tmp_path / "s.jsonl", [json.dumps({"id": "a", "text": "x"})])
    return ["ingest", str(shard), "--engine", "ray", "--store", store, "--collection", "c", "--model",
            str(tmp_path / "no-model"), *extra]  # fmt: skip


def test_a_url_of_no_store_is_refused_before_ray_starts(tmp_path, no_ray, capsys):
    assert main(_ingest(tmp_path, "http://127.0.0.1:8411")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "unknown store 'http'" in err
    assert "embedded store" not in err


def test_an_unreachable_server_is_one_line_before_ray_starts(tmp_path, no_ray, capsys):
    pytest.importorskip("chromadb")
    import socket

    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        code = main(_ingest(tmp_path, f"chroma+http://127.0.0.1:{port}"))
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("instructor ingest: error:") and str(port) in err


def test_rays_advice_appended_to_an_error_is_left_out():
    error = RecordError("/s3.jsonl:6: id 'x': text must be a str, got NoneType")
    error.args = (str(error) + "\nFailed to apply UDF transform after 1/1 attempts.\nTo change...",)
    outer = RuntimeError("execution failed")
    outer.__cause__ = error
    found = expected_error_in(outer)
    assert found is error and str(found) == "/s3.jsonl:6: id 'x': text must be a str, got NoneType"


def test_rays_own_tracebacks_stay_off_the_console():
    import io
    import logging

    from instructor_ray.failures import hide_ray_tracebacks

    logger = logging.getLogger("ray.data.test_hidden")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        restore = hide_ray_tracebacks()
        logger.warning("a warning stays")
        logger.error("task failed:\nTraceback (most recent call last):\n  ...")
        logger.error("Exception occurred in Ray Data or Ray Core internal code. ... the full stack trace below: URL")
        try:
            raise ValueError("x")
        except ValueError:
            logger.exception("an exception was raised from a task")
        restore()
        logger.warning("after: all again\nline two")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == "a warning stays\nafter: all again\nline two\n"


def test_a_corpus_ray_cannot_read_is_refused_before_ray_starts(tmp_path, no_ray, capsys):
    store = f"chroma:{tmp_path / 'db'}"
    args = _ingest(tmp_path, store)
    args[1] = str(tmp_path / "missing.jsonl")
    assert main(args) == 2
    assert "corpus not found" in capsys.readouterr().err
    (tmp_path / "many").mkdir()
    for k in range(2):
        _write(tmp_path / "many" / f"s{k}.jsonl", [json.dumps({"text": "x"})])
    args = _ingest(tmp_path, store, "--id-field", "")
    args[1] = str(tmp_path / "many")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs one shard; 2 given" in err, err
    assert not (tmp_path / "db").exists()  # refused before the store was opened


@pytest.mark.parametrize("form", ["folder of shards", "glob", "parquet file", "text folder", "unknown kind"])
def test_both_engines_read_the_same_records_from_each_corpus_form(form, tmp_path):
    """``--engine local`` (``readers.open_corpus``) and ``--engine ray`` (``corpus_shards`` then
    ``shard_rows`` on each shard, as the read tasks do) mean the same records by one path, or refuse
    it in the same words (was: a folder of shards gave 0 records locally and a Parquet file was refused)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from instructor_core.ingest.readers import corpus_shards, open_corpus

    root = tmp_path / "corpus"
    root.mkdir()
    if form in ("folder of shards", "glob"):
        _write(root / "part-0.jsonl", [json.dumps({"id": "a", "text": "one", "k": 1})])
        _write(root / "part-1.jsonl", [json.dumps({"id": "b", "text": "two", "k": 2})])
        corpus = str(root) if form == "folder of shards" else str(root / "part-*.jsonl")
    elif form == "parquet file":
        pq.write_table(pa.table({"id": ["a", "b"], "text": ["one", "two"], "k": [1, 2]}), root / "c.parquet")
        corpus = str(root / "c.parquet")
    elif form == "text folder":
        (root / "a.md").write_text("one")
        (root / "b.txt").write_text("two")
        corpus = str(root)
    else:
        (root / "c.pdf").write_text("x")
        corpus = str(root / "c.pdf")
    options = ReadOptions()
    if form == "unknown kind":
        with pytest.raises(InputError) as local:
            list(open_corpus(corpus, options))
        with pytest.raises(InputError) as ray_side:
            corpus_shards(corpus)
        assert str(local.value) == str(ray_side.value) and "unknown corpus type '.pdf'" in str(local.value)
        return
    local_records = [(r["id"], r["text"], r["metadata"]) for r in open_corpus(corpus, options)]
    ray_records = [
        (row["id"], row["text"], json.loads(row[METADATA_JSON_COLUMN]))
        for shard in corpus_shards(corpus)
        for row in _rows(Path(shard), options)
    ]
    assert local_records == ray_records and len(local_records) == 2
