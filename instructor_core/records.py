"""Corpora as records, shared by the vector-store helpers and the CLI.

A record is a mapping ``{"id": str, "text": str, "metadata": {...}}`` (metadata optional), the shape
a JSONL line already has. This module reads corpora into records (JSONL, CSV/TSV, a folder of
``.txt`` files, Python iterables), validates a whole batch before anything is encoded or written
(errors name the record by index and id), cuts an iterable into batches without reading it all, and
overlaps the encoding of one batch with the writing of the previous one (:func:`pipelined`).
No vector-store import happens here.
"""

from __future__ import annotations

import csv
import json
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Literal, TypeVar

__all__ = [
    "NAMESPACE",
    "IngestReport",
    "Record",
    "RecordError",
    "batched",
    "pipelined",
    "point_id",
    "read_corpus",
    "read_csv",
    "read_jsonl",
    "read_text_folder",
    "records_from_texts",
    "validate_batch",
    "validated_batches",
]

T = TypeVar("T")
P = TypeVar("P")

#: Namespace of the deterministic point ids: ``uuid5(NAMESPACE, document_id)``.
NAMESPACE = uuid.UUID("6f0b7d1e-3c1a-5b7e-9c2d-8a4e1f5b2c90")

MetadataMode = Literal["scalar", "json"]
_SCALARS = (str, int, float, bool)


class RecordError(ValueError):
    """A record that cannot be ingested; names the record by position and id.

    Attributes:
        index: Position of the record in the input (0-based, counted over the whole stream).
        record_id: The record's id where it has one, else None.
    """

    def __init__(self, message: str, *, index: int | None = None, record_id: Any = None) -> None:
        where = []
        if index is not None:
            where.append(f"record {index}")
        if record_id is not None:
            where.append(f"id {record_id!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
        self.index = index
        self.record_id = record_id


@dataclass(frozen=True)
class Record:
    """One validated document.

    Attributes:
        id: The document id (the store's key; Qdrant point ids are ``point_id(id)``).
        text: The text to embed, exactly as given.
        metadata: Extra fields kept with the vector.
    """

    id: str
    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestReport:
    """What an ingest did.

    Attributes:
        seen: Records read from the input.
        written: Records upserted into the store (equals ``seen`` when the run completes).
        batches: Upsert calls made.
    """

    seen: int
    written: int
    batches: int


def point_id(document_id: str) -> str:
    """The deterministic point id of a document: ``str(uuid5(NAMESPACE, document_id))``."""
    if not isinstance(document_id, str):
        raise TypeError(f"document id must be a str, got {type(document_id).__name__}")
    return str(uuid.uuid5(NAMESPACE, document_id))


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Yield lists of up to ``size`` items, consuming ``items`` lazily (memory stays one batch)."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"batch size must be a positive int, got {size!r}")
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def pipelined(
    chunks: Iterable[T], prepare: Callable[[T], P], write: Callable[[T, P], None], *, overlap: bool = True
) -> None:
    """``write(chunk, prepare(chunk))`` for every chunk in order, with ``prepare`` of the next chunk
    (the encoding) running in a worker thread while the current one is written.

    ``overlap=False`` runs both in the calling thread, one after the other: the choice for a store
    whose writes compete with the encoder for the same cores (embedded Chroma's writes ran 15%
    slower overlapped on 2 cores than one after the other).

    Writes happen in the calling thread, in order, so a client bound to its thread (an embedded,
    SQLite-backed store) is only ever used from that thread. Reading the next chunk (and validating
    it, when ``chunks`` is a generator that validates) also overlaps the previous encoding. No
    error is lost and nothing is written out of order:

    - if reading a chunk raises, the chunk already encoded is written first, then the error
      propagates: everything read and valid before the failure is stored;
    - if ``prepare`` or ``write`` raises, no later chunk is written.
    """
    if not overlap:
        for chunk in chunks:
            write(chunk, prepare(chunk))
        return
    iterator = iter(chunks)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="instructor-encode") as pool:
        pending = None
        while True:
            try:
                chunk = next(iterator)
            except StopIteration:
                break
            except BaseException:
                if pending is not None:
                    write(pending[0], pending[1].result())
                raise
            future = pool.submit(prepare, chunk)
            if pending is not None:
                try:
                    write(pending[0], pending[1].result())
                except BaseException:
                    future.cancel()
                    raise
            pending = (chunk, future)
        if pending is not None:
            write(pending[0], pending[1].result())


def _check_metadata(metadata: Any, mode: MetadataMode, reserved: Sequence[str], index: int, rid: str) -> dict:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise RecordError(f"metadata must be a mapping, got {type(metadata).__name__}", index=index, record_id=rid)
    out = {}
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise RecordError(f"metadata key {key!r} must be a str", index=index, record_id=rid)
        if key in reserved:
            raise RecordError(
                f"metadata key {key!r} is reserved here (the store keeps the record's {key} under it)",
                index=index,
                record_id=rid,
            )
        if mode == "scalar" and value is not None and not isinstance(value, _SCALARS):
            raise RecordError(
                f"metadata[{key!r}] must be a str, int, float or bool for this store, got {type(value).__name__}",
                index=index,
                record_id=rid,
            )
        if value is not None:
            out[key] = value
    return out


def validate_batch(
    items: Sequence[Any],
    *,
    start: int = 0,
    metadata_values: MetadataMode = "json",
    reserved_metadata_keys: Sequence[str] = (),
) -> list[Record]:
    """Check a whole batch of records before anything of it is encoded or written.

    Args:
        items: Mappings with "id" (str), "text" (str) and optional "metadata" (mapping), or
            :class:`Record` objects.
        start: Stream position of ``items[0]``, so errors name the record's place in the corpus.
        metadata_values: "scalar" (Chroma: str/int/float/bool) or "json" (any JSON value).
        reserved_metadata_keys: Metadata keys the store uses itself (Qdrant: "id", "text").

    Returns:
        The batch as :class:`Record` objects (metadata None values dropped).

    Raises:
        RecordError: Naming the first bad record (index and id): not a mapping, no id or text, a
            non-string id or text, duplicate ids within the batch, bad metadata.
    """
    records: list[Record] = []
    first_seen: dict[str, int] = {}
    for offset, item in enumerate(items):
        index = start + offset
        if isinstance(item, Record):
            rid, text, metadata = item.id, item.text, item.metadata
        elif isinstance(item, Mapping):
            rid, text, metadata = item.get("id"), item.get("text"), item.get("metadata")
            if "id" not in item:
                raise RecordError('has no "id"', index=index)
            if "text" not in item:
                raise RecordError('has no "text"', index=index, record_id=rid)
        else:
            raise RecordError(
                f'must be a mapping {{"id": ..., "text": ..., "metadata": ...}}, got {type(item).__name__}',
                index=index,
            )
        if not isinstance(rid, str) or not rid:
            raise RecordError(
                f"id must be a non-empty str, got {type(rid).__name__}: {rid!r}", index=index, record_id=rid
            )
        if not isinstance(text, str):
            raise RecordError(f"text must be a str, got {type(text).__name__}", index=index, record_id=rid)
        if rid in first_seen:
            raise RecordError(
                f"duplicate id in one batch (also record {start + first_seen[rid]})",
                index=index,
                record_id=rid,
            )
        first_seen[rid] = offset
        clean = _check_metadata(metadata, metadata_values, reserved_metadata_keys, index, rid)
        records.append(Record(rid, text, clean))
    return records


# ---------------------------------------------------------------------------------------------- readers
def validated_batches(
    documents: Iterable[Any],
    size: int,
    *,
    metadata_values: MetadataMode = "json",
    reserved_metadata_keys: Sequence[str] = (),
) -> Iterator[tuple[int, list[Record]]]:
    """``(index of the first record, records)`` for each batch of ``documents``, read lazily and
    validated whole by :func:`validate_batch` (errors name the record's place in the stream)."""
    start = 0
    for chunk in batched(documents, size):
        records = validate_batch(
            chunk, start=start, metadata_values=metadata_values, reserved_metadata_keys=reserved_metadata_keys
        )
        yield start, records
        start += len(records)


def _row_to_record(
    row: Mapping[str, Any],
    where: str,
    number: int,
    id_field: str | None,
    text_field: str,
    metadata_fields: Sequence[str] | None,
) -> dict:
    if text_field not in row:
        raise RecordError(f"{where}: no {text_field!r} field (fields: {sorted(row)})", index=number)
    if id_field is None:
        rid: Any = str(number)
    elif id_field not in row:
        raise RecordError(f"{where}: no {id_field!r} field (fields: {sorted(row)})", index=number)
    else:
        rid = row[id_field]
        if isinstance(rid, int) and not isinstance(rid, bool):
            rid = str(rid)  # JSON numbers as ids: the only conversion made
    if "metadata" in row and isinstance(row["metadata"], Mapping) and metadata_fields is None:
        metadata = dict(row["metadata"])
    else:
        names = metadata_fields if metadata_fields is not None else [k for k in row if k not in (id_field, text_field)]
        missing = [k for k in names if k not in row]
        if missing:
            raise RecordError(f"{where}: no metadata field(s) {missing}", index=number, record_id=rid)
        metadata = {k: row[k] for k in names}
    return {"id": rid, "text": row[text_field], "metadata": metadata}


def read_jsonl(
    path: str | os.PathLike[str],
    *,
    id_field: str | None = "id",
    text_field: str = "text",
    metadata_fields: Sequence[str] | None = None,
) -> Iterator[dict]:
    """Yield records from a JSON-lines file, one object per line, lazily.

    Args:
        path: The file.
        id_field: Field holding the document id (int ids become str); None numbers the lines
            (0-based) instead, which is stable only while the file is.
        text_field: Field holding the text (kept exactly as written).
        metadata_fields: Fields to keep as metadata; None keeps a "metadata" object if the line
            has one, else every other field.
    """
    path = Path(path)
    with path.open(encoding="utf-8") as handle:
        number = 0
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RecordError(f"{path}:{line_no}: not valid JSON ({exc.msg})", index=number) from None
            if not isinstance(row, Mapping):
                raise RecordError(f"{path}:{line_no}: expected a JSON object", index=number)
            yield _row_to_record(row, f"{path}:{line_no}", number, id_field, text_field, metadata_fields)
            number += 1


def read_csv(
    path: str | os.PathLike[str],
    *,
    id_field: str | None = "id",
    text_field: str = "text",
    metadata_fields: Sequence[str] | None = None,
    delimiter: str | None = None,
) -> Iterator[dict]:
    """Yield records from a CSV (or TSV) file with a header row, lazily.

    Args:
        path: The file.
        id_field: Column with the document id; None numbers the data rows (0-based).
        text_field: Column with the text.
        metadata_fields: Columns kept as metadata (strings); None keeps every other column.
        delimiter: Field separator; None takes tab for ``.tsv`` files and comma otherwise.
    """
    path = Path(path)
    sep = delimiter if delimiter is not None else ("\t" if path.suffix.lower() == ".tsv" else ",")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=sep)
        header = reader.fieldnames or []
        for needed in (text_field, id_field):
            if needed is not None and needed not in header:
                raise RecordError(f"{path}: no column {needed!r} in the header {header}")
        for number, row in enumerate(reader):
            yield _row_to_record(row, f"{path}:{number + 2}", number, id_field, text_field, metadata_fields)


def read_text_folder(folder: str | os.PathLike[str], *, pattern: str = "*.txt") -> Iterator[dict]:
    """Yield one record per text file under ``folder`` (recursively, sorted by path).

    The id is the file's path relative to ``folder`` (with "/" separators), the text its whole
    content (UTF-8, unchanged), and the metadata ``{"path": <that relative path>}``.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    for file in sorted(p for p in root.rglob(pattern) if p.is_file()):
        rel = file.relative_to(root).as_posix()
        yield {"id": rel, "text": file.read_text(encoding="utf-8"), "metadata": {"path": rel}}


def read_corpus(
    path: str | os.PathLike[str],
    *,
    id_field: str | None = "id",
    text_field: str = "text",
    metadata_fields: Sequence[str] | None = None,
) -> Iterator[dict]:
    """Records from a corpus path: a ``.jsonl`` file, a ``.csv``/``.tsv`` file or a folder of ``.txt``.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file type is not one of the above.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"corpus not found: {path}")
    if path.is_dir():
        return read_text_folder(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return read_jsonl(path, id_field=id_field, text_field=text_field, metadata_fields=metadata_fields)
    if suffix in (".csv", ".tsv"):
        return read_csv(path, id_field=id_field, text_field=text_field, metadata_fields=metadata_fields)
    raise ValueError(f"{path}: unknown corpus type {suffix!r}; use .jsonl, .csv, .tsv or a folder of .txt files")


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
    number = 0
    for number, text in enumerate(texts):
        rid = str(number) if id_iter is None else next(id_iter, sentinel)
        meta = None if meta_iter is None else next(meta_iter, sentinel)
        if rid is sentinel or meta is sentinel:
            raise RecordError("ids/metadatas are shorter than texts", index=number)
        yield {"id": rid, "text": text, "metadata": meta}
    for name, rest in (("ids", id_iter), ("metadatas", meta_iter)):
        if rest is not None and next(rest, sentinel) is not sentinel:
            raise RecordError(f"{name} is longer than texts")
