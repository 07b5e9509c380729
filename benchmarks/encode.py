"""Encoding speed and quality: this package's paths against sentence-transformers, one process.

All paths load the same model folder and encode the same inputs (the first ``--docs`` SciFact
abstracts and the 300 test claims), alternating path by path within each repetition, so the
ratios compare like with like even on a busy machine. Reported per path: documents/s and tokens/s
(best and median repetition), single-query latency p50/p90, peak RSS (measured in a child process
that loads only that path), the max absolute difference of its vectors from sentence-transformers',
and optionally SciFact nDCG@10 on the full corpus (5,183 documents, once per path).

    .venv/bin/python benchmarks/encode.py --docs 200 --reps 2          # quick
    .venv/bin/python benchmarks/encode.py --ndcg full --json out.json  # the full run

It is a benchmark, not a test: nothing in CI times anything.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from encoding_paths import DEFAULT_DATA, PATH_NAMES, build_path, default_model, load_scifact, machine, rss_mb

RSS_DOCS = 64  # documents the RSS child encodes: two full-length batches of 32


def _timed(function, *args) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def _ndcg(path, beir) -> float:
    from instructor_core.evaluation import rank_by_cosine, retrieval_metrics

    doc_ids, query_ids = list(beir.corpus), list(beir.queries)
    doc_vectors = path.documents([beir.corpus[d] for d in doc_ids])
    query_vectors = path.queries([beir.queries[q] for q in query_ids])
    indices, _ = rank_by_cosine(query_vectors, doc_vectors, k=100)
    rankings = {q: [doc_ids[i] for i in row] for q, row in zip(query_ids, indices, strict=True)}
    return retrieval_metrics(rankings, beir.qrels)["ndcg@10"]


def _rss_child(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    docs, _, _ = load_scifact(args.data, RSS_DOCS)
    before = rss_mb()
    path = build_path(args.rss_child, args.model, args.batch_size, args.cache_dir)
    loaded = rss_mb()
    path.documents(docs)
    peak = _high_water_mb()
    print(json.dumps({"peak_rss_mb": peak, "model_mb": loaded - before}))


def _high_water_mb() -> float:
    """Peak RSS of this process (VmHWM; ru_maxrss would carry the parent's peak over the exec)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure_rss(args: argparse.Namespace, name: str) -> dict[str, float]:
    command = [sys.executable, __file__, "--rss-child", name, "--data", str(args.data), "--model", str(args.model)]
    command += ["--batch-size", str(args.batch_size), "--threads", str(args.threads or 0)]
    if args.cache_dir:
        command += ["--cache-dir", str(args.cache_dir)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"peak_rss_mb": float("nan"), "model_mb": float("nan")}
    return json.loads(lines[-1])


def run(args: argparse.Namespace) -> dict:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    docs, queries, beir = load_scifact(args.data, args.docs)
    queries = queries[: args.queries]
    info = machine()
    info["loadavg_start"] = info.pop("loadavg")
    paths = [build_path(name, args.model, args.batch_size, args.cache_dir, args.device) for name in args.paths]
    tokenizer = next((p.handle for p in paths if p.name.startswith("ours")), None)
    if tokenizer is None:  # token counts come from this package's tokenization (the same tokenizer)
        from instructor_core import InstructorEncoder

        tokenizer = InstructorEncoder.from_pretrained(args.model, device="cpu")
    doc_tokens = sum(len(ids) for ids in tokenizer.tokenize([(tokenizer.instructions.document, d) for d in docs]))
    query_tokens = sum(len(ids) for ids in tokenizer.tokenize([(tokenizer.instructions.query, q) for q in queries]))

    stats = {p.name: {"doc_s": [], "query_s": [], "latency_ms": []} for p in paths}
    vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for p in paths:  # warm-up: first calls pay for lazy initialisation
        p.documents(docs[:8])
        p.queries(queries[:8])
    for rep in range(args.reps):
        order = paths[rep % len(paths) :] + paths[: rep % len(paths)]  # rotate who goes first
        # Documents go in chunks, every path encoding the same chunk in turn, so a change in the
        # machine's load during the run hits all paths alike.
        totals = {p.name: 0.0 for p in paths}
        parts: dict[str, list[np.ndarray]] = {p.name: [] for p in paths}
        for start in range(0, len(docs), args.chunk):
            for p in order:
                seconds, part = _timed(p.documents, docs[start : start + args.chunk])
                totals[p.name] += seconds
                parts[p.name].append(part)
        for p in order:
            stats[p.name]["doc_s"].append(totals[p.name])
            seconds, query_vectors = _timed(p.queries, queries)
            stats[p.name]["query_s"].append(seconds)
            vectors[p.name] = (np.concatenate(parts[p.name]), query_vectors)
        for p in order:  # single queries, interleaved in small runs to share the machine's moods
            for query in queries[rep * args.latency_n : (rep + 1) * args.latency_n]:
                seconds, _ = _timed(p.queries, [query])
                stats[p.name]["latency_ms"].append(seconds * 1000)
    info["loadavg_end"] = list(os.getloadavg())

    reference = "st" if "st" in vectors else paths[0].name
    results = {}
    for p in paths:
        s = stats[p.name]
        doc_best, doc_median = min(s["doc_s"]), float(np.median(s["doc_s"]))
        ref_docs, ref_queries = vectors[reference]
        row = {
            "docs_per_s": len(docs) / doc_median,
            "docs_per_s_best": len(docs) / doc_best,
            "tokens_per_s": doc_tokens / doc_median,
            "queries_per_s": len(queries) / float(np.median(s["query_s"])),
            "latency_p50_ms": float(np.percentile(s["latency_ms"], 50)),
            "latency_p90_ms": float(np.percentile(s["latency_ms"], 90)),
            "max_abs_diff": float(
                max(np.abs(vectors[p.name][0] - ref_docs).max(), np.abs(vectors[p.name][1] - ref_queries).max())
            ),
            "min_cosine": float(min((vectors[p.name][0] * ref_docs).sum(1).min(), 1.0)),
        }
        if not args.no_rss and args.device == "cpu":
            row.update(_measure_rss(args, p.name))
        results[p.name] = row
    for p in paths:
        base = results[reference]
        row = results[p.name]
        row["docs_ratio"] = row["docs_per_s"] / base["docs_per_s"]
        row["latency_ratio"] = row["latency_p50_ms"] / base["latency_p50_ms"]
    if args.ndcg == "full":
        for p in paths:
            if not args.ndcg_paths or p.name in args.ndcg_paths:
                results[p.name]["ndcg@10"] = _ndcg(p, beir)
    return {
        "machine": info,
        "settings": {
            "docs": len(docs),
            "doc_tokens": doc_tokens,
            "queries": len(queries),
            "query_tokens": query_tokens,
            "reps": args.reps,
            "latency_calls_per_path": len(stats[paths[0].name]["latency_ms"]),
            "batch_size": args.batch_size,
            "chunk": args.chunk,
            "reference": reference,
            "model": str(args.model),
            "device": args.device,
        },
        "raw": stats,
        "results": results,
    }


def table(report: dict) -> str:
    """The results as a Markdown table."""
    ref = report["settings"]["reference"]
    header = (
        f"| path | docs/s | x {ref} | tokens/s | queries/s (batch) | 1-query p50 ms | p90 ms | p50 x {ref} "
        "| peak RSS MiB | max abs diff | nDCG@10 |"
    )
    lines = [header, "|" + "---|" * 11]
    for name, r in report["results"].items():
        ndcg = f"{r['ndcg@10']:.4f}" if "ndcg@10" in r else "-"
        rss = r.get("peak_rss_mb", float("nan"))
        lines.append(
            f"| {name} | {r['docs_per_s']:.1f} | {r['docs_ratio']:.2f} | {r['tokens_per_s']:.0f} | "
            f"{r['queries_per_s']:.1f} | {r['latency_p50_ms']:.1f} | {r['latency_p90_ms']:.1f} | "
            f"{r['latency_ratio']:.2f} | {rss:.0f} | {r['max_abs_diff']:.1e} | {ndcg} |"
        )
    m, s = report["machine"], report["settings"]
    lines.append("")
    gpu = f"{m['gpu']} (device {s['device']}); " if s.get("device", "cpu") != "cpu" and m.get("gpu") else ""
    lines.append(
        f"{gpu}{m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads), transformers "
        f"{m['transformers']}; load average at start {m['loadavg_start']}, at end {m['loadavg_end']}; "
        f"{s['docs']} docs ({s['doc_tokens']} tokens), {s['queries']} queries, {s['reps']} reps, "
        f"{s['latency_calls_per_path']} single-query calls per path; {m['time_utc']} UTC"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding scifact/")
    parser.add_argument("--model", type=Path, default=None, help="model folder (default all-MiniLM-L6-v2)")
    parser.add_argument("--docs", type=int, default=1000, help="abstracts to time (first N)")
    parser.add_argument("--queries", type=int, default=300, help="test claims to time")
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions per path")
    parser.add_argument("--chunk", type=int, default=100, help="documents per alternation step")
    parser.add_argument("--latency-n", type=int, default=30, help="single-query calls per path per rep")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (on cuda peak RSS is not measured)")
    parser.add_argument("--paths", default="st,ours,ours-bf16,ours-onnx-int8", help=f"comma list of {PATH_NAMES}")
    parser.add_argument("--ndcg", choices=("full", "skip"), default="skip", help="SciFact nDCG@10, full corpus")
    parser.add_argument("--ndcg-paths", default="", help="comma list: score only these paths (default: all)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="ONNX export cache")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS child processes")
    parser.add_argument("--json", default=None, help="also write the full report here ('-': stdout only)")
    parser.add_argument("--rss-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.model = args.model or default_model()
    if args.rss_child:
        _rss_child(args)
        return
    args.paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    args.ndcg_paths = [p.strip() for p in args.ndcg_paths.split(",") if p.strip()]
    report = run(args)
    if args.json == "-":
        print(json.dumps(report, indent=2))
        return
    print(table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
