"""Reading corpora into records: JSONL, CSV/TSV, a folder of text files, Python iterables.

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
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from instructor_core.errors import InputError, InputFileError, install_hint
from instructor_core.ingest.records import RecordError
from instructor_core.validation import check_text

__all__ = [
    "DEFAULT_TEXT_PATTERNS",
    "SHARD_SUFFIXES",
    "SkippedFile",
    "TextFolderReader",
    "check_text",
    "read_corpus",
    "read_csv",
    "read_jsonl",
    "read_numbered",
    "read_parquet",
    "read_queries",
    "read_text_folder",
    "records_from_texts",
]

#: What a folder ingest reads by default: text and Markdown files, at any depth.
DEFAULT_TEXT_PATTERNS: tuple[str, ...] = ("*.txt", "*.md")
_BOM = "\ufeff"


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
        if line_no == 1 and line.startswith(_BOM):
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
    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
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


# ---------------------------------------------------------------------------------------------- folders
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A path glob as a regex: ``*`` and ``?`` stay within one path segment, ``**/`` spans any
    number of folders (none included), ``[...]`` is a character class."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


@dataclass(frozen=True)
class SkippedFile:
    """A file a folder reader did not read.

    Attributes:
        path: Its path relative to the folder, with "/" separators.
        reason: Why, in a few words ("does not match *.txt, *.md", "not UTF-8 at line 3", ...).
    """

    path: str
    reason: str


class TextFolderReader:
    """One record per text file under a folder (recursively, sorted by path); iterate it.

    The id is the file's path relative to the folder (with "/" separators), the text its whole
    content (UTF-8, unchanged but for a leading byte-order mark), the metadata ``{"path": <that
    relative path>}``. After (or during) iteration :attr:`skipped` lists the files left out, so a
    caller can say what it did not read.

    Args:
        folder: The folder.
        patterns: Glob patterns a file must match (any of them). A pattern without "/" matches the
            file name at any depth ("*.txt"); one with "/" matches the path relative to the folder,
            where ``*`` stays within a folder and ``**/`` spans any number of them ("docs/*.md",
            "docs/**/*.md"). Default: ``*.txt`` and ``*.md``.
        on_unreadable: "error" (default) raises :class:`RecordError` naming the file and line for a
            file that is not UTF-8 or cannot be opened; "skip" lists it in :attr:`skipped` and goes on.

    Raises:
        FileNotFoundError: If ``folder`` is not a folder.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        patterns: str | Sequence[str] = DEFAULT_TEXT_PATTERNS,
        on_unreadable: Literal["error", "skip"] = "error",
    ) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{self.folder} is not a folder")
        self.patterns = (patterns,) if isinstance(patterns, str) else tuple(patterns)
        if not self.patterns or not all(isinstance(p, str) and p for p in self.patterns):
            raise InputError(f"patterns must be non-empty glob strings, got {patterns!r}")
        if on_unreadable not in ("error", "skip"):
            raise InputError(f"on_unreadable must be 'error' or 'skip', got {on_unreadable!r}")
        self.on_unreadable = on_unreadable
        #: Files left out so far, in path order: not matching the patterns, or unreadable ("skip").
        self.skipped: list[SkippedFile] = []

    def _matches(self, rel: str) -> bool:
        name = rel.rsplit("/", 1)[-1]
        return any(_glob_regex(p).fullmatch(rel if "/" in p else name) for p in self.patterns)

    def _unreadable(self, rel: str, reason: str, number: int) -> None:
        if self.on_unreadable == "error":
            raise RecordError(f"{self.folder / rel}: {reason}", index=number)
        self.skipped.append(SkippedFile(rel, reason))

    def __iter__(self) -> Iterator[dict]:
        self.skipped = []
        files = sorted(
            (p.relative_to(self.folder).as_posix() for p in self.folder.rglob("*") if p.is_file()),
            key=lambda rel: rel.split("/"),
        )
        wanted = ", ".join(self.patterns)
        number = 0
        for rel in files:
            if not self._matches(rel):
                self.skipped.append(SkippedFile(rel, f"does not match {wanted}"))
                continue
            try:
                data = (self.folder / rel).read_bytes()
            except OSError as exc:
                self._unreadable(rel, f"cannot be read ({exc.strerror or exc})", number)
                continue
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                line = data.count(b"\n", 0, exc.start) + 1
                self._unreadable(rel, f"not UTF-8 at line {line} (byte 0x{data[exc.start]:02x})", number)
                continue
            if text.startswith(_BOM):
                text = text[1:]
            if not text.strip():  # nothing to embed or find: listed with the skipped files
                self.skipped.append(SkippedFile(rel, "empty (whitespace only)"))
                continue
            yield {"id": rel, "text": text, "metadata": {"path": rel}}
            number += 1


def read_text_folder(
    folder: str | os.PathLike[str],
    *,
    pattern: str | Sequence[str] = DEFAULT_TEXT_PATTERNS,
    on_unreadable: Literal["error", "skip"] = "error",
) -> Iterator[dict]:
    """Yield one record per text file under ``folder``; see :class:`TextFolderReader` (which also
    reports the files it skipped)."""
    return iter(TextFolderReader(folder, patterns=pattern, on_unreadable=on_unreadable))


def read_corpus(
    path: str | os.PathLike[str],
    *,
    id_field: str | None = "id",
    text_field: str = "text",
    metadata_fields: Sequence[str] | None = None,
    title_field: str | None = None,
    patterns: str | Sequence[str] = DEFAULT_TEXT_PATTERNS,
) -> Iterable[dict]:
    """Records from a corpus path: a ``.jsonl`` file, a ``.csv``/``.tsv`` file or a folder of text files.

    For a folder the result is a :class:`TextFolderReader` (its ``skipped`` lists what it left
    out, filled as it is iterated); ``patterns`` selects its files. ``title_field`` applies to
    JSONL and CSV.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file type is not one of the above.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"corpus not found: {path}")
    if path.is_dir():
        return TextFolderReader(path, patterns=patterns)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return read_jsonl(
            path, id_field=id_field, text_field=text_field, metadata_fields=metadata_fields, title_field=title_field
        )
    if suffix in (".csv", ".tsv"):
        return read_csv(
            path, id_field=id_field, text_field=text_field, metadata_fields=metadata_fields, title_field=title_field
        )
    raise InputError(f"{path}: unknown corpus type {suffix!r}; use .jsonl, .csv, .tsv or a folder of text files")


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
        if not source.is_file():
            raise InputFileError(f"--queries: no file {path}")
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
