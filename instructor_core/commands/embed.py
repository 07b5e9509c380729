"""``instructor embed``: embed texts from a file into a .npy matrix or JSONL vectors."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .options import add_batch_size_option, add_model_options

__all__ = ["OUTPUT_SUFFIXES", "read_texts", "register"]

# What -o may end with: a float32 matrix, or one {"id", "vector"} object per line.
OUTPUT_SUFFIXES: tuple[str, ...] = (".npy", ".jsonl", ".ndjson")


def read_texts(path: Path, field: str | None) -> tuple[list[str], list[str | None]]:
    """Read texts: one per line from a text file, or ``field`` of each JSONL row.

    Returns:
        ``(texts, ids)``; ids come from each JSONL row's "id"/"_id" where present.

    Raises:
        ValueError: On a JSONL line that is not an object or lacks a string ``field``; the
            message names the line number.
    """
    texts: list[str] = []
    ids: list[str | None] = []
    is_jsonl = field is not None or path.suffix in (".jsonl", ".ndjson")
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            line = line.rstrip("\n")
            if not is_jsonl:
                texts.append(line)
                ids.append(None)
                continue
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
            key = field or "text"
            if not isinstance(row, dict) or not isinstance(row.get(key), str):
                raise ValueError(f"{path}:{number}: expected an object with a string field {key!r}")
            texts.append(row[key])
            row_id = row.get("id", row.get("_id"))
            ids.append(None if row_id is None else str(row_id))
    return texts, ids


def _run(args: argparse.Namespace) -> int:
    import numpy as np

    from .options import load_encoder

    out = Path(args.output)
    if out.suffix not in OUTPUT_SUFFIXES:  # exact: np.save would append .npy to "q.NPY"
        raise ValueError(
            f"-o {args.output!r}: expected a file ending in .npy (float32 matrix) or .jsonl "
            f"(one {{id, vector}} per line), got {out.suffix or 'no suffix'!r}"
        )
    source = Path(args.input)
    if not source.is_file():
        raise FileNotFoundError(f"input file {source} does not exist")
    texts, ids = read_texts(source, args.field)
    encoder = load_encoder(args)
    encode = encoder.encode_queries if args.kind == "query" else encoder.encode_documents
    vectors = encode(
        texts,
        args.instruction,
        batch_size=args.batch_size,
        normalize=not args.no_normalize,
        show_progress=not args.quiet,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix in (".jsonl", ".ndjson"):
        with out.open("w", encoding="utf-8") as fh:
            for index, (row_id, vector) in enumerate(zip(ids, vectors, strict=True)):
                fh.write(
                    json.dumps({"id": row_id if row_id is not None else str(index), "vector": vector.tolist()}) + "\n"
                )
    else:
        np.save(out, vectors)
    if not args.quiet:
        print(f"wrote {vectors.shape[0]} x {vectors.shape[1]} vectors to {out}", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``embed`` subcommand."""
    parser = subparsers.add_parser(
        "embed",
        help="embed texts (one per line, or a JSONL field) into .npy or JSONL",
        description="Embed texts with their instruction. Input: a text file (one text per line) or JSONL "
        "(--field, default 'text'). Output: .npy (float32 matrix) or .jsonl ({id, vector} per line).",
    )
    parser.add_argument("input", help="text file (one per line) or .jsonl")
    parser.add_argument(
        "-o", "--output", required=True, help="output file: .npy (float32 matrix) or .jsonl (one {id, vector} per line)"
    )
    add_model_options(parser, required_model=True)
    parser.add_argument(
        "--kind",
        choices=("query", "document"),
        default="document",
        help="which of the model's instructions to use (default: document)",
    )
    parser.add_argument("--instruction", default=None, help="instruction to use instead of the model's default")
    parser.add_argument("--field", default=None, help="JSONL field holding the text (implies JSONL input)")
    add_batch_size_option(parser)
    parser.add_argument("--no-normalize", action="store_true", help="skip the final L2 normalization")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    parser.set_defaults(func=_run)
