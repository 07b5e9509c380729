"""``instructor collections list | info | delete``: what a store holds, through the Store protocol only.

Every subcommand opens the store to read (``open_store(url, create=False)``): a mistyped
``--store chroma:DIR`` fails with ``no store at DIR`` and leaves nothing behind. ``delete`` cannot be
undone, so it asks for ``--yes`` instead of a question (scripts never hang on a prompt).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from typing import Any

from instructor_core.cli.commands.store import DEFAULT_STORE
from instructor_core.cli.terminal import printable
from instructor_core.errors import InputError, InstructorError
from instructor_core.ingest.stores import (
    CollectionInfo,
    Store,
    StoreError,
    check_collection_name,
    check_store_kind,
    open_store,
)

__all__ = ["register"]


def _open(args: argparse.Namespace) -> Store:
    check_store_kind(args.store)
    try:
        return open_store(args.store, create=False)
    except InstructorError:
        raise  # a store's own refusal (a lock file that is a link, ...) names its file already
    except ValueError as exc:
        raise InputError(f"--store: {exc}") from None


def _info_row(info: CollectionInfo) -> dict[str, Any]:
    row = asdict(info)
    row.pop("layout", None)  # its fields are the row's own
    row["vectors"] = dict(info.vectors)
    row["quantization"] = _quantization(info)
    if info.layout is not None and info.layout.sparse is not None:
        row["keyword_index"] = {"kind": info.layout.sparse, "settings": dict(info.layout.sparse_settings)}
    return row


def _quantization(info: CollectionInfo) -> str | None:
    """How the collection keeps its vectors (``"none"``, ``"int8"``, ``"binary"``); None where it
    records no layout."""
    return info.layout.quantization if info.layout is not None else None


# ---------------------------------------------------------------------------------------------- list
def _list(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        rows: list[tuple[str, CollectionInfo | None, str]] = []
        for name in store.list_collections():
            try:
                rows.append((name, store.info(name), ""))
            except StoreError as exc:  # e.g. a Chroma collection made without instructor
                rows.append((name, None, str(exc)))
    finally:
        store.close()
    if args.json:
        for name, info, problem in rows:
            row = _info_row(info) if info is not None else {"name": name, "error": problem}
            print(json.dumps(row, ensure_ascii=False))
        _raise_unreadable(rows)
        return 0
    if not rows:
        print(f"no collections in {store.describe()}", file=sys.stderr)
        return 0
    width = max(len(name) for name, _, _ in rows)
    digits = max((len(str(info.count)) for _, info, _ in rows if info is not None), default=1)
    for name, info, problem in rows:
        if info is None:
            state = "other tool" if FOREIGN in problem else "unreadable"
            print(f"{name:<{width}}  {state}  ({printable(problem)})")
        else:
            model = info.model if info.model is not None else "(model not recorded)"
            print(f"{name:<{width}}  {info.count:>{digits}} documents  {printable(model)}")
    _raise_unreadable(rows)
    return 0


#: What a store says of a collection another tool made: listed as such, not an error.
FOREIGN = "not made with instructor"


def _raise_unreadable(rows: list[tuple[str, CollectionInfo | None, str]]) -> None:
    """A collection that cannot be read is an error (exit 2), not a row with an unknown count; one
    that another tool made (a Chroma collection without instructor's embedding function) is not."""
    unreadable = [(name, problem) for name, info, problem in rows if info is None and FOREIGN not in problem]
    if unreadable:
        name, problem = unreadable[0]
        raise StoreError(f"{len(unreadable)} of {len(rows)} collection(s) could not be read; {name!r}: {problem}")


# ---------------------------------------------------------------------------------------------- info
def _info(args: argparse.Namespace) -> int:
    check_collection_name(args.store, args.name)
    store = _open(args)
    try:
        info = store.info(args.name)
        where = store.describe()
    finally:
        store.close()
    if args.json:
        print(json.dumps(_info_row(info), ensure_ascii=False))
        return 0
    fields = [
        ("collection", f"{info.name} ({where})"),
        ("model", info.model if info.model is not None else "(not recorded)"),
        ("fingerprint", info.fingerprint or "(not recorded)"),
        ("query instruction", repr(info.query_instruction)),
        ("document instruction", repr(info.document_instruction)),
        ("dimension", str(info.dimension) if info.dimension else "(unknown: no vectors yet)"),
        ("max length", str(info.max_length) if info.max_length is not None else "(not recorded)"),
        ("count", str(info.count)),
        ("created", info.created or "(not recorded)"),
        ("quantization", _quantization_text(info)),
    ]
    fields += [(f"vector {key!r}", repr(instruction)) for key, instruction in info.vectors.items()]
    fields += _keyword_index(info)
    width = max(len(label) for label, _ in fields)
    for label, value in fields:
        print(f"{label + ':':<{width + 1}} {printable(value)}")
    return 0


def _quantization_text(info: CollectionInfo) -> str:
    mode = _quantization(info)
    if mode is None:
        return "(not recorded)"
    return mode if mode == "none" else f"{mode} (searches rescore on the float vectors)"


def _keyword_index(info: CollectionInfo) -> list[tuple[str, str]]:
    """The ``keyword index`` row of a collection ingested with ``--hybrid`` (none otherwise)."""
    layout = info.layout
    if layout is None or layout.sparse is None:
        return []
    settings = ", ".join(f"{key}={value}" for key, value in dict(layout.sparse_settings).items())
    return [("keyword index", f"{layout.sparse} ({settings})" if settings else layout.sparse)]


# ---------------------------------------------------------------------------------------------- delete
def _delete(args: argparse.Namespace) -> int:
    check_collection_name(args.store, args.name)
    store = _open(args)
    try:
        info = store.info(args.name)  # a missing collection fails here, listing the ones there
        if not args.yes:
            raise InputError(
                f"deleting collection {args.name!r} ({info.count} documents) from {store.describe()} cannot be "
                "undone; add --yes to delete it"
            )
        store.delete(args.name)
        where = store.describe()
    finally:
        store.close()
    if not args.quiet:
        print(f"deleted collection {args.name!r} ({info.count} documents) from {where}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------- parsers
def _add_store_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        default=os.environ.get("INSTRUCTOR_STORE", DEFAULT_STORE),
        help="chroma:DIR | qdrant:DIR | chroma+http://HOST:PORT | qdrant+http://HOST:PORT, or a store another "
        f"package registers (default: $INSTRUCTOR_STORE or {DEFAULT_STORE}); an embedded store must exist",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``collections`` subcommand with ``list``, ``info`` and ``delete``."""
    collections = subparsers.add_parser(
        "collections",
        help="list, describe or delete the collections of a store",
        description="What a store holds: its collections, the model and instructions each was made with, "
        "their size; and deleting one.",
    )
    actions = collections.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="list, info NAME or delete NAME --yes"
    )

    listing = actions.add_parser(
        "list",
        help="one line per collection: name, document count, model",
        description="One line per collection: name, document count, model.",
    )
    _add_store_arg(listing)
    listing.add_argument("--json", action="store_true", help="one JSON object per collection (every recorded field)")
    listing.set_defaults(func=_list)

    info = actions.add_parser(
        "info",
        help="model, fingerprint, instructions, dimension, max length, count and creation time of a collection",
        description="What a collection records: model, fingerprint, both instructions, dimension, max length "
        "(the token limit its documents were embedded with), document count, creation time (and named vectors, "
        "for Qdrant collections made with several).",
    )
    info.add_argument("name", help="collection name")
    _add_store_arg(info)
    info.add_argument("--json", action="store_true", help="one JSON object instead of labelled lines")
    info.set_defaults(func=_info)

    delete = actions.add_parser(
        "delete",
        help="delete a collection (needs --yes)",
        description="Delete a collection and every document in it. This cannot be undone, so it needs --yes; "
        "without it the command says what it would delete and exits with code 2.",
    )
    delete.add_argument("name", help="collection name")
    _add_store_arg(delete)
    delete.add_argument("--yes", action="store_true", help="really delete it (required)")
    delete.add_argument("--quiet", action="store_true", help="no confirmation line on stderr")
    delete.set_defaults(func=_delete)
