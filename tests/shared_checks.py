"""Helpers that several test modules share: a SciFact subset and the docs-example runner."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def scifact_subset(data_dir: Path, n_claims: int = 20, n_docs: int = 120):
    """The first ``n_claims`` SciFact test claims, their relevant abstracts and evenly spread
    distractors, ``n_docs`` documents in all. Returns ``(data, query_ids, doc_ids)``."""
    from instructor_core.evaluation import load_beir

    data = load_beir(data_dir / "scifact", split="test")
    qids = list(data.qrels)[:n_claims]
    relevant = sorted({doc for qid in qids for doc, score in data.qrels[qid].items() if score > 0})
    others = [doc for doc in data.corpus if doc not in relevant]
    step = len(others) // (n_docs - len(relevant))
    doc_ids = relevant + others[::step][: n_docs - len(relevant)]
    return data, qids, doc_ids


def run_doc_example(doc_name: str, capsys) -> None:
    """Run the first python block of ``docs/<doc_name>`` and check that what it prints is what the
    page shows: a ``# ...`` line right after a ``print(`` line is that print's output."""
    doc = DOCS / doc_name
    code = re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)[0]
    lines = code.splitlines()
    shown = zip(lines, lines[1:], strict=False)
    expected = [line[2:] for prev, line in shown if prev.startswith("print(") and line.startswith("# ")]
    exec(compile(code, str(doc), "exec"), {"__name__": "__doc_example__"})
    assert expected and capsys.readouterr().out.splitlines() == expected
