"""Dense, keyword (BM25) and hybrid search on SciFact through the CLI: nDCG@10 and query latency.

Ingests the whole SciFact corpus once with ``instructor ingest --hybrid`` into ``qdrant:DIR`` (kept:
a later run with the same ``--store`` skips the ingest), then runs ``instructor search --queries
... -o ... --mode M`` for dense, keyword, hybrid RRF and hybrid DBSF over the 300 test claims, scores
nDCG@10 from each results file and the qrels (``instructor_core.evaluation.retrieval``), and prints a
table with the commands. Latency: each mode's search is run twice, once with every claim and once
with a single one; (all - one) / (claims - 1) is the time per query without the model load.

    .venv/bin/python benchmarks/hybrid.py --model MODEL_DIR --store /tmp/scifact-hybrid

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
MODES = (("dense", "rrf"), ("keyword", "rrf"), ("hybrid", "rrf"), ("hybrid", "dbsf"))


def _cli() -> list[str]:
    return [sys.executable, "-m", "instructor_core.cli"]


def _run(argv: list[str]) -> float:
    """Run a CLI command; its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run(argv, check=True)
    return time.perf_counter() - start


def _shown(argv: list[str]) -> str:
    return "instructor " + " ".join(shlex.quote(a) for a in argv[3:])


def _test_queries(data: Path, qrels: dict, out: Path) -> Path:
    lines = [line for line in (data / "queries.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line)["_id"] in qrels]
    out.write_text("\n".join(kept) + "\n", encoding="utf-8")
    (out.with_suffix(".one.jsonl")).write_text(kept[0] + "\n", encoding="utf-8")
    return out


def _rankings(path: Path) -> dict[str, list[str]]:
    rows = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {row["query_id"]: [hit["id"] for hit in row["hits"]] for row in rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model folder (all-MiniLM-L6-v2)")
    parser.add_argument("--store", required=True, help="store folder (qdrant:DIR); ingested once, then reused")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="the BEIR SciFact folder")
    parser.add_argument("--collection", default="scifact")
    parser.add_argument(
        "-k", type=int, default=100,
        help="hits per query (default 100): a hybrid search prefetches k from each side and fuses them; "
        "nDCG@10 reads the top 10 either way",
    )  # fmt: skip
    args = parser.parse_args()
    data, store = Path(args.data), f"qdrant:{args.store}"
    qrels = load_qrels(data / "qrels" / "test.tsv")
    work = Path(args.store).parent / (Path(args.store).name + "-runs")
    work.mkdir(parents=True, exist_ok=True)
    queries = _test_queries(data, qrels, work / "queries.jsonl")
    commands = []
    ingest = _cli() + [
        "ingest",
        str(data / "corpus.jsonl"),
        "--store",
        store,
        "--collection",
        args.collection,
        "--model",
        args.model,
        "--id-field",
        "_id",
        "--title-field",
        "title",
        "--hybrid",
        "--quiet",
    ]
    if not (Path(args.store) / "collections" / args.collection).is_dir():
        print(f"ingest: {_run(ingest):.0f} s", file=sys.stderr)
    commands.append(_shown(ingest))
    rows = []
    for mode, fusion in MODES:
        label = f"{mode} ({fusion.upper()})" if mode == "hybrid" else mode
        out = work / f"results-{mode}-{fusion}.jsonl"
        search = _cli() + ["search", "--queries", str(queries), "-o", str(out), "--store", store,
                           "--collection", args.collection, "-k", str(args.k), "--mode", mode, "--fusion", fusion,
                           "--quiet"]  # fmt: skip
        total = _run(search)
        one = search.copy()
        one[one.index(str(queries))] = str(queries.with_suffix(".one.jsonl"))
        one[one.index(str(out))] = str(out.with_suffix(".one.jsonl"))
        alone = _run(one)
        count = len(_rankings(out))
        ndcg = retrieval_metrics(_rankings(out), qrels)["ndcg@10"]
        rows.append((label, ndcg, 1000 * (total - alone) / (count - 1), total))
        commands.append(_shown(search))
    print("| mode | nDCG@10 | ms / query | CLI wall (s, 300 claims) |")
    print("|---|---|---|---|")
    for label, ndcg, ms, total in rows:
        print(f"| {label} | {ndcg:.4f} | {ms:.1f} | {total:.1f} |")
    print("\nload (uptime):", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print("\ncommands:")
    for command in commands:
        print("   ", command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
