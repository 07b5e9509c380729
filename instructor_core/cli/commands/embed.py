"""``instructor embed``: embed texts from a file into a .npy matrix or JSONL vectors."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from instructor_core.errors import InputError
from instructor_core.ingest.chunking import TruncationTally, watching
from instructor_core.safe_paths import atomic_output, check_input_file, same_file

if TYPE_CHECKING:
    import numpy as np
from instructor_core.cli.commands.options import add_batch_size_option, add_model_options, add_prompt_name_option
from instructor_core.model.quantization import PRECISIONS

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
                raise InputError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
            key = field or "text"
            if not isinstance(row, dict) or not isinstance(row.get(key), str):
                raise InputError(f"{path}:{number}: expected an object with a string field {key!r}")
            texts.append(row[key])
            row_id = row.get("id", row.get("_id"))
            ids.append(None if row_id is None else str(row_id))
    return texts, ids


def _check_output(output: str, source: Path) -> Path | None:
    """The output path (None: stdout), checked before anything is read or loaded.

    Raises:
        ValueError: An unknown suffix, or an output that is the input file itself.
        FileNotFoundError: The output's folder does not exist (it is not created silently).
    """
    if output == "-":
        return None
    out = Path(output)
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(
            f"-o {output!r}: expected a file ending in .npy (float32 matrix), .jsonl or .ndjson "
            f"(one {{id, vector}} per line), or - (JSONL on stdout); got {out.suffix or 'no suffix'!r}"
        )
    if out.exists() and same_file(out, source):
        raise InputError(f"-o {output!r} is the input file itself; write the vectors to another file")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"-o {output!r}: folder {parent} does not exist (it is not created for you)")
    return out


def _jsonl_lines(ids: list[str | None], vectors: np.ndarray) -> Iterator[str]:
    for index, (row_id, vector) in enumerate(zip(ids, vectors, strict=True)):
        yield json.dumps({"id": row_id if row_id is not None else str(index), "vector": vector.tolist()}) + "\n"


def _write(out: Path | None, ids: list[str | None], vectors: np.ndarray) -> None:
    """Write the vectors: JSONL to stdout, or atomically (temporary file, then rename) to ``out``."""
    import numpy as np

    if out is None:
        sys.stdout.writelines(_jsonl_lines(ids, vectors))
        sys.stdout.flush()
        return
    if out.suffix.lower() == ".npy":
        with atomic_output(out, "wb", what="-o") as handle:
            np.save(handle, vectors)  # a handle, not a name: np.save would append .npy to "q.NPY"
        return
    with atomic_output(out, "w", what="-o") as handle:
        handle.writelines(_jsonl_lines(ids, vectors))


def _run(args: argparse.Namespace) -> int:
    from instructor_core.cli.commands.options import load_encoder

    if getattr(args, "server", None) and args.model is not None:
        raise InputError(f"pass --model or --server, not both (--server {args.server} serves its own model)")
    source = Path(args.input)
    check_input_file(source, "input file")
    if args.prompt_name is not None and args.instruction is not None:
        raise InputError("pass --prompt-name or --instruction, not both")
    out = _check_output(args.output, source)
    texts, ids = read_texts(source, args.field)
    if args.precision in ("int8", "uint8") and len(texts) < 2:
        raise InputError(
            f"--precision {args.precision} takes its value ranges from the texts embedded together: give at least "
            f"two texts (got {len(texts)}), or use float32"
        )
    encoder = load_encoder(args)
    encode = encoder.encode_queries if args.kind == "query" else encoder.encode_documents
    with watching(encoder) as flags:  # which texts the model cut at its max length, from its own tokenization
        vectors = encode(
            texts,
            args.instruction,
            prompt_name=args.prompt_name,
            batch_size=args.batch_size,
            normalize=not args.no_normalize,
            show_progress=not args.quiet,
            precision=args.precision,
        )
    _write(out, ids, vectors)
    if not args.quiet:
        tally = TruncationTally()
        tally.add(_labels(source, ids), flags)
        cut = tally.describe(getattr(encoder, "max_length", None))
        summary = f"wrote {vectors.shape[0]} x {vectors.shape[1]} vectors to {out or 'stdout'}"
        print(f"{summary} ({cut})" if cut else summary, file=sys.stderr)
    return 0


def _labels(source: Path, ids: list[str | None]) -> list[str]:
    """How the summary names a text: its JSONL id, else its line number (a text file has one text a line)."""
    return [row_id if row_id is not None else f"{source.name}:{n}" for n, row_id in enumerate(ids, start=1)]


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
        "-o",
        "--output",
        required=True,
        help="output file: .npy (float32 matrix) or .jsonl/.ndjson (one {id, vector} per line), any case; "
        "- writes JSONL to stdout. Written atomically; its folder must exist; never one of the inputs",
    )
    add_model_options(parser, required_model=True, server=True)
    parser.add_argument(
        "--kind",
        choices=("query", "document"),
        default="document",
        help="which of the model's instructions to use (default: document)",
    )
    parser.add_argument("--instruction", default=None, help="instruction to use instead of the model's default")
    add_prompt_name_option(parser)
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="float32",
        help="float32 (default), or quantized as sentence-transformers' encode(precision=...): int8/uint8 "
        "(256 buckets a dimension over this file's vectors), binary/ubinary (one bit a dimension, packed)",
    )
    parser.add_argument("--field", default=None, help="JSONL field holding the text (implies JSONL input)")
    add_batch_size_option(parser)
    parser.add_argument("--no-normalize", action="store_true", help="skip the final L2 normalization")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    parser.set_defaults(func=_run)
