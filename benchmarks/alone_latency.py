"""Single-query latency of one path alone in its own process, as a service runs it.

``encode.py`` interleaves every path in one process, so ONNX Runtime's, OpenVINO's and OpenMP's
spinning worker threads of one path compete with the next path's call. Here each path is loaded
in a fresh child process and encodes every SciFact test claim alone, in turn (``--calls`` after
``--warmup``); the paths take turns by process, not by call.

    .venv/bin/python benchmarks/alone_latency.py --paths st,ours,ours-onnx-int8
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from encoding_paths import DEFAULT_DATA, build_path, default_model, load_scifact, machine


def _child(args: argparse.Namespace) -> None:
    _, claims, _ = load_scifact(args.data, 1)
    path = build_path(args.child, args.model or default_model(), 32, args.cache_dir)
    times = []
    for call in range(args.warmup + args.calls):
        claim = claims[call % len(claims)]
        start = time.perf_counter()
        path.queries([claim])
        if call >= args.warmup:
            times.append(time.perf_counter() - start)
    print(json.dumps({"p50_ms": 1000 * float(np.median(times)), "p90_ms": 1000 * float(np.percentile(times, 90))}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--paths", default="st,ours,ours-onnx-int8")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2, help="times each path's process runs, alternating")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--json", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return
    info = machine()
    info["loadavg_start"] = info.pop("loadavg")
    names = [p.strip() for p in args.paths.split(",") if p.strip()]
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:
            command = [sys.executable, __file__, "--child", name, "--data", str(args.data)]
            command += ["--calls", str(args.calls), "--warmup", str(args.warmup)]
            command += ["--model", str(args.model)] if args.model else []
            command += ["--cache-dir", str(args.cache_dir)] if args.cache_dir else []
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    info["loadavg_end"] = list(os.getloadavg())
    reference = names[0]
    p50 = {name: float(np.median([r["p50_ms"] for r in rows])) for name, rows in runs.items()}
    print(f"| path | 1-query p50 ms (each process) | median | x {reference} |")
    print("|---|---|---|---|")
    for name in names:
        each = ", ".join(f"{r['p50_ms']:.2f}" for r in runs[name])
        print(f"| {name} | {each} | {p50[name]:.2f} | {p50[name] / p50[reference]:.2f} |")
    print(
        f"\n{info['cpu']}; load average at start {info['loadavg_start']}, at end {info['loadavg_end']}; "
        f"{args.calls} calls per "
        f"process after {args.warmup} warm-up calls; {info['time_utc']} UTC; transformers {info['transformers']}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "runs": runs, "p50_ms": p50}, indent=2))


if __name__ == "__main__":
    main()
