"""instructor_core.ingest.records: reading corpora, validating batches, batching lazily."""

from __future__ import annotations

import json
import uuid

import pytest

from instructor_core.ingest.readers import read_corpus, read_csv, read_jsonl, read_text_folder, records_from_texts
from instructor_core.ingest.records import (
    NAMESPACE,
    Record,
    RecordError,
    RecordRules,
    batched,
    point_id,
    validate_batch,
)


def test_point_id_is_uuid5_of_document_id():
    assert point_id("doc-1") == str(uuid.uuid5(NAMESPACE, "doc-1"))
    assert point_id("doc-1") == point_id("doc-1") != point_id("doc-2")
    with pytest.raises(TypeError):
        point_id(1)  # type: ignore[arg-type]


def test_batched_is_lazy_and_exact():
    pulled = []

    def source():
        for i in range(10):
            pulled.append(i)
            yield i

    chunks = batched(source(), 4)
    assert next(chunks) == [0, 1, 2, 3]
    assert pulled == [0, 1, 2, 3]  # nothing read past the first batch
    assert list(chunks) == [[4, 5, 6, 7], [8, 9]]
    with pytest.raises(ValueError, match="positive int"):
        list(batched([1], 0))


def test_validate_batch_returns_records():
    out = validate_batch([{"id": "a", "text": "x", "metadata": {"k": 1, "n": None}}, Record("b", "y")])
    assert out == [Record("a", "x", {"k": 1}), Record("b", "y", {})]


@pytest.mark.parametrize(
    ("batch", "pattern"),
    [
        ([{"id": "a", "text": "x"}, {"text": "y"}], r'record 11: has no "id"'),
        ([{"id": "a", "text": "x"}, {"id": "b"}], r"record 11, id 'b': has no \"text\""),
        ([{"id": "a", "text": 3}], r"record 10, id 'a': text must be a str, got int"),
        ([{"id": 5, "text": "x"}], r"record 10, id 5: id must be a non-empty str"),
        (
            [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}],
            r"record 11, id 'a': duplicate id .*record 10",
        ),
        (["plain string"], r"record 10: must be a mapping"),
        ([{"id": "a", "text": "x", "metadata": [1]}], r"record 10, id 'a': metadata must be a mapping"),
    ],
)
def test_validate_batch_names_the_bad_record(batch, pattern):
    with pytest.raises(RecordError, match=pattern) as info:
        validate_batch(batch, start=10)
    assert info.value.index is not None and info.value.index >= 10


def test_validate_batch_metadata_modes():
    nested = [{"id": "a", "text": "x", "metadata": {"tags": ["a", "b"]}}]
    assert validate_batch(nested, rules=RecordRules(metadata_values="json"))[0].metadata == {"tags": ["a", "b"]}
    with pytest.raises(RecordError, match=r"metadata\['tags'\] must be a str, int, float or bool"):
        validate_batch(nested, rules=RecordRules(metadata_values="scalar"))
    with pytest.raises(RecordError, match="reserved"):
        bad = [{"id": "a", "text": "x", "metadata": {"text": "t"}}]
        validate_batch(bad, rules=RecordRules(reserved_keys=("id", "text")))


def test_read_jsonl_fields_and_metadata(tmp_path):
    path = tmp_path / "c.jsonl"
    rows = [
        {"_id": "d1", "title": "T1", "text": "Body one.\n"},
        {"_id": 7, "title": "T2", "text": "  spaced  "},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    got = list(read_jsonl(path, id_field="_id"))
    assert got == [
        {"id": "d1", "text": "Body one.\n", "metadata": {"title": "T1"}},
        {"id": "7", "text": "  spaced  ", "metadata": {"title": "T2"}},  # text kept exactly
    ]
    assert [r["id"] for r in read_jsonl(path, id_field=None)] == ["0", "1"]
    with pytest.raises(RecordError, match=r"c.jsonl:1: no 'body' field"):
        list(read_jsonl(path, id_field="_id", text_field="body"))
    nested = tmp_path / "n.jsonl"
    line = json.dumps({"id": "x", "text": "t", "metadata": {"a": 1}})
    nested.write_text(line + "\n{bad\n", encoding="utf-8")
    reader = read_jsonl(nested)
    assert next(reader) == {"id": "x", "text": "t", "metadata": {"a": 1}}
    with pytest.raises(RecordError, match=r"n.jsonl:2: not valid JSON"):
        next(reader)


def test_read_csv_and_tsv(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('text,category\n"hello, world",greet\nbye,leave\n', encoding="utf-8")
    got = list(read_csv(path, id_field=None))
    assert got == [
        {"id": "0", "text": "hello, world", "metadata": {"category": "greet"}},
        {"id": "1", "text": "bye", "metadata": {"category": "leave"}},
    ]
    with pytest.raises(RecordError, match="no column 'id'"):
        list(read_csv(path))
    tsv = tmp_path / "c.tsv"
    tsv.write_text("id\ttext\nq1\tone\n", encoding="utf-8")
    assert list(read_corpus(tsv)) == [{"id": "q1", "text": "one", "metadata": {}}]


def test_read_text_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_text("B text\n", encoding="utf-8")
    (tmp_path / "sub" / "a.txt").write_text("A text", encoding="utf-8")
    (tmp_path / "skip.rst").write_text("not read", encoding="utf-8")
    got = list(read_text_folder(tmp_path))
    assert got == [
        {"id": "b.txt", "text": "B text\n", "metadata": {"path": "b.txt"}},
        {"id": "sub/a.txt", "text": "A text", "metadata": {"path": "sub/a.txt"}},
    ]
    assert list(read_corpus(tmp_path)) == got


def test_read_corpus_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_corpus(tmp_path / "missing.jsonl")
    (tmp_path / "x.pdf").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown corpus type '.pdf'"):
        read_corpus(tmp_path / "x.pdf")
    (tmp_path / "x.parquet").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="not a readable Parquet file"):
        list(read_corpus(tmp_path / "x.parquet"))


def test_records_from_texts():
    assert list(records_from_texts(["a", "b"])) == [
        {"id": "0", "text": "a", "metadata": None},
        {"id": "1", "text": "b", "metadata": None},
    ]
    got = list(records_from_texts(iter(["a"]), ids=["x"], metadatas=[{"k": 1}]))
    assert got == [{"id": "x", "text": "a", "metadata": {"k": 1}}]
    with pytest.raises(RecordError, match="shorter"):
        list(records_from_texts(["a", "b"], ids=["x"]))
    with pytest.raises(RecordError, match="longer"):
        list(records_from_texts(["a"], ids=["x", "y"]))
