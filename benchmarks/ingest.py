"""Corpus ingestion: encoding alone vs. into embedded Chroma and Qdrant vs. LangChain's usual way.

Modes, each on the same first ``--docs`` SciFact abstracts, alternating within each repetition:

- ``encode``: ``encoder.encode_documents`` only (the ceiling);
- ``chroma``: ``instructor_chroma.ingest`` into a ``chromadb.PersistentClient`` in a temp folder
  (batch k+1 is encoded while batch k is written);
- ``chroma-write``: the same upserts alone, vectors computed beforehand (the store's own cost);
- ``qdrant``: ``instructor_qdrant.ingest`` into an embedded ``QdrantClient(path=...)`` (overlapped
  the same way);
- ``chroma-store`` / ``qdrant-edge``: the stores the CLI opens, ``open_store("chroma:DIR")`` and
  ``open_store("qdrant:DIR")`` (Qdrant Edge, the embedded Rust engine), through ``store_ops.ingest``;
- ``langchain``: ``Chroma.from_documents`` with ``HuggingFaceEmbeddings`` (sentence-transformers
  under LangChain, how users ingest today), when langchain-huggingface and langchain-chroma import.

Each store starts empty in a fresh folder for every repetition. Reported: documents/s (median over
repetitions) and the ratio to ``encode``.

    .venv/bin/python benchmarks/ingest.py --docs 200 --reps 2
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from encoding_paths import DEFAULT_DATA, default_model, machine

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

MODES = ("encode", "chroma", "chroma-write", "qdrant", "chroma-store", "qdrant-edge", "langchain")


def _records(data: Path, docs: int) -> list[dict]:
    from instructor_core.evaluation import load_beir

    corpus = load_beir(data / "scifact", "test").corpus
    return [{"id": doc_id, "text": text} for doc_id, text in list(corpus.items())[:docs]]


def _langchain_available() -> bool:
    try:
        import langchain_chroma  # noqa: F401
        import langchain_huggingface  # noqa: F401
    except ImportError:
        return False
    return True


def build_modes(model: Path, backend: str, cache_dir: Path | None, wanted: list[str], records: list[dict]) -> dict:
    """Name -> setup(folder) returning work(records) -> count written. Only ``work`` is timed: opening
    a client and a collection is a one-time cost, not throughput."""
    from instructor_core import InstructorEncoder

    encoder = InstructorEncoder.from_pretrained(model, device="cpu", backend=backend, backend_cache_dir=cache_dir)
    modes = {}
    if "encode" in wanted:
        modes["encode"] = lambda folder: lambda records: len(encoder.encode_documents([r["text"] for r in records]))
    if "chroma" in wanted:
        import chromadb

        from instructor_chroma import InstructorEmbeddingFunction, ingest, open_collection

        function = InstructorEmbeddingFunction(str(model), encoder=encoder)

        def chroma(folder):
            collection = open_collection(chromadb.PersistentClient(path=str(folder)), "bench", function)
            return lambda records: ingest(collection, records, show_progress=False).written

        modes["chroma"] = chroma

    if "chroma-write" in wanted:
        import chromadb

        from instructor_chroma import InstructorEmbeddingFunction, open_collection

        function = InstructorEmbeddingFunction(str(model), encoder=encoder)
        vectors = encoder.encode_documents([r["text"] for r in records])
        precomputed = {r["id"]: v for r, v in zip(records, vectors, strict=True)}

        def chroma_write(folder):
            collection = open_collection(chromadb.PersistentClient(path=str(folder)), "bench", function)

            def work(records):
                for start in range(0, len(records), 256):
                    chunk = records[start : start + 256]
                    collection.upsert(
                        ids=[r["id"] for r in chunk],
                        documents=[r["text"] for r in chunk],
                        embeddings=np.stack([precomputed[r["id"]] for r in chunk]),
                    )
                return collection.count()

            return work

        modes["chroma-write"] = chroma_write
    if "qdrant" in wanted:
        from qdrant_client import QdrantClient

        from instructor_qdrant import ingest as qdrant_ingest

        def qdrant(folder):
            client = QdrantClient(path=str(folder))
            return lambda records: qdrant_ingest(client, "bench", records, encoder, show_progress=False).written

        modes["qdrant"] = qdrant
    for name, scheme in (("chroma-store", "chroma"), ("qdrant-edge", "qdrant")):
        if name in wanted:
            modes[name] = _store_mode(scheme, encoder, model)
    if "langchain" in wanted and _langchain_available():
        from langchain_chroma import Chroma
        from langchain_core.documents import Document
        from langchain_huggingface import HuggingFaceEmbeddings

        embeddings = HuggingFaceEmbeddings(
            model_name=str(model), model_kwargs={"device": "cpu"}, encode_kwargs={"normalize_embeddings": True}
        )

        def langchain(folder):
            # what Chroma.from_documents does: open the store, then add_documents (timed)
            store = Chroma(
                collection_name=f"bench-{uuid.uuid4().hex[:8]}",
                embedding_function=embeddings,
                persist_directory=str(folder),
            )

            def work(records):
                documents = [Document(page_content=r["text"], metadata={"id": r["id"]}) for r in records]
                return len(store.add_documents(documents, ids=[r["id"] for r in records]))

            return work

        modes["langchain"] = langchain
    return modes


def _store_mode(scheme: str, encoder, model: Path):
    """``store_ops.ingest(open_store(f"{scheme}:{folder}"), ...)``: what ``instructor ingest --store`` runs."""
    from instructor_core.ingest import store_ops
    from instructor_core.ingest.stores import open_store

    def setup(folder):
        store = open_store(f"{scheme}:{folder}")  # opening is a one-time cost: not timed

        def work(records):
            try:
                return store_ops.ingest(store, "bench", records, encoder, model=str(model), show_progress=False).written
            finally:
                store.close()

        return work

    return setup


def run(args: argparse.Namespace) -> dict:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    records = _records(args.data, args.docs)
    info = machine()
    info["loadavg_start"] = info.pop("loadavg")
    modes = build_modes(args.model, args.backend, args.cache_dir, args.modes, records)
    seconds: dict[str, list[float]] = {name: [] for name in modes}
    with tempfile.TemporaryDirectory(prefix="instructor-ingest-") as root:
        for name, mode in modes.items():  # warm-up on a few records
            mode(Path(root) / f"warm-{name}")(records[:8])
        names = list(modes)
        for rep in range(args.reps):
            order = names[rep % len(names) :] + names[: rep % len(names)]
            for name in order:
                folder = Path(root) / f"{name}-{rep}"
                work = modes[name](folder)
                start = time.perf_counter()
                written = work(records)
                seconds[name].append(time.perf_counter() - start)
                if written != len(records):
                    raise RuntimeError(f"{name} wrote {written} of {len(records)} records")
    info["loadavg_end"] = list(os.getloadavg())
    results = {name: {"docs_per_s": len(records) / float(np.median(s)), "seconds": s} for name, s in seconds.items()}
    base = results.get("encode", next(iter(results.values())))["docs_per_s"]
    for row in results.values():
        row["ratio_to_encode"] = row["docs_per_s"] / base
    skipped = [m for m in args.modes if m not in modes]
    return {
        "machine": info,
        "settings": {"docs": len(records), "reps": args.reps, "backend": args.backend, "skipped": skipped},
        "results": results,
    }


def table(report: dict) -> str:
    """The results as a Markdown table."""
    lines = ["| mode | docs/s | x encode only |", "|---|---|---|"]
    for name, row in report["results"].items():
        lines.append(f"| {name} | {row['docs_per_s']:.1f} | {row['ratio_to_encode']:.3f} |")
    m, s = report["machine"], report["settings"]
    lines.append("")
    lines.append(
        f"{m['cpu']}, {m['cores']} cores, {m['torch_threads']} torch threads; load average at start "
        f"{m['loadavg_start']}, at end {m['loadavg_end']}; {s['docs']} docs, {s['reps']} reps, backend "
        f"{s['backend']}; skipped (not installed): {s['skipped'] or 'none'}; {m['time_utc']} UTC"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding scifact/")
    parser.add_argument("--model", type=Path, default=None, help="model folder (default all-MiniLM-L6-v2)")
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--backend", default="torch", choices=("torch", "onnx", "onnx-int8"))
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma list of {MODES}")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="ONNX export cache")
    parser.add_argument("--json", default=None, help="also write the full report here")
    args = parser.parse_args(argv)
    args.model = args.model or default_model()
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    report = run(args)
    print(table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
