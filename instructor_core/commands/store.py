"""``instructor ingest`` and ``instructor search``: a corpus into a vector store, and queries against it.

Stores are opened by URL through ``instructor_core.stores.open_store`` (entry points of the group
``instructor.stores``): ``chroma:DIR`` (embedded, the default at ``.instructor/chroma``),
``qdrant:DIR``, ``chroma+http://HOST:PORT`` and ``qdrant+http(s)://HOST:PORT`` (servers), or any
store a third party registers. This module only dispatches: the model and instructions are stored
with the collection by the store, so ``search`` needs only the store and the collection.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..stores import Hit, Store, StoreUnavailableError, open_store

__all__ = ["DEFAULT_STORE", "parse_filters", "register"]

DEFAULT_STORE = "chroma:.instructor/chroma"


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


def _open(args: argparse.Namespace) -> Store:
    try:
        return open_store(args.store)
    except ValueError as exc:
        raise ValueError(f"--store: {exc}") from None


def _unreachable(command: str, exc: StoreUnavailableError) -> int:
    print(f"instructor {command}: error: {exc}", file=sys.stderr)
    return 1


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


def _ingest(args: argparse.Namespace) -> int:
    from ..encoder import InstructorEncoder

    records = _records(args)  # fails early on a missing corpus
    store = _open(args)
    try:
        model = _model_name(args.model)
        encoder = InstructorEncoder.from_pretrained(model, device=args.device, max_length=args.max_length)
        encoder.instructions = encoder.instructions.replace(
            query=args.query_instruction, document=args.document_instruction
        )
        report = store.ingest(
            args.collection, records, encoder, model=model, batch_size=args.batch_size, show_progress=not args.quiet
        )
    except StoreUnavailableError as exc:
        return _unreachable("ingest", exc)
    finally:
        store.close()
    if not args.quiet:
        print(f"{report.summary()} into collection {args.collection!r} ({store.describe()})", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------- search
def _search_hits(args: argparse.Namespace, store: Store) -> list[Hit]:
    from ..encoder import InstructorEncoder
    from ..instructions import Instructions

    info = store.info(args.collection)
    if args.model is not None and info.model is not None and _model_name(args.model) != info.model:
        raise ValueError(
            f"collection {args.collection!r} was made with model {info.model!r}, not {args.model!r}; "
            "its vectors only compare with queries from that model (drop --model to use it)"
        )
    model = args.model if args.model is not None else info.model
    if model is None:
        raise ValueError(f"collection {args.collection!r} does not record its model; pass --model")
    # a collection made outside instructor records no instructions: the model's own apply
    recorded = info.model is not None
    instructions = Instructions(info.query_instruction, info.document_instruction) if recorded else None
    encoder = InstructorEncoder.from_pretrained(model, instructions, device=args.device, max_length=args.max_length)
    (hits,) = store.search(
        args.collection,
        [args.query],
        encoder,
        k=args.k,
        filters=parse_filters(args.filter) or None,
        instruction=args.query_instruction,
        vector=args.vector,
    )
    return hits


def _print_hits(hits: Sequence[Hit], as_json: bool) -> None:
    for rank, hit in enumerate(hits, start=1):
        if as_json:
            row = {"rank": rank, "id": hit.id, "score": hit.score, "text": hit.text, "metadata": dict(hit.metadata)}
            print(json.dumps(row, ensure_ascii=False))
        else:
            shown = " ".join(hit.text.split())  # display only: one line per hit
            shown = shown if len(shown) <= 160 else shown[:157] + "..."
            print(f"{rank:>3}. {hit.score:.4f}  {hit.id}  {shown}")


def _search(args: argparse.Namespace) -> int:
    if args.k < 1:
        raise ValueError(f"-k must be >= 1, got {args.k}")
    parse_filters(args.filter)  # a malformed filter fails before the store is opened
    store = _open(args)
    try:
        hits = _search_hits(args, store)
    except StoreUnavailableError as exc:
        return _unreachable("search", exc)
    finally:
        store.close()
    _print_hits(hits, args.json)
    return 0


# ---------------------------------------------------------------------------------------------- parsers
def _add_store_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        default=os.environ.get("INSTRUCTOR_STORE", DEFAULT_STORE),
        help="chroma:DIR | qdrant:DIR | chroma+http://HOST:PORT | qdrant+http://HOST:PORT, or a store "
        "another package registers "
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
