"""The distributed path's overhead and scaling: single-process ingest vs Ray Data with 1 and 2 workers.

Engines, on the same first ``--docs`` SciFact abstracts (4 JSONL shards), into each store:

- ``single``: the single-process ingest (the store's ``ingest`` on the core engine), torch at 1 thread;
- ``ray-1``: ``instructor_ray.ingest_dataset`` with 1 embedding actor (1 CPU, 1 torch thread);
- ``ray-2``: the same with 2 actors.

Stores: embedded Chroma (``chroma:DIR``: the Ray path embeds on the cluster and the driver writes)
and a ``chroma run`` server on loopback (the Ray workers write through ``ChromaDatasink``). Each run
starts with an empty collection. Timed: the ingest call, from the first record read to the report,
including the actors' model loading (part of what a Ray job costs); the Ray instance is started
once, before all runs, and the driver's encoder is loaded beforehand for every engine.

Reported: documents/s per run, ``ray-1 / single`` (the engine's overhead; target >= 0.9) and
``ray-2 / ray-1`` (scaling; target >= 1.6), with the load average before and after; and the same
net of each Ray job's fixed cost, measured as the time of a 16-record job with the same settings
(actors started, model loaded, plan built) run before the timed ones.

    PYTHONPATH=.:integrations .venv/bin/python benchmarks/scale.py --docs 1000
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from encoding_paths import DEFAULT_DATA, default_model, machine

from instructor_core import LoadOptions

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ENGINES = ("single", "ray-1", "ray-2")
STORES = ("chroma-embedded", "chroma-server")


def _records(data: Path, docs: int) -> list[dict]:
    from instructor_core.evaluation import load_beir

    corpus = load_beir(data / "scifact", "test").corpus
    return [{"id": doc_id, "text": text} for doc_id, text in list(corpus.items())[:docs]]


def _shards(records: list[dict], folder: Path, n: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        with (folder / f"shard{k}.jsonl").open("w", encoding="utf-8") as handle:
            for row in records[k::n]:
                handle.write(json.dumps(row) + "\n")
    return folder


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _chroma_server(folder: Path) -> tuple[subprocess.Popen, int]:
    import chromadb

    port = _free_port()
    exe = Path(sys.executable).parent / "chroma"
    proc = subprocess.Popen(
        [str(exe), "run", "--path", str(folder), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            chromadb.HttpClient(host="127.0.0.1", port=port).heartbeat()
            return proc, port
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("chroma server did not come up") from None
            time.sleep(0.5)


def _store_url(store: str, tmp: Path, run: str, port: int) -> str:
    return f"chroma:{tmp / run}" if store == "chroma-embedded" else f"chroma+http://127.0.0.1:{port}"


def _single(records: list[dict], url: str, name: str, model: str, encoder, batch_size: int) -> int:
    from instructor_core.ingest import store_ops
    from instructor_core.ingest.stores import open_store

    store = open_store(url)  # what `instructor ingest` runs: store_ops.ingest on the core engine
    try:
        return store_ops.ingest(
            store, name, records, encoder, model=model, batch_size=batch_size, show_progress=False
        ).written
    finally:
        store.close()


def _ray(shards: Path, url: str, name: str, model: str, encoder, batch_size: int, workers: int, max_length):
    from instructor_ray import ingest_dataset, read_corpus_dataset

    return ingest_dataset(
        read_corpus_dataset(shards),
        url,
        name,
        model,
        encoder=encoder,
        options=LoadOptions(max_length=max_length),
        batch_size=batch_size,
        concurrency=workers,
        num_cpus=1,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--max-length", type=int, default=None, help="token limit (default: the model's)")
    parser.add_argument("--batch-size", type=int, default=256, help="records per block / upsert")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--rerun", action="store_true", help="also time a re-run of the ray-2 job (nothing to embed)")
    args = parser.parse_args()

    import ray
    import torch

    from instructor_core import InstructorEncoder

    torch.set_num_threads(1)  # the single-process engine at one thread, like each Ray worker
    model = str((args.model or default_model()).resolve())
    records = _records(args.data, args.docs)
    engines = [e for e in args.engines.split(",") if e]
    stores = [s for s in args.stores.split(",") if s]
    encoder = InstructorEncoder.from_pretrained(model, device="cpu", max_length=args.max_length)
    load_before = os.getloadavg()
    results = []
    reruns: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="instructor-scale-") as tmp_name:
        tmp = Path(tmp_name)
        shards = _shards(records, tmp / "shards")
        warm = _shards(records[:16], tmp / "warm")
        server, port = _chroma_server(tmp / "server")
        try:
            # Workers 2 x 1 CPU, plus 1 CPU for the read and write tasks (logical CPUs: Ray's accounting).
            ray.init(
                address="local",
                num_cpus=3,
                include_dashboard=False,
                object_store_memory=512 * 1024**2,
                log_to_driver=False,
            )
            ray.data.DataContext.get_current().enable_progress_bars = False
            fixed: dict[tuple[str, str], float] = {}
            for store in stores:
                for engine in [e for e in engines if e != "single"]:
                    # A 16-record job first: the fixed cost of a Ray job (actors started, model
                    # loaded, plan built), so the table can also show the steady per-record rate.
                    run = f"{store}-{engine}-warmup"
                    workers = int(engine.split("-")[1])
                    start = time.perf_counter()
                    _ray(warm, _store_url(store, tmp, run, port), run, model, encoder, 16, workers, args.max_length)
                    fixed[(store, engine)] = time.perf_counter() - start
            for store in stores:
                for engine in engines:
                    run = f"{store}-{engine}".replace("_", "-")
                    url = _store_url(store, tmp, run, port)
                    start = time.perf_counter()
                    if engine == "single":
                        written = _single(records, url, run, model, encoder, args.batch_size)
                    else:
                        workers = int(engine.split("-")[1])
                        written = _ray(
                            shards, url, run, model, encoder, args.batch_size, workers, args.max_length
                        ).written
                    seconds = time.perf_counter() - start
                    assert written == len(records), (run, written)
                    overhead = fixed.get((store, engine), 0.0)
                    steady = written / max(seconds - overhead, 1e-9)
                    results.append(
                        {
                            "store": store,
                            "engine": engine,
                            "seconds": seconds,
                            "docs_s": written / seconds,
                            "job_fixed_s": overhead,
                            "steady_docs_s": steady,
                        }
                    )
                    print(
                        f"{store:16} {engine:7} {written} docs in {seconds:7.1f} s = {written / seconds:6.1f} docs/s"
                        f" (a 16-record job took {overhead:5.1f} s; net of it {steady:6.1f} docs/s)"
                    )
            for store in stores if args.rerun else ():
                # The same ray-2 job again into its finished collection: every record is stored unchanged,
                # so the resume skips it before the embedding stage (issue 23: 236 s to write nothing before).
                run = f"{store}-ray-2"
                start = time.perf_counter()
                again = _ray(shards, _store_url(store, tmp, run, port), run, model, encoder, args.batch_size, 2,
                             args.max_length)  # fmt: skip
                seconds = time.perf_counter() - start
                reruns.append({"store": store, "seconds": seconds, "embedded": again.embedded,
                               "unchanged": again.unchanged, "written": again.written})  # fmt: skip
                print(f"{store:16} ray-2 re-run: {seconds:.1f} s, {again.summary()}")
        finally:
            ray.shutdown()
            server.terminate()
            server.wait(timeout=30)
    load_after = os.getloadavg()
    rate = {(r["store"], r["engine"]): r["docs_s"] for r in results}
    net = {(r["store"], r["engine"]): r["steady_docs_s"] for r in results}
    print(f"\n{args.docs} SciFact abstracts, max_length {encoder.max_length}, batch {args.batch_size}")
    print(f"load average before {load_before[0]:.2f} after {load_after[0]:.2f}; machine {machine()}")
    header = "| store | single docs/s | ray-1 docs/s | ray-2 docs/s | ray-2 per worker"
    header += " | ray-1 / single | ray-2 / ray-1 |"
    print(f"\n{header}")
    print("|---|---|---|---|---|---|---|")
    fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    ratio = lambda a, b: "-" if a is None or b is None else f"{a / b:.2f}"  # noqa: E731
    for store in stores:
        one, two, single = (rate.get((store, e)) for e in ("ray-1", "ray-2", "single"))
        half = None if two is None else two / 2
        print(
            f"| {store} | {fmt(single)} | {fmt(one)} | {fmt(two)} | {fmt(half)} | {ratio(one, single)} "
            f"| {ratio(two, one)} |"
        )
    print("\nNet of each Ray job's fixed cost (a 16-record job's time subtracted):")
    print("| store | single docs/s | ray-1 docs/s | ray-2 docs/s | ray-1 / single | ray-2 / ray-1 |")
    print("|---|---|---|---|---|---|")
    for store in stores:
        one, two, single = (net.get((store, e)) for e in ("ray-1", "ray-2", "single"))
        print(f"| {store} | {fmt(single)} | {fmt(one)} | {fmt(two)} | {ratio(one, single)} | {ratio(two, one)} |")
    if args.json:
        summary = {"results": results, "reruns": reruns, "load": [load_before, load_after]}
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
