"""Corpora as records, shared by the vector-store helpers and the CLI.

A record is a mapping ``{"id": str, "text": str, "metadata": {...}}`` (metadata optional), the shape
a JSONL line already has. The readers (JSONL, CSV/TSV, a folder of text files, Python iterables)
live in :mod:`instructor_core.ingest.readers`. This module validates a whole
batch before anything is encoded or written (errors name the record by index and id, under a
store's :class:`RecordRules`) and cuts an iterable into batches without reading it all; the ingest
engine (:mod:`instructor_core.ingest.engine`) runs them.
No vector-store import happens here.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Literal, TypeVar

from instructor_core.errors import InputTypeError, InstructorError
from instructor_core.validation import check_positive_int, check_text

__all__ = [
    "HASH_KEY",
    "NAMESPACE",
    "Record",
    "RecordError",
    "RecordRules",
    "batched",
    "content_hash",
    "point_id",
    "validate_batch",
]

T = TypeVar("T")

#: Namespace of the deterministic point ids: ``uuid5(NAMESPACE, document_id)``.
NAMESPACE = uuid.UUID("6f0b7d1e-3c1a-5b7e-9c2d-8a4e1f5b2c90")

#: The metadata / payload key every store keeps a point's :func:`content_hash` under (reserved: a
#: record's own metadata key of this name is refused by each store's :class:`RecordRules`; searches
#: never show it as metadata).
HASH_KEY = "_instructor_hash"
#: Hex digits of a content hash kept: 128 bits. The hash is only ever compared with the hash stored
#: for the same id, so a wrong "unchanged" needs a 2**-128 collision; 32 characters per point.
HASH_HEX_DIGITS = 32

MetadataMode = Literal["scalar", "json"]
_SCALARS = (str, int, float, bool)


class RecordError(InstructorError, ValueError):
    """A record that cannot be ingested; names the record by position and id.

    Attributes:
        index: Position of the record in the input (0-based, counted over the whole stream).
        record_id: The record's id where it has one, else None.
    """

    def __init__(self, message: str, *, index: int | None = None, record_id: object = None) -> None:
        where = []
        if index is not None:
            where.append(f"record {index}")
        if record_id is not None:
            where.append(f"id {record_id!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
        self.reason = message
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
class RecordRules:
    """What a store accepts in a record's metadata; :func:`validate_batch` refuses the rest, naming
    the record and the key, before anything of the batch is written.

    Attributes:
        metadata_values: "scalar" (str/int/float/bool values, Chroma) or "json" (any JSON value).
        reserved_keys: Keys the store uses itself (Qdrant keeps "id" and "text" in the payload).
        reserved_prefixes: Key prefixes the store uses itself (Chroma: "chroma:").
        finite_numbers: Refuse NaN and infinite floats (a store that would drop or change them).
        int_bits: Refuse integers outside a signed integer of this many bits (Chroma: 64); None
            for no limit.
        empty_keys: Allow the empty string as a key.
        dotted_keys: Allow a '.' in a key. Qdrant reads ``a.b`` in a filter as a path into a nested
            value, so a top-level key with a dot is stored but never matches a filter: refused there.
    """

    metadata_values: MetadataMode = "json"
    reserved_keys: tuple[str, ...] = ()
    reserved_prefixes: tuple[str, ...] = ()
    finite_numbers: bool = False
    int_bits: int | None = None
    empty_keys: bool = True
    dotted_keys: bool = True


def point_id(document_id: str) -> str:
    """The deterministic point id of a document: ``str(uuid5(NAMESPACE, document_id))``."""
    if not isinstance(document_id, str):
        raise InputTypeError(f"document id must be a str, got {type(document_id).__name__}")
    return str(uuid.uuid5(NAMESPACE, document_id))


def content_hash(record: Record) -> str:
    """The hash a store keeps with a record's point, so a re-run can skip what is stored unchanged.

    sha256 over the canonical JSON of ``{"text": ..., "metadata": ...}``: the text as written to the
    store (after a title is joined to it by the reader) and the metadata with sorted keys, compact
    separators and Unicode kept as is (values that are not JSON are written as ``str(value)``). The
    id is not in it: it is compared with the hash stored under the same id. The model and the
    instructions are not either: a collection refuses another model or instruction before any write.

    Returns:
        The first :data:`HASH_HEX_DIGITS` hex digits (128 bits).
    """
    canonical = json.dumps(
        {"text": record.text, "metadata": dict(record.metadata)},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_HEX_DIGITS]


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Yield lists of up to ``size`` items, consuming ``items`` lazily (memory stays one batch).

    When reading an item raises, the items of the batch read before it are yielded first, then the
    error propagates: a reader's error never loses the valid records in front of it."""
    check_positive_int(size, "batch size")
    iterator = iter(items)
    while True:
        chunk: list[T] = []
        try:
            chunk.extend(islice(iterator, size))
        except Exception:
            if chunk:  # the items read before the error are not lost: yield them, then the error
                yield chunk
            raise
        if not chunk:
            return
        yield chunk


#: Deepest nesting of a metadata value (lists and objects) a record may have: deeper ones are
#: refused by name rather than handed to a store's serializer (which may recurse without limit).
MAX_METADATA_DEPTH = 64


def _deeper_than(value: object, limit: int) -> bool:
    """Whether ``value`` nests lists/mappings more than ``limit`` levels (iterative: no recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Iterable[object] = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _key_problem(key: object, rules: RecordRules) -> str | None:
    """Why ``key`` cannot be a metadata key in a store with ``rules``, or None."""
    if not isinstance(key, str):
        return f"metadata key {key!r} must be a str"
    if key == "" and not rules.empty_keys:
        return "metadata key '' (empty) is not accepted by this store"
    if not rules.dotted_keys and "." in key:
        return (
            f"metadata key {key[:80]!r} has a '.', which this store reads as a path into a nested value in a "
            f"filter: it would be stored but never found; rename it (e.g. {key[:80].replace('.', '_')!r})"
        )
    if key == HASH_KEY and key in rules.reserved_keys:
        return (
            f"metadata key {key!r} is reserved: the store keeps each record's content hash under it (a re-run "
            "skips unchanged records by it); rename the key"
        )
    if key in rules.reserved_keys:
        return f"metadata key {key!r} is reserved here (the store keeps the record's {key} under it)"
    for prefix in rules.reserved_prefixes:
        if key.startswith(prefix):
            return f"metadata key {key!r} starts with {prefix!r}, which this store reserves for itself"
    return None


def _metadata_problem(key: object, value: object, rules: RecordRules) -> str | None:
    """Why ``key: value`` cannot go into a store with ``rules``, or None."""
    if (problem := _key_problem(key, rules)) is not None:
        return problem
    if value is None:
        return None
    if isinstance(value, str) and (problem := check_text(value)) is not None:
        return f"metadata[{key!r}] {problem}"
    if rules.metadata_values == "scalar" and not isinstance(value, _SCALARS):
        return f"metadata[{key!r}] must be a str, int, float or bool for this store, got {type(value).__name__}"
    if isinstance(value, (Mapping, list, tuple)) and _deeper_than(value, MAX_METADATA_DEPTH):
        return f"metadata[{key!r}] is nested too deeply (more than {MAX_METADATA_DEPTH} levels of lists/objects)"
    if rules.finite_numbers and isinstance(value, float) and not math.isfinite(value):
        return f"metadata[{key!r}] is {value!r}; this store would not keep it (finite numbers only)"
    if rules.int_bits is not None and isinstance(value, int) and not isinstance(value, bool):
        bound = 2 ** (rules.int_bits - 1)
        if not -bound <= value < bound:
            return f"metadata[{key!r}] = {value} does not fit a {rules.int_bits}-bit integer; store it as a str"
    return None


def _check_metadata(metadata: object, rules: RecordRules, index: int, rid: str) -> dict:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise RecordError(f"metadata must be a mapping, got {type(metadata).__name__}", index=index, record_id=rid)
    out = {}
    for key, value in metadata.items():
        problem = _metadata_problem(key, value, rules)
        if problem is not None:
            raise RecordError(problem, index=index, record_id=rid)
        if value is not None:
            out[key] = value
    return out


def _unpack(item: object, index: int) -> tuple[object, object, object]:
    """(id, text, metadata) of one input item, or a RecordError naming it."""
    if isinstance(item, Record):
        return item.id, item.text, item.metadata
    if not isinstance(item, Mapping):
        raise RecordError(
            f'must be a mapping {{"id": ..., "text": ..., "metadata": ...}}, got {type(item).__name__}',
            index=index,
        )
    rid = item.get("id")
    if "id" not in item:
        raise RecordError('has no "id"', index=index)
    if "text" not in item:
        raise RecordError('has no "text"', index=index, record_id=rid)
    return rid, item.get("text"), item.get("metadata")


def validate_batch(
    items: Sequence[Any],
    *,
    start: int = 0,
    rules: RecordRules | None = None,
    check_duplicates: bool = True,
) -> list[Record]:
    """Check a whole batch of records before anything of it is encoded or written.

    Args:
        items: Mappings with "id" (str), "text" (str) and optional "metadata" (mapping), or
            :class:`Record` objects.
        start: Stream position of ``items[0]``, so errors name the record's place in the corpus.
        rules: What the store accepts as metadata; None: :class:`RecordRules`' defaults (any JSON
            value, no reserved key).
        check_duplicates: Refuse an id that occurs twice in the batch (the ingest engine checks
            duplicates over the whole ingest itself and turns this off).

    Returns:
        The batch as :class:`Record` objects (metadata None values dropped).

    Raises:
        RecordError: Naming the first bad record (index and id): not a mapping, no id or text, a
            non-string id or text, a text that is empty or whitespace only, duplicate ids within the
            batch, bad metadata. Ids are compared as given: two ids that are Unicode normalisation
            twins ("é" composed and decomposed) are two ids.
    """
    if rules is None:
        rules = RecordRules()
    records: list[Record] = []
    first_seen: dict[str, int] = {}
    for offset, item in enumerate(items):
        index = start + offset
        rid, text, metadata = _unpack(item, index)
        if not isinstance(rid, str) or not rid:
            raise RecordError(
                f"id must be a non-empty str, got {type(rid).__name__}: {rid!r}", index=index, record_id=rid
            )
        if not isinstance(text, str):
            raise RecordError(f"text must be a str, got {type(text).__name__}", index=index, record_id=rid)
        if not text.strip():
            raise RecordError(
                "text is empty or whitespace only: nothing to embed or find; give it text or leave the record out",
                index=index,
                record_id=rid,
            )
        for what, value in (("id", rid), ("text", text)):
            problem = check_text(value)
            if problem is not None:
                raise RecordError(f"{what} {problem}", index=index, record_id=rid)
        if check_duplicates and rid in first_seen:
            raise RecordError(
                f"duplicate id in one batch (also record {start + first_seen[rid]})",
                index=index,
                record_id=rid,
            )
        first_seen.setdefault(rid, offset)
        records.append(Record(rid, text, _check_metadata(metadata, rules, index, rid)))
    return records
