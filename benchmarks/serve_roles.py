"""SciFact through instructor serve: does the server keep the query/document slots, and what does a
client that cannot send the role lose?

Four rows, nDCG@10 over the 300 test claims, the whole corpus (5,183 abstracts, BEIR ``title text``):

1. in-process: ``instructor ingest --model M`` then ``instructor search --queries ... --model M``;
2. through the server: ``instructor ingest --server URL`` then ``instructor search --server URL``
   (each side sends its ``input_type``): must equal row 1 exactly;
3. a stock OpenAI client that cannot send the role (LangChain's ``embed_query`` calls
   ``embed_documents``; Chroma's ``OpenAIEmbeddingFunction``): the ``openai`` client with no
   ``input_type``, so queries get the server's default slot (documents), brute-force cosine;
4. the ``openai`` client sending ``extra_body={"input_type": "query"}`` for the claims: equals row 1.

    .venv/bin/python benchmarks/serve_roles.py --model MODEL_DIR --work /tmp/serve-roles

It is a benchmark, not a test (tests/test_serve_retrieval.py holds the equality of rows 1 and 2).
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

import numpy as np

from instructor_core.evaluation.retrieval import load_beir, load_qrels, rank_by_cosine, retrieval_metrics

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.serve_helpers import running  # noqa: E402 (the same launcher the tests use)

DEFAULT_DATA = Path(os.environ.get("INSTRUCTOR_DATA", "/work/shared/data")) / "scifact"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "instructor_core.cli", *args]


def _run(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return time.perf_counter() - start


def _rankings(path: Path) -> dict[str, list[str]]:
    rows = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {row["query_id"]: [hit["id"] for hit in row["hits"]] for row in rows}


def _through_cli(
    label: str, work: Path, data: Path, queries: Path, qrels: dict, source: list[str], slots: list[str]
) -> float:
    store = f"qdrant:{work / label}"
    ingest = _cli("ingest", str(data / "corpus.jsonl"), "--store", store, "--collection", "scifact", "--id-field",
                  "_id", "--title-field", "title", "--quiet", *source, *slots)  # fmt: skip
    out = work / f"{label}.jsonl"
    search = _cli("search", "--queries", str(queries), "-o", str(out), "--store", store, "--collection", "scifact",
                  "-k", "10", "--quiet", *source)  # fmt: skip
    if not (work / label).is_dir():
        seconds = _run(ingest)
        print(f"{label}: ingest {seconds:.0f} s   ({' '.join(shlex.quote(a) for a in ingest[3:])})", file=sys.stderr)
    _run(search)
    return retrieval_metrics(_rankings(out), qrels)["ndcg@10"]


def _through_openai(url: str, data: Path, qrels: dict, query_role: bool) -> float:
    import openai

    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused")
    beir = load_beir(data, "test")
    doc_ids = list(beir.corpus)
    texts = [beir.corpus[d] for d in doc_ids]

    def embed(items: list[str], extra: dict | None) -> np.ndarray:
        out = []
        for start in range(0, len(items), 256):
            response = client.embeddings.create(input=items[start : start + 256], model="m", extra_body=extra)
            out.extend(row.embedding for row in response.data)
        return np.asarray(out, dtype=np.float32)

    docs = embed(texts, None)
    query_ids = list(beir.queries)
    queries = embed([beir.queries[q] for q in query_ids], {"input_type": "query"} if query_role else None)
    indices, _ = rank_by_cosine(queries, docs, k=10)
    rankings = {qid: [doc_ids[i] for i in row] for qid, row in zip(query_ids, indices, strict=True)}
    return retrieval_metrics(rankings, qrels)["ndcg@10"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model folder (e.g. the refit of docs/refit.md)")
    parser.add_argument("--work", required=True, help="a folder for the stores and results (kept: re-runs reuse)")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="the BEIR SciFact folder")
    parser.add_argument("--query-instruction", default=None, help="the query slot (default: the model's)")
    parser.add_argument("--document-instruction", default=None, help="the document slot (default: the model's)")
    args = parser.parse_args()
    slots = []
    if args.query_instruction is not None:
        slots += ["--query-instruction", args.query_instruction]
    if args.document_instruction is not None:
        slots += ["--document-instruction", args.document_instruction]
    data, work = Path(args.data), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    qrels = load_qrels(data / "qrels" / "test.tsv")
    lines = [line for line in (data / "queries.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    queries = work / "queries.jsonl"
    queries.write_text("\n".join(x for x in lines if json.loads(x)["_id"] in qrels) + "\n", encoding="utf-8")
    local = _through_cli("local", work, data, queries, qrels, ["--model", args.model], slots)
    rows = [("in-process (`--model`)", local)]
    with running(args.model, *slots, "--max-client-batch-size", "4096", "--max-queue-inputs", "20000") as (_, url):
        rows.append(("through the server (`--server`, input_type per side)",
                     _through_cli("server", work, data, queries, qrels, ["--server", url], [])))  # fmt: skip
        rows.append(("stock OpenAI client, no role (queries get the document slot)",
                     _through_openai(url, data, qrels, query_role=False)))  # fmt: skip
        rows.append(("`openai` client with extra_body input_type=query",
                     _through_openai(url, data, qrels, query_role=True)))  # fmt: skip
    base = rows[0][1]
    print(f"model: {args.model}; query slot {args.query_instruction!r}, document slot {args.document_instruction!r}")
    print("| run | nDCG@10 | vs in-process |")
    print("|---|---|---|")
    for label, ndcg in rows:
        print(f"| {label} | {ndcg:.4f} | {ndcg - base:+.4f} |")
    print("\nload (uptime):", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
