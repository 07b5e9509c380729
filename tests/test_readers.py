"""instructor_core.ingest.readers: readers refuse what they cannot read faithfully, and drop nothing valid.

The reader functions are imported from instructor_core.ingest.records (their old home, which re-exports
them), so these tests also hold the re-export.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instructor_core.ingest.readers import read_corpus, read_csv, read_jsonl, read_text_folder
from instructor_core.ingest.records import RecordError


def _pull(reader):
    """Records yielded before the reader raised, and the error."""
    got = []
    with pytest.raises(RecordError) as info:
        for record in reader:
            got.append(record)
    return got, info.value


# ---------------------------------------------------------------------------------------------- CSV
def test_csv_unterminated_quote_is_refused_naming_file_line_and_record(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('id,text\na,first\nb,"second\nc,third\nd,fourth\n', encoding="utf-8")
    got, error = _pull(read_csv(path))
    assert [r["id"] for r in got] == ["a"]  # today: a, then b with "second\nc,third\nd,fourth\n" as its text
    assert error.index == 1
    assert "c.csv:3" in str(error) and "never closed" in str(error)


@pytest.mark.parametrize(
    ("row", "count"),
    [("b\n", 1), ("b,two,extra\n", 3)],
    ids=["short", "extra"],
)
def test_csv_short_or_extra_row_is_refused(tmp_path, row, count):
    path = tmp_path / "c.csv"
    path.write_text("id,text\na,one\n" + row + "c,three\n", encoding="utf-8")
    got, error = _pull(read_csv(path))
    assert [r["id"] for r in got] == ["a"]
    assert error.index == 1
    assert f"c.csv:3: the row has {count} field(s), the header 2" in str(error)


def test_csv_quote_closed_late_swallowing_rows_is_refused(tmp_path):
    # the quote opened on line 3 closes on line 5, swallowing line 4: the field count gives it away
    path = tmp_path / "c.csv"
    path.write_text('id,text\na,one\nb,"two\nc,three\nd,"four"\n', encoding="utf-8")
    got, error = _pull(read_csv(path))
    assert [r["id"] for r in got] == ["a"]
    assert "c.csv:3" in str(error)


def test_csv_multiline_quoted_field_and_bom_header(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes('\ufeffid,text\r\na,"line one\r\nline two"\r\n\r\nb,"say ""hi"""\r\n'.encode())
    assert list(read_csv(path)) == [
        {"id": "a", "text": "line one\r\nline two", "metadata": {}},
        {"id": "b", "text": 'say "hi"', "metadata": {}},
    ]


# ---------------------------------------------------------------------------------------------- bytes
def _bad_line(tmp_path, name: str, lines: list[bytes]):
    path = tmp_path / name
    path.write_bytes(b"".join(lines))
    return path


def test_jsonl_non_utf8_keeps_every_valid_record_before_it(tmp_path):
    good = [json.dumps({"id": f"d{i}", "text": "x" * 100}).encode() + b"\n" for i in range(50)]
    path = _bad_line(tmp_path, "c.jsonl", [*good, b'{"id": "bad", "text": "caf\xe9"}\n', good[0]])
    got, error = _pull(read_jsonl(path))
    # today: the decode error of the buffered chunk drops the valid records read with it
    assert [r["id"] for r in got] == [f"d{i}" for i in range(50)]
    assert error.index == 50
    assert "c.jsonl:51: not UTF-8 (byte 0xe9" in str(error)


def test_csv_non_utf8_names_file_line_and_record(tmp_path):
    rows = [f"r{i},text {i}\n".encode() for i in range(30)]
    path = _bad_line(tmp_path, "c.csv", [b"id,text\n", *rows, b"bad,\xff\xfe\n"])
    got, error = _pull(read_csv(path))
    assert len(got) == 30
    assert error.index == 30 and "c.csv:32: not UTF-8 (byte 0xff" in str(error)


def test_text_folder_non_utf8_names_the_file_and_line(tmp_path):
    (tmp_path / "a.txt").write_text("fine", encoding="utf-8")
    (tmp_path / "b.txt").write_bytes(b"line one\nline \x80two\n")
    got, error = _pull(read_text_folder(tmp_path))
    assert [r["id"] for r in got] == ["a.txt"]
    assert error.index == 1 and "b.txt: not UTF-8 at line 2 (byte 0x80)" in str(error)


def test_jsonl_bom_is_dropped(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"id": "a", "text": "t"}).encode() + b"\n")
    assert list(read_jsonl(path)) == [{"id": "a", "text": "t", "metadata": {}}]


# ---------------------------------------------------------------------------------------------- text checks
def test_check_text_refuses_lone_surrogates_and_keeps_nul():
    from instructor_core.ingest.readers import check_text

    surrogate = json.loads('"ab\\ud800c"')  # what a JSON escape in a corpus line produces
    problem = check_text(surrogate)
    assert problem is not None and "U+D800 at character 2" in problem
    assert check_text("low \udfff") is not None
    assert check_text("a\x00b") is None  # NUL: both embedded stores keep it exactly
    assert check_text("emoji \U0001f600 and é") is None  # a proper pair is not a lone surrogate


# ---------------------------------------------------------------------------------------------- BEIR
def test_beir_corpus_as_it_is(tmp_path):
    path = tmp_path / "corpus.jsonl"
    rows = [
        {"_id": "d1", "title": "Aspirin", "text": "reduces fever.\n"},
        {"_id": 2, "title": "", "text": "no title here"},
        {"_id": "d3", "text": "title missing"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    got = list(read_corpus(path, title_field="title"))
    assert [(r["id"], r["text"]) for r in got] == [
        ("d1", "Aspirin reduces fever.\n"),  # as instructor_core.evaluation.retrieval joins them
        ("2", "no title here"),
        ("d3", "title missing"),
    ]
    assert got[0]["metadata"] == {"title": "Aspirin"}
    # without title_field the text is the text field alone; "_id" still serves as the id
    assert [r["text"] for r in read_jsonl(path)][0] == "reduces fever.\n"
    csv_path = tmp_path / "corpus.csv"
    csv_path.write_text("_id,title,text\nd1,T,body\n", encoding="utf-8")
    assert list(read_csv(csv_path, title_field="title")) == [{"id": "d1", "text": "T body", "metadata": {"title": "T"}}]


def test_title_must_be_a_string(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text(json.dumps({"_id": "d1", "title": 5, "text": "t"}) + "\n", encoding="utf-8")
    with pytest.raises(RecordError, match=r"corpus.jsonl:1: 'title' must be a str, got int"):
        list(read_jsonl(path, title_field="title"))


# ---------------------------------------------------------------------------------------------- folders
def test_text_folder_glob_and_skipped_files(tmp_path):
    from instructor_core.ingest.readers import SkippedFile, TextFolderReader

    (tmp_path / "docs" / "deep").mkdir(parents=True)
    (tmp_path / "a.txt").write_text("A", encoding="utf-8")
    (tmp_path / "docs" / "b.md").write_text("B", encoding="utf-8")
    (tmp_path / "docs" / "deep" / "c.md").write_text("C", encoding="utf-8")
    (tmp_path / "docs" / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / "notes.rst").write_text("R", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9")

    reader = TextFolderReader(tmp_path, on_unreadable="skip")
    assert [r["id"] for r in reader] == ["a.txt", "docs/b.md", "docs/deep/c.md"]
    assert reader.skipped == [
        SkippedFile("docs/image.png", "does not match *.txt, *.md"),
        SkippedFile("latin1.txt", "not UTF-8 at line 1 (byte 0xe9)"),
        SkippedFile("notes.rst", "does not match *.txt, *.md"),
    ]
    only = TextFolderReader(tmp_path, patterns=["docs/**/*.md"])
    assert [r["id"] for r in only] == ["docs/b.md", "docs/deep/c.md"]
    assert [r["id"] for r in TextFolderReader(tmp_path, patterns="*.rst")] == ["notes.rst"]
    folder = read_corpus(tmp_path, patterns="*.md")
    assert [r["id"] for r in folder] == ["docs/b.md", "docs/deep/c.md"]
    assert {s.path for s in folder.skipped} == {"a.txt", "docs/image.png", "latin1.txt", "notes.rst"}


def _digests(folder) -> dict[str, str]:
    import hashlib

    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_text_folder_does_not_follow_a_link_out_of_the_folder(tmp_path):
    """A corpus folder holding ``notes.md -> /elsewhere/secret_key``: the secret is not read (the link
    is listed as skipped, saying why); a link to a file inside the folder is read as that file."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret_key").write_text("BEGIN PRIVATE KEY hunter2")
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "a.md").write_text("alpha")
    (corpus / "notes.md").symlink_to(outside / "secret_key")
    (corpus / "sub" / "up.md").symlink_to(Path("..") / ".." / "elsewhere" / "secret_key")
    (corpus / "same.md").symlink_to("a.md")
    before = _digests(outside)
    reader = read_corpus(corpus)
    got = {r["id"]: r["text"] for r in reader}
    assert got == {"a.md": "alpha", "same.md": "alpha"}
    assert not any("hunter2" in text for text in got.values())
    reasons = {s.path: s.reason for s in reader.skipped}
    assert set(reasons) == {"notes.md", "sub/up.md"}
    assert all("link to a file outside" in r for r in reasons.values()), reasons
    assert _digests(outside) == before


def _jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_every_corpus_form_means_the_same_records(tmp_path):
    """A folder of shards (was: 0 records, "does not match *.txt, *.md"), a Parquet file (was: "unknown
    corpus type '.parquet'"), a glob: the records the Ray engine reads from the same path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    shards = tmp_path / "shards"
    shards.mkdir()
    _jsonl(shards / "part-0.jsonl", [{"id": "a", "text": "one"}, {"id": "b", "text": "two"}])
    _jsonl(shards / "part-1.jsonl", [{"id": "c", "text": "three"}])
    want = ["a", "b", "c"]
    assert [r["id"] for r in read_corpus(shards)] == want
    assert [r["id"] for r in read_corpus(str(shards / "part-*.jsonl"))] == want
    table = pa.table({"id": ["a", "b", "c"], "text": ["one", "two", "three"], "topic": ["x", "y", "z"]})
    pq.write_table(table, tmp_path / "c.parquet")
    got = list(read_corpus(tmp_path / "c.parquet"))
    assert [(r["id"], r["text"], r["metadata"]) for r in got] == [("a", "one", {"topic": "x"}),
                                                                  ("b", "two", {"topic": "y"}),
                                                                  ("c", "three", {"topic": "z"})]  # fmt: skip
    with pytest.raises(ValueError, match="mixes file kinds"):
        read_corpus([str(shards / "part-0.jsonl"), str(tmp_path / "c.parquet")])  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="matches no file"):
        read_corpus(str(tmp_path / "none-*.jsonl"))


def test_several_shards_need_an_id_field(tmp_path):
    from instructor_core.ingest.readers import ReadOptions, open_corpus

    _jsonl(tmp_path / "a.jsonl", [{"text": "one"}])
    _jsonl(tmp_path / "b.jsonl", [{"text": "two"}])
    with pytest.raises(ValueError, match="2 shards: give each record an id field"):
        open_corpus(tmp_path, ReadOptions(id_field=None))
