"""The `instructor make-rows`, `mine-negatives`, `train` and `eval` commands on tiny models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.stats

from instructor_core import InstructorEncoder
from instructor_core.cli import main
from instructor_core.evaluation import load_sts
from instructor_core.training import read_rows, task_batches
from tests import tiny_models

pytestmark = pytest.mark.usefixtures("one_thread")  # torch on one thread: conftest


def _sts_file(tmp_path):
    lines = tiny_models.corpus_lines(40)
    rows = [f"g\tf\t2012\t{i:04d}\t{4.5 if i % 2 else 1.0}\t{lines[2 * i]}\t{lines[2 * i + 1]}" for i in range(20)]
    path = tmp_path / "sts.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_make_rows_mine_train_and_eval(tmp_path, capsys):
    model = tiny_models.build_t5_instructor(tmp_path / "t5", seed=3)
    sts = _sts_file(tmp_path)
    rows_path = tmp_path / "rows.jsonl"
    assert (
        main(
            [
                "make-rows",
                "sts",
                "--input",
                str(sts),
                "--instruction",
                "Represent the sentence: ",
                "--output",
                str(rows_path),
            ]
        )
        == 0
    )
    rows = read_rows(rows_path)
    assert len(rows) == 10 and all(r.query[0] == "Represent the sentence: " for r in rows)  # gold >= 4 only

    mined_path = tmp_path / "mined.jsonl"
    assert (
        main(
            [
                "mine-negatives",
                "--model",
                str(model),
                "--rows",
                str(rows_path),
                "--start",
                "0",
                "--end",
                "5",
                "--num",
                "2",
                "--output",
                str(mined_path),
                "--quiet",
            ]
        )
        == 0
    )
    mined = read_rows(mined_path)
    assert all(len(r.neg) == 2 and r.pos[1] not in {n[1] for n in r.neg} for r in mined)

    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--model",
            str(model),
            "--data",
            str(mined_path),
            "--output",
            str(out),
            "--epochs",
            "2",
            "--train-batch-size",
            "4",
            "--lr",
            "1e-3",
            "--chunk-size",
            "5",
            "--query-instruction",
            "Represent the sentence: ",
            "--document-instruction",
            "Represent the sentence: ",
            "--eval-sts",
            str(sts),
            "--save-epochs",
            "--quiet",
        ]
    )
    assert code == 0
    summary = json.loads((out / "train_summary.json").read_text())
    expected_steps = sum(len(task_batches(mined, 4, seed=0, epoch=e)) for e in range(2))
    assert expected_steps >= 6  # negatives mined from the rows' own positives make packing defer rows
    assert summary["steps"] == expected_steps == len(summary["losses"])
    assert [m["epoch"] for m in summary["epoch_metrics"]] == [1, 2]
    # each epoch's figure is Spearman (scipy's, average ranks for the tied gold scores) of the cosine
    # between that epoch's model's document vectors, with the document instruction
    triples = load_sts(sts)
    gold = [score for _, _, score in triples]
    for metrics in summary["epoch_metrics"]:
        model_at = InstructorEncoder.from_pretrained(metrics["model"], device="cpu")
        first = model_at.encode_documents([a for a, _, _ in triples], "Represent the sentence: ")
        second = model_at.encode_documents([b for _, b, _ in triples], "Represent the sentence: ")
        cosine = np.sum(first * second, axis=1) / np.linalg.norm(first, axis=1) / np.linalg.norm(second, axis=1)
        assert metrics["sts_spearman"] == pytest.approx(scipy.stats.spearmanr(cosine, gold).statistic, abs=1e-6)
    saved = InstructorEncoder.from_pretrained(out / "model", device="cpu")
    assert saved.instructions.query == "Represent the sentence: "
    # --save-epochs: one model folder per epoch; the last is the final model, the first differs
    assert [m["model"] for m in summary["epoch_metrics"]] == [str(out / "epoch-1"), str(out / "epoch-2")]
    texts = [r.pos[1] for r in mined[:6]]
    final = saved.encode_documents(texts)
    last = InstructorEncoder.from_pretrained(out / "epoch-2", device="cpu").encode_documents(texts)
    first = InstructorEncoder.from_pretrained(out / "epoch-1", device="cpu").encode_documents(texts)
    np.testing.assert_allclose(last, final, atol=1e-6)
    assert np.abs(first - final).max() > 1e-4

    capsys.readouterr()
    assert main(["eval", "sts", "--model", str(out / "model"), "--data", str(sts), "--quiet"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["task"] == "sts" and line["spearman"] == pytest.approx(summary["epoch_metrics"][-1]["sts_spearman"])


def test_train_reports_bad_rows_with_their_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": ["", "a"], "pos": ["", "b"]}\n{"query": ["", "a"]}\n', encoding="utf-8")
    code = main(["train", "--model", str(tmp_path), "--data", str(bad), "--output", str(tmp_path / "o")])
    assert code == 2
    assert "bad.jsonl:2: missing field 'pos'" in capsys.readouterr().err
