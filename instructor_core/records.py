"""Corpora as records, shared by the vector-store helpers and the CLI.

A record is a mapping ``{"id": str, "text": str, "metadata": {...}}`` (metadata optional), the shape
a JSONL line already has. The readers (JSONL, CSV/TSV, a folder of text files, Python iterables)
live in :mod:`instructor_core.readers` and are re-exported here. This module validates a whole
batch before anything is encoded or written (errors name the record by index and id), cuts an
iterable into batches without reading it all, and overlaps the encoding of one batch with the
writing of the previous one (:func:`pipelined`).
No vector-store import happens here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:  # the readers moved to instructor_core.readers; re-exported lazily below
    from .readers import read_corpus, read_csv, read_jsonl, read_text_folder, records_from_texts

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


# ---------------------------------------------------------------------------------------------- readers
# The readers live in instructor_core.readers (which imports RecordError from here); they stay
# importable from this module, loaded on first use so neither module imports the other at load.
_READERS = frozenset(
    {"read_corpus", "read_csv", "read_jsonl", "read_text_folder", "records_from_texts", "_row_to_record"}
)


def __getattr__(name: str) -> Any:
    if name in _READERS:
        from . import readers

        return getattr(readers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
