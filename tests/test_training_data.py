"""Training rows: the MEDI JSONL layout, readers, and errors that name the line."""

from __future__ import annotations

import json

import pytest

from instructor_core.training import (
    DataError,
    TrainingRow,
    read_rows,
    rows_from_beir,
    rows_from_classification,
    rows_from_sts,
    write_rows,
)

GOOD = {"query": ["q: ", "what binds p53?"], "pos": ["d: ", "MDM2 binds p53."], "neg": [["d: ", "Cats."]], "task": "t"}


def _write(tmp_path, lines):
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_round_trip_and_neg_forms(tmp_path):
    rows = [
        TrainingRow(("q: ", "a"), ("d: ", "b"), (("d: ", "c"), ("d: ", "e")), "x"),
        TrainingRow(("", "f"), ("", "g")),
    ]
    path = tmp_path / "out.jsonl"
    assert write_rows(rows, path) == 2
    assert read_rows(path) == rows
    single = dict(GOOD, neg=["d: ", "Dogs."])  # a single pair
    missing = {k: v for k, v in GOOD.items() if k not in ("neg", "task")}
    loaded = read_rows(_write(tmp_path, [json.dumps(single), "", json.dumps(missing)]))
    assert loaded[0].neg == (("d: ", "Dogs."),)
    assert loaded[1].neg == () and loaded[1].task == "default"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({k: v for k, v in GOOD.items() if k != "pos"}, "missing field 'pos'"),
        (dict(GOOD, query=["q: ", 3]), "query\\[1\\].*must be a string"),
        (dict(GOOD, query=[None, "x"]), "query\\[0\\].*instruction"),
        (dict(GOOD, pos=["d: ", "   "]), "pos\\[1\\].*empty"),
        (dict(GOOD, neg=[["d: ", ""]]), "neg\\[0\\]\\[1\\].*empty"),
        (dict(GOOD, neg=[["d: ", "MDM2 binds p53."]]), "neg\\[0\\] has the same text as pos"),
        (dict(GOOD, query="just text"), "query must be an \\[instruction, text\\] pair"),
        (dict(GOOD, task=""), "task"),
    ],
)
def test_bad_rows_name_the_line(tmp_path, bad, message):
    path = _write(tmp_path, [json.dumps(GOOD), json.dumps(GOOD), json.dumps(bad)])
    with pytest.raises(DataError, match=rf"rows.jsonl:3: {message}"):
        read_rows(path)


def test_invalid_json_names_the_line(tmp_path):
    path = _write(tmp_path, [json.dumps(GOOD), "{not json"])
    with pytest.raises(DataError, match="rows.jsonl:2: not valid JSON"):
        read_rows(path)


def test_classification_rows_pair_same_label_and_negative_of_another():
    examples = [(f"a{i}", "A") for i in range(5)] + [(f"b{i}", "B") for i in range(4)] + [("c0", "C")]
    rows = rows_from_classification(examples, instruction="Represent the text: ", task="intent", seed=1)
    label = dict(examples)
    assert len(rows) == 9  # "C" has one text: no positive exists, so it is skipped
    for row in rows:
        assert row.query[0] == row.pos[0] == row.neg[0][0] == "Represent the text: "
        assert row.query[1] != row.pos[1] and label[row.query[1]] == label[row.pos[1]]
        assert label[row.neg[0][1]] != label[row.query[1]]
    assert rows == rows_from_classification(examples, instruction="Represent the text: ", task="intent", seed=1)


def test_readers_on_shared_data(data_dir):
    beir = rows_from_beir(data_dir / "scifact", "train", query_instruction="q: ", document_instruction="d: ")
    assert len(beir) == 919 and {r.task for r in beir} == {"scifact"}  # 919 train pairs
    assert beir[0].query[0] == "q: " and beir[0].pos[0] == "d: "
    sts = rows_from_sts(data_dir / "stsb" / "sts-train.csv", instruction="s: ", min_score=4.0)
    assert 1000 < len(sts) < 5749 and sts[0].task == "sts"
    banking = rows_from_classification(data_dir / "banking77" / "train.csv", instruction="b: ", task="banking77")
    assert len(banking) == 10003
