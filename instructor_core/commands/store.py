"""``instructor ingest`` and ``instructor search``: a corpus into Chroma or Qdrant, and queries against it.

Stores: ``chroma:DIR`` (embedded, the default at ``.instructor/chroma``), ``qdrant:DIR`` (local
mode), ``chroma+http://HOST:PORT`` and ``qdrant+http(s)://HOST:PORT`` (servers). The model and
instructions are stored with the collection (Chroma: the collection's embedding-function config;
Qdrant: the collection metadata), so ``search`` needs only the store and the collection.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

__all__ = ["DEFAULT_STORE", "StoreSpec", "parse_filters", "parse_store", "register"]

DEFAULT_STORE = "chroma:.instructor/chroma"


@dataclass(frozen=True)
class StoreSpec:
    """Where vectors live.

    Attributes:
        kind: "chroma" or "qdrant".
        path: Folder of an embedded store, or None for a server.
        url: Server URL ("http://host:port"), or None for an embedded store.
    """

    kind: Literal["chroma", "qdrant"]
    path: str | None = None
    url: str | None = None

    def describe(self) -> str:
        return f"{self.kind} at {self.path or self.url}"


def parse_store(spec: str) -> StoreSpec:
    """Parse ``chroma:DIR``, ``qdrant:DIR``, ``chroma+http://HOST:PORT`` or ``qdrant+http(s)://HOST:PORT``.

    Raises:
        ValueError: On anything else, naming the accepted forms.
    """
    forms = "chroma:DIR, qdrant:DIR, chroma+http://HOST:PORT or qdrant+http://HOST:PORT"
    kind, sep, rest = spec.partition("+")
    if sep and kind in ("chroma", "qdrant"):
        url = urlparse(rest)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"--store {spec!r}: expected {kind}+http://HOST:PORT")
        return StoreSpec(kind, url=rest.rstrip("/"))  # type: ignore[arg-type]
    kind, sep, rest = spec.partition(":")
    if sep and kind in ("chroma", "qdrant") and rest:
        return StoreSpec(kind, path=rest)  # type: ignore[arg-type]
    raise ValueError(f"--store {spec!r}: expected {forms}")


def parse_filters(items: Sequence[str] | None) -> dict[str, Any]:
    """``["topic=science", "year=2020"]`` -> ``{"topic": "science", "year": 2020}`` (JSON values where
    they parse, else strings)."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--filter {item!r}: expected KEY=VALUE")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if not isinstance(value, (str, int, float, bool)):
            value = raw
        out[key] = value
    return out


def _model_name(model: str) -> str:
    """Local folders are stored as absolute paths so a search from another directory finds them."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.is_dir() else model


# ---------------------------------------------------------------------------------------------- clients
def _chroma_client(store: StoreSpec) -> Any:
    try:
        import chromadb
        from chromadb.config import Settings
    except ImportError as exc:
        raise ImportError('the chroma store needs chromadb: pip install "instructor[chroma]"') from exc
    settings = Settings(anonymized_telemetry=False)
    if store.path is not None:
        return chromadb.PersistentClient(path=store.path, settings=settings)
    url = urlparse(store.url)
    return chromadb.HttpClient(
        host=url.hostname,
        port=url.port or (443 if url.scheme == "https" else 8000),
        ssl=url.scheme == "https",
        settings=settings,
    )


def _qdrant_client(store: StoreSpec) -> Any:
    try:
        from qdrant_client import QdrantClient
    except ImportError as exc:
        raise ImportError('the qdrant store needs qdrant-client: pip install "instructor[qdrant]"') from exc
    if store.path is not None:
        return QdrantClient(path=store.path)
    return QdrantClient(url=store.url)


def _chroma_collection(client: Any, name: str) -> Any:
    from instructor_chroma import open_collection

    try:
        return open_collection(client, name)
    except Exception as exc:
        if type(exc).__name__ == "NotFoundError" or "does not exist" in str(exc):
            raise ValueError(f"no collection {name!r} in this store") from None
        raise


# ---------------------------------------------------------------------------------------------- ingest
def _records(args: argparse.Namespace) -> Iterator[dict]:
    from ..records import read_corpus

    metadata_fields = None
    if args.metadata_fields is not None:
        metadata_fields = [f for f in args.metadata_fields.split(",") if f]
    return read_corpus(
        args.corpus,
        id_field=args.id_field or None,
        text_field=args.text_field,
        metadata_fields=metadata_fields,
    )


def _unreachable(command: str, store: StoreSpec, exc: BaseException) -> int | None:
    """Exit code 1 with one line on stderr for a server that cannot be reached; None for other errors."""
    if store.kind != "qdrant" or store.url is None:
        return None  # chromadb reports an unreachable server as a ValueError, which the CLI prints
    from instructor_qdrant.points import is_transport_error

    if not is_transport_error(exc):
        return None
    print(f"instructor {command}: error: cannot reach {store.describe()}: {exc}", file=sys.stderr)
    return 1


def _ingest(args: argparse.Namespace) -> int:
    store = parse_store(args.store)
    try:
        return _run_ingest(args, store)
    except Exception as exc:
        code = _unreachable("ingest", store, exc)
        if code is None:
            raise
        return code


def _run_ingest(args: argparse.Namespace, store: StoreSpec) -> int:
    records = _records(args)  # fails early on a missing corpus
    model = _model_name(args.model)
    progress = not args.quiet
    if store.kind == "chroma":
        from instructor_chroma import InstructorEmbeddingFunction, ingest, open_collection
        from instructor_chroma.ingest import DEFAULT_BATCH_SIZE

        ef = InstructorEmbeddingFunction(
            model,
            query_instruction=args.query_instruction,
            document_instruction=args.document_instruction,
            max_length=args.max_length,
            device=args.device,
        )
        collection = open_collection(_chroma_client(store), args.collection, ef)
        batch_size = args.batch_size or DEFAULT_BATCH_SIZE
        report = ingest(collection, records, batch_size=batch_size, show_progress=progress)
    else:
        from instructor_qdrant import ingest
        from instructor_qdrant.points import DEFAULT_BATCH_SIZE

        from ..encoder import InstructorEncoder

        encoder = InstructorEncoder.from_pretrained(model, device=args.device, max_length=args.max_length)
        encoder.instructions = encoder.instructions.replace(
            query=args.query_instruction, document=args.document_instruction
        )
        client = _qdrant_client(store)
        try:
            report = ingest(
                client,
                args.collection,
                records,
                encoder,
                model=model,
                batch_size=args.batch_size or DEFAULT_BATCH_SIZE,
                show_progress=progress,
            )
        finally:
            client.close()
    if not args.quiet:
        print(
            f"ingested {report.written} of {report.seen} records in {report.batches} batches into "
            f"collection {args.collection!r} ({store.describe()})",
            file=sys.stderr,
        )
    return 0


# ---------------------------------------------------------------------------------------------- search
def _chroma_where(filters: Mapping[str, Any]) -> dict | None:
    if not filters:
        return None
    if len(filters) == 1:
        return dict(filters)
    return {"$and": [{k: v} for k, v in filters.items()]}


def _search_chroma(args: argparse.Namespace, store: StoreSpec, filters: dict) -> list[dict]:
    from instructor_chroma import InstructorEmbeddingFunction

    collection = _chroma_collection(_chroma_client(store), args.collection)
    config = dict(collection.configuration_json["embedding_function"]["config"])
    if args.model is not None and _model_name(args.model) != config["model"]:
        raise ValueError(
            f"collection {args.collection!r} was made with model {config['model']!r}, not {args.model!r}; "
            "its vectors only compare with queries from that model (drop --model to use it)"
        )
    InstructorEmbeddingFunction.validate_config(config)
    ef = InstructorEmbeddingFunction(
        config["model"],
        query_instruction=config["query_instruction"] if args.query_instruction is None else args.query_instruction,
        document_instruction=config["document_instruction"],
        normalize=config.get("normalize", True),
        max_length=config.get("max_length"),
        device=args.device,
    )
    result = collection.query(
        query_embeddings=ef.embed_query([args.query]), n_results=args.k, where=_chroma_where(filters)
    )
    return [
        {"id": i, "score": 1.0 - float(d), "text": t, "metadata": dict(m or {})}
        for i, d, t, m in zip(
            result["ids"][0], result["distances"][0], result["documents"][0], result["metadatas"][0], strict=True
        )
    ]


def _search_qdrant(args: argparse.Namespace, store: StoreSpec, filters: dict) -> list[dict]:
    from instructor_qdrant import read_layout, search

    from ..encoder import InstructorEncoder
    from ..instructions import Instructions

    client = _qdrant_client(store)
    try:
        if not client.collection_exists(args.collection):
            raise ValueError(f"no collection {args.collection!r} in this store")
        layout = read_layout(client, args.collection)
        model = args.model if args.model is not None else (layout.model if layout else None)
        if model is None:
            raise ValueError(
                f"collection {args.collection!r} does not record its model (made outside instructor, or "
                "a server without collection metadata); pass --model"
            )
        if args.model is not None and layout is not None and layout.model not in (None, _model_name(model)):
            raise ValueError(f"collection {args.collection!r} was made with model {layout.model!r}, not {model!r}")
        instructions = Instructions(
            query=layout.query_instruction if layout else "", document=layout.document_instruction if layout else ""
        )
        encoder = InstructorEncoder.from_pretrained(
            model, instructions if layout else None, device=args.device, max_length=args.max_length
        )
        hits = search(
            client,
            args.collection,
            args.query,
            encoder,
            limit=args.k,
            filter=filters or None,
            vector=args.vector,
            instruction=args.query_instruction,
        )
    finally:
        client.close()
    return [{"id": h.id, "score": h.score, "text": h.text, "metadata": dict(h.metadata)} for h in hits]


def _search(args: argparse.Namespace) -> int:
    store = parse_store(args.store)
    if args.k < 1:
        raise ValueError(f"-k must be >= 1, got {args.k}")
    filters = parse_filters(args.filter)
    try:
        hits = _search_chroma(args, store, filters) if store.kind == "chroma" else _search_qdrant(args, store, filters)
    except Exception as exc:
        code = _unreachable("search", store, exc)
        if code is None:
            raise
        return code
    for rank, hit in enumerate(hits, start=1):
        if args.json:
            print(json.dumps({"rank": rank, **hit}, ensure_ascii=False))
        else:
            shown = " ".join(hit["text"].split())  # display only: one line per hit
            shown = shown if len(shown) <= 160 else shown[:157] + "..."
            print(f"{rank:>3}. {hit['score']:.4f}  {hit['id']}  {shown}")
    return 0


# ---------------------------------------------------------------------------------------------- parsers
def _add_store_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        default=os.environ.get("INSTRUCTOR_STORE", DEFAULT_STORE),
        help="chroma:DIR | qdrant:DIR | chroma+http://HOST:PORT | qdrant+http://HOST:PORT "
        f"(default: $INSTRUCTOR_STORE or {DEFAULT_STORE})",
    )
    parser.add_argument("--collection", required=True, help="collection name")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps; default: best available")
    parser.add_argument("--max-length", type=int, default=None, help="token limit; default: the model's")
    parser.add_argument("--query-instruction", default=None, help="query instruction; default: the model's")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ingest`` and ``search`` subcommands."""
    ingest = subparsers.add_parser(
        "ingest",
        help="embed a corpus with the document instruction into Chroma or Qdrant",
        description="Embed a corpus (JSONL, CSV/TSV, or a folder of .txt files) with the document "
        "instruction and upsert it into a collection; re-running resumes without duplicates.",
    )
    ingest.add_argument("corpus", help=".jsonl, .csv/.tsv file, or a folder of .txt files")
    _add_store_args(ingest)
    ingest.add_argument("--model", required=True, help="model folder or hub id, e.g. hkunlp/instructor-large")
    ingest.add_argument("--document-instruction", default=None, help="document instruction; default: the model's")
    ingest.add_argument("--text-field", default="text", help="field/column with the text (default: text)")
    ingest.add_argument("--id-field", default="id", help="field/column with the id (default: id; '' numbers rows)")
    ingest.add_argument(
        "--metadata-fields", default=None, help="comma-separated fields to keep as metadata (default: all others)"
    )
    ingest.add_argument("--batch-size", type=int, default=None, help="records per upsert")
    ingest.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    ingest.set_defaults(func=_ingest)

    search = subparsers.add_parser(
        "search",
        help="search a collection with the query instruction",
        description="Embed a query with the collection's model and query instruction and print the best "
        "matches (rank, cosine score, id, text).",
    )
    search.add_argument("query", help="the query text")
    _add_store_args(search)
    search.add_argument("-k", type=int, default=10, help="number of results (default: 10)")
    search.add_argument("--model", default=None, help="model; default: the one stored with the collection")
    search.add_argument("--filter", action="append", metavar="KEY=VALUE", help="metadata filter (repeatable)")
    search.add_argument("--vector", default=None, help="named vector to search (Qdrant collections with several)")
    search.add_argument("--json", action="store_true", help="one JSON object per hit")
    search.set_defaults(func=_search)
