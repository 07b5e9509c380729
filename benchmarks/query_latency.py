"""Where one query's time goes: the per-call path of ``encode_queries([claim])``, stage by stage.

For each backend, every SciFact test claim in turn is encoded alone, ``--calls`` times in all, and
the same claim is then pushed through the encoder's own stages one at a time, each timed with
``perf_counter_ns``: tokenize (instruction + text to ids), batch + pad (token-budget batching and
``collate``), model (the transformer: torch, or the ONNX Runtime session), pool + normalize
(pooling with the instruction mask, Dense layers, L2), and the copy out to numpy. "rest" is the
end-to-end call minus the stages: argument checks, the encode lock, the result array. Medians over
the calls after ``--warmup``; microseconds.

    .venv/bin/python benchmarks/query_latency.py --backends torch,onnx-int8 --calls 300

To see what a change bought, run the same script with ``PYTHONPATH`` pointing at a checkout of the
code before it (the stages are public encoder methods, present in both). It is a benchmark, not a
test: nothing in CI times anything.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from encoding_paths import DEFAULT_DATA, default_model, load_scifact, machine

STAGES = ("tokenize", "batch + pad", "model", "pool + normalize", "to numpy")


def profile(backend: str, model: Path, claims: list[str], calls: int, warmup: int, cache_dir: Path | None) -> dict:
    """Median microseconds per stage and end to end for one backend."""
    import torch
    import torch.nn.functional as F

    from instructor_core import InstructorEncoder
    from instructor_core.model.batching import token_budget_batches
    from instructor_core.model.pooling import pool

    options = {} if backend == "torch" else {"backend": backend, "backend_cache_dir": cache_dir}
    encoder = InstructorEncoder.from_pretrained(model, device="cpu", **options)
    instruction = encoder.instructions.query
    runtime = getattr(encoder, "_runtime", None)
    totals: list[int] = []
    stages: dict[str, list[int]] = {name: [] for name in STAGES}
    for call in range(warmup + calls):
        claim = claims[call % len(claims)]
        start = time.perf_counter_ns()
        encoder.encode_queries([claim])
        end = time.perf_counter_ns()
        with torch.inference_mode():
            t0 = time.perf_counter_ns()
            ids = encoder.tokenize([(instruction, claim)])
            t1 = time.perf_counter_ns()
            token_budget_batches([len(row) for row in ids], max_tokens=32 * encoder.max_length, min_rows=32)
            batch = encoder.collate(ids, [instruction])
            t2 = time.perf_counter_ns()
            if runtime is not None:
                hidden = runtime(batch.input_ids, batch.attention_mask)
            else:
                hidden = encoder.transformer(input_ids=batch.input_ids, attention_mask=batch.attention_mask)[0]
            t3 = time.perf_counter_ns()
            vectors = pool(hidden, batch.attention_mask, encoder.spec.pooling, batch.prompt_lengths)
            for layer in encoder.dense:
                vectors = layer(vectors)
            vectors = F.normalize(vectors, p=2, dim=-1)
            t4 = time.perf_counter_ns()
            vectors.float().cpu().numpy()
            t5 = time.perf_counter_ns()
        if call < warmup:
            continue
        totals.append(end - start)
        for name, (a, b) in zip(STAGES, ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5)), strict=True):
            stages[name].append(b - a)
    row = {name: float(np.median(values)) / 1000 for name, values in stages.items()}
    row["end to end"] = float(np.median(totals)) / 1000
    row["end to end p90"] = float(np.percentile(totals, 90)) / 1000
    row["rest"] = row["end to end"] - sum(row[name] for name in STAGES)
    row["tokens"] = float(np.median([len(ids) for ids in encoder.tokenize([(instruction, c) for c in claims])]))
    return row


def table(report: dict) -> str:
    """The stages as a Markdown table (microseconds, medians)."""
    columns = (*STAGES, "rest", "end to end", "end to end p90")
    lines = ["| backend | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for backend, row in report["results"].items():
        lines.append(f"| {backend} | " + " | ".join(f"{row[c]:,.0f}" for c in columns) + " |")
    m, s = report["machine"], report["settings"]
    lines.append("")
    lines.append(
        f"microseconds, median of {s['calls']} calls (one claim each, median {s['tokens']:.0f} tokens); {m['cpu']}, "
        f"{m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads); load average at start "
        f"{m['loadavg_start']}, at end {m['loadavg_end']}; code: {s['code']}; {m['time_utc']} UTC"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding scifact/")
    parser.add_argument("--model", type=Path, default=None, help="model folder (default all-MiniLM-L6-v2)")
    parser.add_argument("--backends", default="torch,onnx-int8", help="comma list of encoder backends")
    parser.add_argument("--calls", type=int, default=300, help="timed calls per backend")
    parser.add_argument("--warmup", type=int, default=20, help="untimed calls first")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="ONNX export cache")
    parser.add_argument("--json", default=None, help="also write the report here")
    args = parser.parse_args(argv)
    import torch

    import instructor_core

    if args.threads:
        torch.set_num_threads(args.threads)
    _, claims, _ = load_scifact(args.data, 1)
    info = machine()
    info["loadavg_start"] = info.pop("loadavg")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    model = args.model or default_model()
    results = {b: profile(b, model, claims, args.calls, args.warmup, args.cache_dir) for b in backends}
    info["loadavg_end"] = list(os.getloadavg())
    code = str(Path(instructor_core.__file__).resolve().parent.parent)
    report = {
        "machine": info,
        "settings": {"calls": args.calls, "tokens": results[backends[0]]["tokens"], "code": code},
    }
    report["results"] = results
    print(table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
