"""SciFact through the CLI, whole abstracts vs token windows: what ``--chunk-tokens`` costs or gains on short documents.

Ingests SciFact twice into ``chroma:DIR`` folders under ``--work``: whole abstracts (the model cuts past its max
length), and ``--chunk-tokens N --chunk-overlap M`` windows; searches the 300 test claims in each (the windowed
collection with ``--group-by-parent``: each abstract's best window), maps each hit to its abstract (the
``parent_id`` metadata) and scores nDCG@10 against the qrels (``instructor_core.evaluation.retrieval``).

    .venv/bin/python benchmarks/chunking.py --model MODEL_DIR --work /tmp/scifact-chunking

It is a benchmark, not a test: nothing in CI times anything.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from instructor_core.evaluation.retrieval import load_qrels, retrieval_metrics

DEFAULT_DATA = Path(os.environ.get("INSTRUCTOR_DATA", "/work/shared/data")) / "scifact"


def _cli() -> list[str]:
    return [sys.executable, "-m", "instructor_core.cli"]


def _run(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True)
    return time.perf_counter() - start


def _shown(argv: list[str]) -> str:
    return "instructor " + " ".join(shlex.quote(a) for a in argv[3:])


def _rankings(path: Path) -> dict[str, list[str]]:
    """Each query's abstracts in rank order: a window counts for its parent (first occurrence kept)."""
    out: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        ids: list[str] = []
        for hit in row["hits"]:
            parent = str(hit["metadata"].get("parent_id", hit["id"]))
            if parent not in ids:
                ids.append(parent)
        out[row["query_id"]] = ids
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model folder (all-MiniLM-L6-v2)")
    parser.add_argument("--work", required=True, help="a folder for the stores and results")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="the BEIR SciFact folder")
    parser.add_argument("--chunk-tokens", type=int, default=128)
    parser.add_argument("--chunk-overlap", type=int, default=32)
    parser.add_argument("-k", type=int, default=100, help="abstracts per query (default 100)")
    args = parser.parse_args()
    data, work = Path(args.data), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    qrels = load_qrels(data / "qrels" / "test.tsv")
    lines = [line for line in (data / "queries.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    queries = work / "queries.jsonl"
    queries.write_text("\n".join(line for line in lines if json.loads(line)["_id"] in qrels) + "\n", encoding="utf-8")
    chunking = ["--chunk-tokens", str(args.chunk_tokens), "--chunk-overlap", str(args.chunk_overlap)]
    rows, commands = [], []
    for label, extra, grouped in (("whole abstracts", [], []), ("windows", chunking, ["--group-by-parent"])):
        store = f"chroma:{work / ('whole' if not extra else 'windows')}"
        ingest = _cli() + ["ingest", str(data / "corpus.jsonl"), "--store", store, "--collection", "scifact",
                           "--model", args.model, "--id-field", "_id", "--title-field", "title", *extra]  # fmt: skip
        ingest_s = _run(ingest)
        out = work / f"results-{'whole' if not extra else 'windows'}.jsonl"
        search = _cli() + ["search", "--queries", str(queries), "-o", str(out), "--store", store,
                           "--collection", "scifact", "-k", str(args.k), *grouped, "--quiet"]  # fmt: skip
        search_s = _run(search)
        ndcg = retrieval_metrics(_rankings(out), qrels)["ndcg@10"]
        rows.append(
            (label + (f" ({args.chunk_tokens}/{args.chunk_overlap})" if extra else ""), ndcg, ingest_s, search_s)
        )
        commands += [_shown(ingest), _shown(search)]
    print("| SciFact, 300 test claims | nDCG@10 | ingest (s) | search (s) |")
    print("|---|---|---|---|")
    for label, ndcg, ingest_s, search_s in rows:
        print(f"| {label} | {ndcg:.4f} | {ingest_s:.0f} | {search_s:.0f} |")
    print("\nload (uptime):", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print("\ncommands:")
    for command in commands:
        print("   ", command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
