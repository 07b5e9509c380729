"""Reading corpora into records: JSONL, CSV/TSV, Parquet, a folder of shards or of text files, a
glob, Python iterables. :func:`open_corpus` (with :class:`ReadOptions`) is the one front door every
engine reads through: :func:`corpus_shards` says what a path means, the same for all of them.

A record is a mapping ``{"id": str, "text": str, "metadata": {...}}``. Every reader is lazy (memory
stays one record) and refuses what it cannot read faithfully, naming the file, the line and the
record (0-based position in the stream) — and yields every valid record before the bad one first:

- bytes that are not UTF-8 (files are read as bytes and decoded one line at a time);
- a CSV quote that is never closed, a CSV row with fewer or more fields than the header;
- a JSONL line that is not a JSON object.

A UTF-8 byte-order mark at the start of a file is an encoding marker, not text: it is dropped
(so a CSV header ``\\ufeffid`` is the column ``id``). BEIR corpora read as they are: ``_id`` serves
as the id where a line has no ``id``, and ``title_field`` joins a title to the text the way the
retrieval evaluation does (``title + " " + text``; an empty title leaves the text alone).
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from instructor_core.errors import InputError, install_hint
from instructor_core.ingest.folders import (
    BOM,
    DEFAULT_TEXT_PATTERNS,
    SkippedFile,
    TextFolderReader,
    files_inside,
    read_text_folder,
)
from instructor_core.ingest.records import RecordError
from instructor_core.safe_paths import check_input_file
from instructor_core.validation import check_text

__all__ = [
    "DEFAULT_TEXT_PATTERNS",
    "SHARD_SUFFIXES",
    "TEXT_FOLDER",
    "ReadOptions",
    "SkippedFile",
    "TextFolderReader",
    "check_text",
    "corpus_shards",
    "files_inside",
    "open_corpus",
    "read_corpus",
    "read_csv",
    "read_jsonl",
    "read_numbered",
    "read_parquet",
    "read_queries",
    "read_text_folder",
    "records_from_texts",
]


# ---------------------------------------------------------------------------------------------- lines


def _json_error(exc: json.JSONDecodeError) -> str:
    """``Invalid control character at line 1 column 12``: json's reason with where in the line it failed
    (its message alone ends in "at", the position cut off)."""
    return f"{exc.msg.removesuffix(' at')} at line {exc.lineno} column {exc.colno}"


def _decoded_lines(handle: BinaryIO, path: Path, position: list[int]) -> Iterator[str]:
    """The file's lines as str (line endings kept), decoded one by one, BOM dropped.

    ``position`` is ``[records yielded so far]``, read when a line does not decode, so the error
    names the record the bad line belongs to.
    """
    for line_no, raw in enumerate(handle, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RecordError(
                f"{path}:{line_no}: not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                "convert the file to UTF-8",
                index=position[0],
            ) from None
        if line_no == 1 and line.startswith(BOM):
            line = line[1:]
        yield line


# ---------------------------------------------------------------------------------------------- rows
def _row_to_record(
    row: Mapping[str, Any],
    where: str,
    number: int,
    id_field: str | None,
    text_field: str,
    metadata_fields: Sequence[str] | None,
    title_field: str | None = None,
) -> dict:
    if text_field not in row:
        raise RecordError(f"{where}: no {text_field!r} field (fields: {sorted(row)})", index=number)
    if id_field == "id" and "id" not in row and "_id" in row:
        id_field = "_id"  # a BEIR corpus as it is
    if id_field is None:
        rid: Any = str(number)
    elif id_field not in row:
        raise RecordError(f"{where}: no {id_field!r} field (fields: {sorted(row)})", index=number)
    else:
        rid = row[id_field]
        if isinstance(rid, int) and not isinstance(rid, bool):
            rid = str(rid)  # JSON numbers as ids: the only conversion made
    text = row[text_field]
    if title_field is not None:
        title = row.get(title_field)
        if title is not None and not isinstance(title, str):
            raise RecordError(
                f"{where}: {title_field!r} must be a str, got {type(title).__name__}", index=number, record_id=rid
            )
        if title and isinstance(text, str):
            text = f"{title} {text}"  # as the retrieval evaluation joins them (MTEB's order)
    if "metadata" in row and isinstance(row["metadata"], Mapping) and metadata_fields is None:
        metadata = dict(row["metadata"])
    else:
        names = metadata_fields if metadata_fields is not None else [k for k in row if k not in (id_field, text_field)]
        missing = [k for k in names if k not in row]
        if missing:
            raise RecordError(f"{where}: no metadata field(s) {missing}", index=number, record_id=rid)
        metadata = {k: row[k] for k in names}
    return {"id": rid, "text": text, "metadata": metadata}


def read_jsonl(
    path: str | os.PathLike[str],
    *,
    id_field: str | None = "id",
    text_field: str = "text",
    metadata_fields: Sequence[str] | None = None,
    title_field: str | None = None,
) -> Iterator[dict]:
    """Yield records from a JSON-lines file, one object per line, lazily.

    Args:
        path: The file (UTF-8; a leading byte-order mark is dropped).
        id_field: Field holding the document id (int ids become str); with the default "id", a
            line without "id" but with "_id" (BEIR) uses "_id". None numbers the lines (0-based)
            instead, which is stable only while the file is.
        text_field: Field holding the text (kept exactly as written).
        metadata_fields: Fields to keep as metadata; None keeps a "metadata" object if the line
            has one, else every other field.
        title_field: A field joined before the text as ``title + " " + text`` (BEIR's "title",
            joined as the retrieval evaluation joins it); an empty or missing title leaves the text
            alone. None (default) joins nothing.

    Raises:
        RecordError: Naming ``file:line`` and the record: bytes that are not UTF-8, a line that
            is not a JSON object, a missing field. Every record before it has been yielded.
    """
    for _, record in _jsonl_numbered(Path(path), id_field, text_field, metadata_fields, title_field):
        yield record


def _jsonl_numbered(
    path: Path,
    id_field: str | None,
    text_field: str,
    metadata_fields: Sequence[str] | None,
    title_field: str | None,
) -> Iterator[tuple[int, dict]]:
    """``read_jsonl``'s records with the line each was read from (1-based)."""
    position = [0]
    with path.open("rb") as handle:
        for line_no, line in enumerate(_decoded_lines(handle, path, position), start=1):
            if not line.strip():
                continue
            number = position[0]
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RecordError(f"{path}:{line_no}: not valid JSON ({_json_error(exc)})", index=number) from None
            except RecursionError:
                raise RecordError(f"{path}:{line_no}: the JSON is nested too deeply to read", index=number) from None
            if not isinstance(row, Mapping):
                raise RecordError(f"{path}:{line_no}: expected a JSON object", index=number)
            where = f"{path}:{line_no}"
            yield line_no, _row_to_record(row, where, number, id_field, text_field, metadata_fields, title_field)
            position[0] += 1


def read_csv(
    path: str | os.PathLike[str],
    *,
    id_field: str | None = "id",
    text_field: str = "text",
    metadata_fields: Sequence[str] | None = None,
    delimiter: str | None = None,
    title_field: str | None = None,
) -> Iterator[dict]:
    """Yield records from a CSV (or TSV) file with a header row, lazily.

    Args:
        path: The file (UTF-8; a byte-order mark before the header is dropped).
        id_field: Column with the document id; with the default "id", a header without "id" but
            with "_id" uses "_id". None numbers the data rows (0-based).
        text_field: Column with the text.
        metadata_fields: Columns kept as metadata (strings); None keeps every other column.
        delimiter: Field separator; None takes tab for ``.tsv`` files and comma otherwise.
        title_field: A column joined before the text as ``title + " " + text``; see :func:`read_jsonl`.

    Raises:
        RecordError: Naming ``file:line`` and the record: bytes that are not UTF-8, a quote never
            closed, a row with fewer or more fields than the header, a missing column. Every
            record before it has been yielded. Blank lines are skipped.
    """
    for _, record in _csv_numbered(Path(path), id_field, text_field, metadata_fields, delimiter, title_field):
        yield record


def _csv_numbered(
    path: Path,
    id_field: str | None,
    text_field: str,
    metadata_fields: Sequence[str] | None,
    delimiter: str | None,
    title_field: str | None,
) -> Iterator[tuple[int, dict]]:
    """``read_csv``'s records with the line each record starts on (1-based)."""
    sep = delimiter if delimiter is not None else ("\t" if path.suffix.lower() == ".tsv" else ",")
    position = [0]
    with path.open("rb") as handle:
        reader = csv.reader(_decoded_lines(handle, path, position), delimiter=sep, strict=True)
        try:
            header = next(reader, None) or []
        except csv.Error as exc:
            raise RecordError(f"{path}:1: the header is not valid CSV ({exc})") from None
        for needed in (text_field, id_field):
            if needed is not None and needed not in header and not (needed == "id" and "_id" in header):
                raise RecordError(f"{path}: no column {needed!r} in the header {header}")
        duplicated = sorted({name for name in header if header.count(name) > 1})
        if duplicated:
            raise RecordError(f"{path}:1: the header names column(s) {duplicated} more than once")
        end = reader.line_num
        while True:
            start = end + 1
            number = position[0]
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                if "unexpected end of data" in str(exc):
                    problem = "a quote opened in this record is never closed (it runs to the end of the file)"
                else:
                    problem = f"not valid CSV ({exc})"
                raise RecordError(f"{path}:{start}: {problem}", index=number) from None
            end = reader.line_num
            if not fields:
                continue  # a blank line
            if len(fields) != len(header):
                lines = f"{start}" if end == start else f"{start}-{end}"
                raise RecordError(
                    f"{path}:{lines}: the row has {len(fields)} field(s), the header {len(header)} "
                    "(a stray delimiter, a missing field, or a quote that swallowed a line break)",
                    index=number,
                )
            row = dict(zip(header, fields, strict=True))
            where = f"{path}:{start}"
            yield start, _row_to_record(row, where, number, id_field, text_field, metadata_fields, title_field)
            position[0] += 1


def read_parquet(
    path: str | os.PathLike[str],
    *,
    id_field: str | None = "id",
    text_field: str = "text",
    metadata_fields: Sequence[str] | None = None,
    title_field: str | None = None,
) -> Iterator[dict]:
    """Yield records from a Parquet file, one row group batch at a time (needs pyarrow).

    The fields and the id fallback are :func:`read_jsonl`'s; an error names ``file: row N`` (1-based).

    Raises:
        ImportError: pyarrow is not installed (the message names the extra).
        RecordError: A missing field, naming the file and the row.
    """
    for _, record in _parquet_numbered(Path(path), id_field, text_field, metadata_fields, title_field):
        yield record


def _parquet_numbered(
    path: Path,
    id_field: str | None,
    text_field: str,
    metadata_fields: Sequence[str] | None,
    title_field: str | None,
) -> Iterator[tuple[int, dict]]:
    """``read_parquet``'s records with their row number (1-based)."""
    try:
        pq = importlib.import_module("pyarrow.parquet")  # untyped; optional
    except ImportError as exc:
        raise ImportError(f"{path}: reading Parquet needs pyarrow: {install_hint('ray')}") from exc
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError: not a Parquet file
        raise InputError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0][:200]})") from None
    number = 0
    for batch in parquet.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            where = f"{path}: row {number + 1}"
            yield number + 1, _row_to_record(row, where, number, id_field, text_field, metadata_fields, title_field)
            number += 1


#: The shard kinds :func:`read_numbered` reads, by file suffix.
SHARD_SUFFIXES: dict[str, str] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
}


def read_numbered(
    path: str | os.PathLike[str],
    *,
    id_field: str | None = "id",
    text_field: str = "text",
    metadata_fields: Sequence[str] | None = None,
    title_field: str | None = None,
) -> Iterator[tuple[int, dict]]:
    """``(line, record)`` pairs of a JSONL, CSV/TSV or Parquet file, read by :func:`read_jsonl`,
    :func:`read_csv` or :func:`read_parquet` (``line``: the 1-based line a record starts on; a
    Parquet row's number). A distributed reader names a record's position with it.

    Raises:
        InputError: A file of another kind.
        RecordError: As the reader of its kind raises.
    """
    path = Path(path)
    kind = SHARD_SUFFIXES.get(path.suffix.lower())
    if kind == "jsonl":
        return _jsonl_numbered(path, id_field, text_field, metadata_fields, title_field)
    if kind == "csv":
        return _csv_numbered(path, id_field, text_field, metadata_fields, None, title_field)
    if kind == "parquet":
        return _parquet_numbered(path, id_field, text_field, metadata_fields, title_field)
    raise InputError(f"{path}: unknown shard type {path.suffix!r}; use {', '.join(SHARD_SUFFIXES)}")


@dataclass(frozen=True)
class ReadOptions:
    """How a corpus' records are read: the same for every engine (the ``ingest`` options).

    Attributes:
        id_field: Field with the id ("id" falls back to BEIR's "_id"); None numbers the records,
            which is refused for several shards (their numbers would collide).
        text_field: Field with the text.
        metadata_fields: Fields kept as metadata; None: every other field (or a "metadata" object).
        title_field: Field joined before the text as ``title + " " + text`` (JSONL, CSV, Parquet).
        patterns: A text folder's file patterns.
    """

    id_field: str | None = "id"
    text_field: str = "text"
    metadata_fields: tuple[str, ...] | None = None
    title_field: str | None = None
    patterns: tuple[str, ...] = DEFAULT_TEXT_PATTERNS


#: The kinds of corpus a path can name, as :func:`corpus_shards` says them.
TEXT_FOLDER = "text folder"


def _shard_kind(path: Path) -> str | None:
    return TEXT_FOLDER if path.is_dir() else SHARD_SUFFIXES.get(path.suffix.lower())


def corpus_shards(corpus: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    """What a corpus path means, for every engine: its shards, as absolute paths.

    A file of a kind the readers know (:data:`SHARD_SUFFIXES`) is one shard; a glob (``*``, ``?``,
    ``[``) its matching files; a folder the shard files under it (links out of it not followed), or,
    holding none, itself: a folder of text files, read as one shard. A list is the union, in order.

    Raises:
        FileNotFoundError: A path that does not exist, a glob that matches nothing.
        InputError: A file of an unknown kind; shards of several kinds.
    """
    import glob

    items = [corpus] if isinstance(corpus, (str, os.PathLike)) else list(corpus)
    files: list[str] = []
    for item in items:
        text = os.fspath(item)
        path = Path(text)
        if any(ch in text for ch in "*?[") and not path.exists():
            matched = sorted(glob.glob(text, recursive=True))
            if not matched:
                raise FileNotFoundError(f"corpus glob {text!r} matches no file")
            files.extend(matched)
        elif path.is_dir():
            inside = [rel for rel in files_inside(path)[0] if Path(rel).suffix.lower() in SHARD_SUFFIXES]
            files.extend([str(path / rel) for rel in inside] or [text])
        elif path.exists():
            files.append(text)
        else:
            raise FileNotFoundError(f"corpus not found: {text}")
    unknown = [f for f in files if _shard_kind(Path(f)) is None][:3]
    if unknown:
        raise InputError(
            f"unknown corpus type {Path(unknown[0]).suffix or 'no suffix'!r} ({', '.join(unknown)}); use "
            f"{', '.join(SHARD_SUFFIXES)} files or a folder of text files"
        )
    kinds = sorted({_shard_kind(Path(f)) or "" for f in files})
    if len(kinds) > 1:
        raise InputError(f"corpus mixes file kinds {kinds}; give shards of one kind")
    return [str(Path(f).resolve()) for f in files]


def open_corpus(
    corpus: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], options: ReadOptions | None = None
) -> Iterable[dict]:
    """The records of a corpus (:func:`corpus_shards` says what the path means), read lazily shard
    by shard with ``options``: the front door every engine reads through.

    A folder of text files gives a :class:`TextFolderReader` (its ``skipped`` lists what it left out).

    Raises:
        FileNotFoundError, InputError: As :func:`corpus_shards`; ``id_field=None`` with several shards.
        RecordError: As the reader of each kind raises.
    """
    options = options or ReadOptions()
    shards = corpus_shards(corpus)
    if len(shards) == 1 and Path(shards[0]).is_dir():
        return TextFolderReader(shards[0], patterns=options.patterns)
    if options.id_field is None and len(shards) > 1:
        raise InputError(f"the corpus has {len(shards)} shards: give each record an id field (--id-field)")
    return _shard_records(shards, options)


def _shard_records(shards: Sequence[str], options: ReadOptions) -> Iterator[dict]:
    for shard in shards:
        for _, record in read_numbered(
            shard,
            id_field=options.id_field,
            text_field=options.text_field,
            metadata_fields=options.metadata_fields,
            title_field=options.title_field,
        ):
            yield record


def read_corpus(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    id_field: str | None = "id",
    text_field: str = "text",
    metadata_fields: Sequence[str] | None = None,
    title_field: str | None = None,
    patterns: str | Sequence[str] = DEFAULT_TEXT_PATTERNS,
) -> Iterable[dict]:
    """Records from a corpus path: :func:`open_corpus` with these options spelled as keywords.

    A JSONL/CSV/TSV/Parquet file, a folder of such shards, a glob, or a folder of text files (the
    result is then a :class:`TextFolderReader`: its ``skipped`` lists what it left out, filled as it
    is iterated; ``patterns`` selects its files).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file type is not one the readers know.
    """
    options = ReadOptions(
        id_field=id_field,
        text_field=text_field,
        metadata_fields=None if metadata_fields is None else tuple(metadata_fields),
        title_field=title_field,
        patterns=(patterns,) if isinstance(patterns, str) else tuple(patterns),
    )
    return open_corpus(path, options)


def records_from_texts(
    texts: Iterable[str],
    ids: Iterable[str] | None = None,
    metadatas: Iterable[Mapping[str, Any] | None] | None = None,
) -> Iterator[dict]:
    """Zip plain Python iterables into records, lazily.

    Args:
        texts: The texts.
        ids: Their ids; None numbers them ("0", "1", ...). Must be as long as ``texts``.
        metadatas: Their metadata; None gives none. Must be as long as ``texts``.
    """
    id_iter = iter(ids) if ids is not None else None
    meta_iter = iter(metadatas) if metadatas is not None else None
    sentinel = object()
    for number, text in enumerate(texts):
        rid = str(number) if id_iter is None else next(id_iter, sentinel)
        meta = None if meta_iter is None else next(meta_iter, sentinel)
        if rid is sentinel or meta is sentinel:
            raise RecordError("ids/metadatas are shorter than texts", index=number)
        yield {"id": rid, "text": text, "metadata": meta}
    for name, rest in (("ids", id_iter), ("metadatas", meta_iter)):
        if rest is not None and next(rest, sentinel) is not sentinel:
            raise RecordError(f"{name} is longer than texts")


# ---------------------------------------------------------------------------------------------- queries
def read_queries(path: str) -> list[tuple[str, str]]:
    """``(query_id, text)`` pairs from a queries file, in file order (``instructor search --queries``).

    A ``.jsonl``/``.ndjson`` file holds one object per line with a ``"text"`` string and an
    optional ``"id"`` (or BEIR's ``"_id"``); any other file (or ``-``, stdin) holds one query per
    line, kept as written but for the line ending. The id is the line's ``id``/``_id``, else its
    line number (1-based). Blank lines are skipped. Lines are decoded as the corpus readers decode
    them (UTF-8, a leading BOM dropped).

    Raises:
        InputFileError: The file does not exist.
        RecordError: Naming ``file:line``: not UTF-8.
        InputError: Naming ``file:line``: not a JSON object, no string ``"text"``; or no query at all.
    """
    if path == "-":
        handle: BinaryIO = io.BytesIO(
            sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
        )
        where = Path("<stdin>")
    else:
        source = Path(path)
        check_input_file(source, "--queries")  # a named pipe or <(command) is read, a folder refused
        handle = source.open("rb")
        where = source
    is_jsonl = Path(path).suffix.lower() in (".jsonl", ".ndjson")
    out: list[tuple[str, str]] = []
    with handle:
        for line_no, line in enumerate(_decoded_lines(handle, where, [0]), start=1):
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            if not is_jsonl:
                out.append((str(line_no), text))
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(f"{where}:{line_no}: not valid JSON ({_json_error(exc)})") from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise InputError(f"{where}:{line_no}: expected a JSON object with a string field 'text'")
            out.append((str(row.get("id", row.get("_id", line_no))), row["text"]))
    if not out:
        raise InputError(f"--queries {where}: no queries in it")
    return out
