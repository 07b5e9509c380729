"""Long texts: never cut silently, and split into token windows on request.

A text longer than the model's max length is cut by the model; ingest and embed count those texts in
their summary line (with the first id) and say once that ``--chunk-tokens`` exists. ``ingest
--chunk-tokens N --chunk-overlap M`` stores windows of the model's own tokens under ``ID#k`` with the
parent id and the window in the metadata; ``search --group-by-parent`` keeps each document's best window.
"""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest

from instructor_core.cli import main
from instructor_core.errors import InputError
from instructor_core.ingest.chunking import (
    PARENT_KEY,
    WINDOW_KEY,
    ChunkSettings,
    TruncationTally,
    best_per_parent,
    chunk_records,
    token_windows,
)

WORDS = "alpha beta gamma delta river mountain cloud paper engine signal garden window".split()
ANSWER = "The secret launch code of the expedition is pineapple."


def _filler(seed: int, n: int = 600) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n))


# ------------------------------------------------------------------ windows


@pytest.mark.parametrize(("size", "overlap"), [(5, 0), (5, 2), (8, 7), (1, 0), (3, 1)])
def test_windows_cover_every_token_within_size_and_overlap(size, overlap):
    word_ids = [w for w in range(20) for _ in range(1 + w % 3)]  # words of 1, 2 and 3 tokens
    windows = token_windows(word_ids, size, overlap)
    assert windows[0][0] == 0 and windows[-1][1] == len(word_ids)
    for (s1, e1), (s2, e2) in zip(windows, windows[1:], strict=False):
        assert s1 < s2 <= e1 and e2 > e1  # moves on, no gap
        assert e1 - s2 <= overlap or size == 1
    assert all(0 < e - s <= size for s, e in windows)
    starts = {0} | {i for i in range(1, len(word_ids)) if word_ids[i] != word_ids[i - 1]}
    if size - overlap >= 3:  # each window can move on by the longest word: no word is split
        assert all(s in starts for s, _ in windows) and all(e in starts | {len(word_ids)} for _, e in windows)


def test_a_text_that_fits_is_one_window():
    assert token_windows([0, 1, 2], 3, 1) == [(0, 3)]
    assert token_windows([], 3, 1) == [(0, 0)]


@pytest.mark.parametrize(
    ("tokens", "overlap", "says"),
    [(0, None, "--chunk-tokens 0"), (4, 4, "less than --chunk-tokens 4"), (4, -1, "--chunk-overlap -1")],
)
def test_chunk_settings_refuse_with_the_option_named(tokens, overlap, says):
    with pytest.raises(InputError, match=says):
        ChunkSettings(tokens, 0 if overlap is None else overlap)


def test_records_split_on_the_models_tokens_with_parent_and_window(minilm_encoder):
    tokenizer = minilm_encoder.tokenizer
    long_text = _filler(1, 300) + " " + ANSWER
    records = [
        {"id": "long", "text": long_text, "metadata": {"topic": "x"}},
        {"id": "short", "text": "a short note", "metadata": {}},
    ]
    out = list(chunk_records(records, tokenizer, ChunkSettings(64, 16)))
    assert out[-1] == records[1]  # a text that fits is passed on unchanged
    windows = out[:-1]
    assert [w["id"] for w in windows] == [f"long#{k}" for k in range(len(windows))] and len(windows) > 4
    assert all(w["metadata"] == {"topic": "x", PARENT_KEY: "long", WINDOW_KEY: k} for k, w in enumerate(windows))
    for window in windows:
        assert window["text"] in long_text
        assert len(tokenizer(window["text"], add_special_tokens=False)["input_ids"]) <= 64
    assert windows[0]["text"].startswith(long_text.split()[0]) and windows[-1]["text"].endswith("pineapple.")


def test_windows_must_fit_the_model_with_its_instruction(minilm_encoder):
    ChunkSettings(254).check_fits(minilm_encoder, "")  # 256 less [CLS] and [SEP]
    with pytest.raises(InputError, match="at most --chunk-tokens 254"):
        ChunkSettings(255).check_fits(minilm_encoder, "")
    with pytest.raises(InputError, match="instruction"):
        ChunkSettings(250).check_fits(minilm_encoder, "Represent the scientific document for retrieval: ")


def test_best_per_parent_keeps_rank_order_and_k():
    hits = ["a#1", "b", "a#0", "c#2", "b", "d"]
    assert best_per_parent(hits, 3, lambda h: h.split("#")[0]) == ["a#1", "b", "c#2"]


def test_the_tally_counts_a_text_cut_in_any_view():
    tally = TruncationTally()
    tally.add(["x", "y", "z"], [[False, True, False], [False, False, True]])
    assert (tally.count, tally.first) == (2, "y")
    assert "2 texts longer than the model's max length (256 tokens) were cut, the first 'y'" == tally.describe(256)


def test_watch_truncation_marks_what_the_encode_cut(minilm_encoder):
    texts = ["short", _filler(2), "also short", _filler(3)]
    with minilm_encoder.watch_truncation() as flags:
        watched = minilm_encoder.encode_documents(texts)
    assert flags == [[False, True, False, True]]
    assert np.allclose(watched, minilm_encoder.encode_documents(texts), atol=1e-6)  # the same vectors


# ------------------------------------------------------------------ the command line


@pytest.fixture
def long_notes(tmp_path):
    """Two 600-word notes that differ only in their last sentence, past MiniLM's 256 tokens, and a short one."""
    folder = tmp_path / "notes"
    folder.mkdir()
    body = _filler(7)
    (folder / "answer.txt").write_text(f"{body} {ANSWER}", encoding="utf-8")
    (folder / "other.txt").write_text(f"{body} The picnic is on Sunday by the lake.", encoding="utf-8")
    (folder / "short.txt").write_text("A short note on rivers.", encoding="utf-8")
    return folder


def _stderr_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line and not line.startswith(("Ingesting", "Loading"))]


def test_a_folder_ingest_counts_the_cut_texts_and_says_chunking_exists(long_notes, tmp_path, minilm_path, capsys):
    store = f"chroma:{tmp_path / 'whole'}"
    code = main(["ingest", str(long_notes), "--store", store, "--collection", "notes", "--model", str(minilm_path)])
    assert code == 0
    lines = [line for line in _stderr_lines(capsys.readouterr().err) if "\r" not in line]
    summary = next(line for line in lines if line.startswith("wrote 3 of 3 records"))
    assert "2 cut at the model's max length (256 tokens), the first 'answer.txt'" in summary
    assert sum("--chunk-tokens" in line for line in lines) == 1  # said once


def test_a_chunked_ingest_finds_the_answer_in_the_last_window(long_notes, tmp_path, minilm_path, capsys):
    store = f"chroma:{tmp_path / 'windows'}"
    argv = ["ingest", str(long_notes), "--store", store, "--collection", "notes", "--model", str(minilm_path)]
    assert main([*argv, "--chunk-tokens", "128", "--chunk-overlap", "32", "--quiet"]) == 0
    capsys.readouterr()
    query = ["search", "what is the secret launch code of the expedition?", "--store", store, "--collection", "notes"]
    assert main([*query, "--group-by-parent", "-k", "3", "--json", "--quiet"]) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(hits) == 3 and len({h["metadata"].get(PARENT_KEY, h["id"]) for h in hits}) == 3  # one per document
    top = hits[0]
    assert top["metadata"][PARENT_KEY] == "answer.txt" and "pineapple" in top["text"]
    assert main([*query, "-k", "50", "--json", "--quiet"]) == 0
    windows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    last = max(h["metadata"][WINDOW_KEY] for h in windows if h["metadata"].get(PARENT_KEY) == "answer.txt")
    assert top["metadata"][WINDOW_KEY] == last and top["id"] == f"answer.txt#{last}"


def test_chunking_options_are_refused_before_the_model_loads(long_notes, tmp_path, capsys):
    argv = ["ingest", str(long_notes), "--store", f"chroma:{tmp_path / 's'}", "--collection", "notes"]
    argv += ["--model", str(tmp_path / "no-such-model")]  # never loaded: the options fail first
    assert main([*argv, "--chunk-overlap", "8"]) == 2
    assert "--chunk-overlap goes with --chunk-tokens" in capsys.readouterr().err
    assert main([*argv, "--chunk-tokens", "16", "--chunk-overlap", "16"]) == 2
    assert "must be less than --chunk-tokens 16" in capsys.readouterr().err


def test_embed_counts_the_cut_texts_with_the_first_id(tmp_path, minilm_path, capsys):
    source = tmp_path / "in.jsonl"
    rows = [{"id": "a", "text": "short"}, {"id": "b", "text": _filler(4)}, {"id": "c", "text": _filler(5)}]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(["embed", str(source), "-o", str(tmp_path / "v.npy"), "--model", str(minilm_path)]) == 0
    (summary,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("wrote ")]
    assert summary.endswith("(2 texts longer than the model's max length (256 tokens) were cut, the first 'b')")


# ------------------------------------------------------------------ SciFact's longest abstracts


@pytest.mark.slow
def test_chunked_ingest_of_scifacts_longest_abstracts_finds_the_answer_in_the_last_window(
    data_dir, tmp_path, minilm_path, minilm_encoder, capsys
):
    """The 12 longest SciFact abstracts (all past MiniLM's 256 tokens) in windows of 128 tokens: each one's last
    sentence of 8 words or more, asked as a query, finds that abstract through its last window (whole, the
    model never reads that sentence). 10 of 12 did when this was written; two find an earlier window."""
    rows = [json.loads(line) for line in (data_dir / "scifact" / "corpus.jsonl").open(encoding="utf-8")]
    rows.sort(key=lambda r: len(r["text"]), reverse=True)
    longest = rows[:12]
    corpus = tmp_path / "longest.jsonl"
    corpus.write_text("".join(json.dumps({"id": r["_id"], "text": r["text"]}) + "\n" for r in longest), "utf-8")
    store = f"chroma:{tmp_path / 'store'}"
    argv = ["ingest", str(corpus), "--store", store, "--collection", "scifact", "--model", str(minilm_path), "--quiet"]
    assert main([*argv, "--chunk-tokens", "128", "--chunk-overlap", "32"]) == 0
    tokenizer = minilm_encoder.tokenizer
    found = []
    for row in longest:
        assert len(tokenizer(row["text"], add_special_tokens=False, verbose=False)["input_ids"]) > 256
        answer = [s for s in re.split(r"(?<=[.!?])\s+", row["text"].strip()) if len(s.split()) >= 8][-1]
        windows = list(chunk_records([{"id": row["_id"], "text": row["text"]}], tokenizer, ChunkSettings(128, 32)))
        capsys.readouterr()
        query = ["search", answer, "--store", store, "--collection", "scifact", "--group-by-parent"]
        assert main([*query, "-k", "1", "--json", "--quiet"]) == 0
        (hit,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        if hit["metadata"][PARENT_KEY] == row["_id"] and hit["metadata"][WINDOW_KEY] == len(windows) - 1:
            found.append(row["_id"])
    assert len(found) >= 9, f"{len(found)} of 12 last sentences found in their abstract's last window: {found}"
