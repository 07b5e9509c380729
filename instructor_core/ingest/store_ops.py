"""Ingest into and search a :class:`~instructor_core.ingest.stores.Store` with an encoder: the one layer
where encoding meets storage.

A store is storage only (collections with a layout, a sink of precomputed vectors, search by
vectors). This layer builds a collection's :class:`~instructor_core.ingest.stores.CollectionLayout` from
the encoder, creates or checks the collection, checks the model once per operation (one error type,
:class:`~instructor_core.ingest.stores.ModelMismatchError`), embeds documents with the document
instruction(s) and queries with the query instruction, and runs the ingest engine through the
store's sink. The CLI, the Ray engine and a user's own code call it the same way::

    store = open_store("qdrant:./db")
    try:
        ingest(store, "notes", records, encoder, model="hkunlp/instructor-base")
        hits = search(store, "notes", ["a question"], encoder, k=5)
    finally:
        store.close()
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from instructor_core.errors import InputError, InputTypeError, InstructorError
from instructor_core.ingest.chunking import TruncationTally, watching
from instructor_core.ingest.engine import DuplicatePolicy, IngestReport, RetryPolicy, run_ingest
from instructor_core.ingest.engine_errors import engine_failure
from instructor_core.ingest.records import Record, RecordRules
from instructor_core.ingest.stores import (
    SPARSE_FEATURE,
    CollectionInfo,
    CollectionLayout,
    CollectionMismatchError,
    Fusion,
    Hit,
    ModelChangeWarning,
    ModelMismatchError,
    NoKeywordIndexError,
    Quantization,
    SearchMode,
    Store,
    StoreError,
    StoreSink,
    check_model,
    encoder_fingerprint,
)
from instructor_core.model.protocols import Encoder
from instructor_core.validation import check_positive_int

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "EngineSink",
    "check_layout",
    "check_max_length",
    "check_quantization",
    "check_search",
    "check_vector",
    "embed_views",
    "ingest",
    "layout_for",
    "model_change_note",
    "prepare_collection",
    "replace_empty_collection",
    "resolve_mode",
    "search",
    "write_records",
]

#: Records per write. Each batch is also one ``encode_documents`` call, and the encoder sorts a
#: call's texts by length: larger batches waste less padding (256 ~ 1 MB of float vectors per request).
DEFAULT_BATCH_SIZE = 256


def _check_vectors(vectors: Mapping[str, str] | None) -> dict[str, str]:
    if vectors is None:
        return {}
    if not isinstance(vectors, Mapping) or not vectors:
        raise InputTypeError("vectors must be a non-empty mapping {vector name: document instruction}")
    for key, instruction in vectors.items():
        if not isinstance(key, str) or not key:
            raise InputTypeError(f"vector names must be non-empty str, got {key!r}")
        if not isinstance(instruction, str):
            raise InputTypeError(f"vectors[{key!r}] (the instruction) must be a str, got {type(instruction).__name__}")
    return dict(vectors)


def layout_for(
    encoder: Encoder,
    model: str | None,
    vectors: Mapping[str, str] | None = None,
    quantization: Quantization = "none",
    *,
    hybrid: bool = False,
) -> CollectionLayout:
    """The layout a new collection for ``encoder`` records: its dimension, instructions, fingerprint,
    ``model`` (name or path), the named vectors ``{name: document instruction}`` if any, how its
    vectors are kept (``quantization``), and now; with ``hybrid``, a BM25 keyword index beside the
    vectors (the store records its settings)."""
    loading: dict[str, Any] = {}
    max_length = getattr(encoder, "max_length", None)
    if isinstance(max_length, int):
        loading["max_length"] = max_length
    stated = getattr(getattr(encoder, "spec", None), "instructor_stated", None)
    if isinstance(stated, bool):
        loading["instructor"] = stated
    return CollectionLayout(
        dimension=int(encoder.dimension),
        vectors=_check_vectors(vectors),
        query_instruction=encoder.instructions.query,
        document_instruction=encoder.instructions.document,
        model=model,
        fingerprint=encoder_fingerprint(encoder),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        loading=loading,
        quantization=quantization,
        sparse="bm25" if hybrid else None,
    )


def check_layout(
    name: str, stored: CollectionLayout, wanted: CollectionLayout, *, allow_model_change: bool = False
) -> CollectionLayout:
    """The stored layout, if ``wanted`` (the encoder at hand) fits it: same dimension, vector names,
    instructions, model name, model fingerprint and max length (where recorded). Else an error
    naming what differs.

    Raises:
        CollectionMismatchError: Another dimension, vector names, instructions, model name or max length.
        ModelMismatchError: Another model fingerprint (unless ``allow_model_change``).
    """
    named, dimension, model = dict(wanted.vectors), wanted.dimension, wanted.model
    if stored.dimension and stored.dimension != dimension:
        raise CollectionMismatchError(
            f"collection {name!r} holds {stored.dimension}-dimensional vectors, the encoder makes {dimension}-"
            "dimensional ones; nothing was written. Use another collection or the model it was made with."
        )
    checks: list[tuple[str, object, object]] = [
        ("query_instruction", stored.query_instruction, wanted.query_instruction)
    ]
    if named or stored.vectors:
        checks.append(("vectors", dict(stored.vectors), named))
    else:
        checks.append(("document_instruction", stored.document_instruction, wanted.document_instruction))
    if stored.model is not None and model is not None and not allow_model_change:
        checks.append(("model", stored.model, model))
    for what, old, new in checks:
        if old != new:
            raise CollectionMismatchError(
                f"collection {name!r} was made with {what}={old!r}, the encoder has {new!r}: cannot change {what} "
                "of an existing collection, mixing them would make its vectors incomparable. Use that one or a "
                "new collection."
            )
    check_max_length(name, stored.max_length, wanted.max_length)
    if wanted.sparse is not None and stored.sparse != wanted.sparse:
        raise CollectionMismatchError(
            f"collection {name!r} was made without a keyword index, so --hybrid cannot add one to it; ingest "
            "with --hybrid into a new collection (or delete this one first)"
        )
    check_model(name, stored.fingerprint, wanted.fingerprint, allow_model_change=allow_model_change)
    return replace(
        stored,
        dimension=dimension,
        vectors=named,
        model=stored.model or model,
        fingerprint=stored.fingerprint or wanted.fingerprint,
    )


def check_max_length(name: str, stored: int | None, current: int | None) -> None:
    """Refuse an encoder whose token limit differs from the one a collection's documents were
    embedded with: a record stored unchanged would keep the vector of its first ``stored`` tokens.
    Where either side is unknown (a collection made before the limit was recorded) nothing is checked.

    Raises:
        CollectionMismatchError: Naming both limits and the fix.
    """
    if stored is None or current is None or stored == current:
        return
    raise CollectionMismatchError(
        f"collection {name!r} was made with max_length={stored}, the encoder has {current}: its documents' vectors "
        f"are of their first {stored} tokens (instruction included), and a re-run would keep them as unchanged. "
        f"Resume it with max_length={stored} (CLI: --max-length {stored}), or ingest into a new collection (or "
        "delete this one first)"
    )


def check_search(
    name: str,
    layout: CollectionLayout | None,
    encoder: Encoder,
    *,
    model: str | None = None,
    allow_model_change: bool = False,
) -> None:
    """Refuse to search a collection with an encoder it was not made with: another dimension, or
    another model (its fingerprint; where either side has none, its name), unless
    ``allow_model_change``. A collection that records no layout (made outside instructor) is not
    checked.

    Raises:
        CollectionMismatchError: Another dimension.
        ModelMismatchError: Another model.
    """
    if layout is None:
        return
    current = encoder_fingerprint(encoder)
    if layout.fingerprint is not None and current is not None:
        check_model(name, layout.fingerprint, current, allow_model_change=allow_model_change)
    elif model is not None and layout.model is not None and model != layout.model and not allow_model_change:
        raise ModelMismatchError(name, layout.model, model, what="model")
    dimension = int(encoder.dimension)
    if layout.dimension and layout.dimension != dimension:
        full = getattr(encoder, "model_dimension", dimension)
        same_model = layout.fingerprint is not None and layout.fingerprint == current
        if same_model and isinstance(full, int) and layout.dimension < full:  # ingested with its vectors cut
            fix = f"search at that dimension: truncate_dim={layout.dimension} (CLI: --dim {layout.dimension})"
        else:
            fix = f"search with the model it was made with ({layout.model!r})"
        raise CollectionMismatchError(
            f"collection {name!r} holds {layout.dimension}-dimensional vectors, the encoder makes "
            f"{dimension}-dimensional ones; {fix}"
        )


def check_vector(name: str, layout: CollectionLayout | None, vector: str | None) -> None:
    """Refuse a named vector the collection does not have, or none where it has several.

    Raises:
        ValueError: Naming the collection's vectors.
    """
    if layout is None:
        return
    if vector is not None and vector not in layout.vectors:
        have = f"it has: {sorted(layout.vectors)}" if layout.vectors else "it has one vector per document"
        raise InputError(f"collection {name!r} has no named vector {vector!r} ({have}); drop --vector")
    if vector is None and layout.vectors:
        raise InputError(f"collection {name!r} has named vectors {sorted(layout.vectors)}; pick one with vector=")


def embed_views(records: Sequence[Record], encoder: Encoder, layout: CollectionLayout, batch_size: int) -> list[Any]:
    """One vector per record under the layout's document instruction, or a ``{name: vector}`` dict
    of views for a named-vector layout."""
    texts = [r.text for r in records]
    if layout.vectors:
        views = {
            key: encoder.encode_documents(texts, instruction, batch_size=batch_size)
            for key, instruction in layout.vectors.items()
        }
        return [{key: views[key][i].tolist() for key in views} for i in range(len(records))]
    matrix = encoder.encode_documents(texts, layout.document_instruction, batch_size=batch_size)
    return [row.tolist() for row in matrix]


class EngineSink:
    """The ingest engine's ``BatchSink``: a store's sink and an embed step (the encoder's, or one
    that hands back vectors made elsewhere); rules, write and transport errors are the store sink's.

    Args:
        sink: The store's sink for the collection.
        embed: The vectors (or named views) for a validated batch of records.
    """

    def __init__(self, sink: StoreSink, embed: Callable[[Sequence[Record]], list[Any]]) -> None:
        self.sink, self.embed = sink, embed

    @property
    def rules(self) -> RecordRules:
        """The store's record rules."""
        return self.sink.rules

    def write(self, records: Sequence[Record], vectors: Sequence[Any]) -> None:
        """The store sink's write."""
        self.sink.write(records, vectors)

    @property
    def stored_hashes(self) -> Callable[[Sequence[str]], dict[str, str]] | None:
        """The store sink's optional ``stored_hashes`` (None where it has none: nothing is skipped)."""
        lookup = getattr(self.sink, "stored_hashes", None)
        return lookup if callable(lookup) else None

    def is_transport_error(self, exc: BaseException) -> bool:
        """The store sink's judgement."""
        return self.sink.is_transport_error(exc)


def write_records(
    sink: StoreSink,
    name: str,
    documents: Iterable[Any],
    embed: Callable[[Sequence[Record]], list[Any]],
    *,
    batch_size: int | None = None,
    overlap: bool | None = None,
    on_duplicate: DuplicatePolicy = "error",
    show_progress: bool = True,
    retry: RetryPolicy | None = None,
    skip_unchanged: bool = True,
) -> IngestReport:
    """Run the ingest engine over ``documents`` into a store's sink: validation with the sink's
    rules, ``embed`` one batch ahead (``overlap``; None: the sink's preference), ordered writes,
    duplicate ids over the whole ingest, retries of transport errors.

    Args:
        sink: The store's sink for collection ``name``.
        name: The collection (for the progress bar).
        documents: Records ``{"id": str, "text": str, "metadata": {...}}``; any iterable.
        embed: The vectors for a validated batch.
        batch_size: Records per write (capped at the sink's limit); None: 256.
        overlap: Embed batch k+1 while batch k is written; None: ``sink.overlap``.
        on_duplicate: An id read twice: "error" (default), "first" or "last" copy kept.
        show_progress: A tqdm bar (records).
        retry: Retries of a write that failed in transport; None: the engine's defaults.
        skip_unchanged: Skip records the store holds with the same content hash (the sink's
            optional ``stored_hashes``); False embeds and writes them all.
    """
    size = DEFAULT_BATCH_SIZE if batch_size is None else check_positive_int(batch_size, "batch_size")
    limit = getattr(sink, "max_batch_size", None)
    if limit is not None:
        size = min(size, limit)
    return run_ingest(
        documents,
        EngineSink(sink, embed),
        batch_size=size,
        overlap=bool(getattr(sink, "overlap", True)) if overlap is None else overlap,
        retry=retry,
        on_duplicate=on_duplicate,
        show_progress=show_progress,
        desc=f"Ingesting into {name}",
        skip_unchanged=skip_unchanged,
    )


def check_quantization(name: str, stored: CollectionLayout, quantization: Quantization | None) -> None:
    """Refuse a quantization other than the one the collection keeps its vectors with (None: any).

    Raises:
        CollectionMismatchError: Naming both.
    """
    if quantization is not None and stored.quantization != quantization:
        raise CollectionMismatchError(
            f"collection {name!r} keeps its vectors with quantization={stored.quantization!r}, asked for "
            f"{quantization!r}: a collection's quantization is set when it is made. Drop the option or use a "
            "new collection."
        )


def prepare_collection(
    store: Store,
    name: str,
    encoder: Encoder,
    *,
    model: str | None,
    vectors: Mapping[str, str] | None = None,
    allow_model_change: bool = False,
    quantization: Quantization | None = None,
    hybrid: bool = False,
) -> tuple[CollectionLayout, int]:
    """Create ``name`` for ``encoder`` and ``model``, or check the existing collection against them
    (dimension, instructions, vector names, model name and fingerprint, quantization), writing nothing.

    Args:
        quantization: How a new collection keeps its vectors (``"none"``, ``"int8"``, ``"binary"``;
            None: ``"none"``); for an existing one, None accepts its own and any other is refused.

    Returns:
        The collection's layout and the points it holds.

    Raises:
        CollectionMismatchError: The collection records another dimension, instructions, model name
            or quantization.
        ModelMismatchError: Another model fingerprint (unless ``allow_model_change``).
        StoreError: The store cannot keep quantized vectors (before anything is created).
    """
    wanted = layout_for(encoder, model, vectors, quantization or "none", hybrid=hybrid)
    info = store.create_collection(name, wanted)
    if info.layout is None:  # made outside instructor: the store checked what it could
        return wanted, info.count
    check_quantization(name, info.layout, quantization)
    layout = check_layout(name, info.layout, wanted, allow_model_change=allow_model_change)
    return replace(layout, vectors=dict(info.layout.vectors)), info.count


def ingest(
    store: Store,
    name: str,
    documents: Iterable[Any],
    encoder: Encoder,
    *,
    model: str | None,
    vectors: Mapping[str, str] | None = None,
    batch_size: int | None = None,
    on_duplicate: DuplicatePolicy = "error",
    show_progress: bool = True,
    allow_model_change: bool = False,
    retry: RetryPolicy | None = None,
    quantization: Quantization | None = None,
    hybrid: bool = False,
    skip_unchanged: bool = True,
) -> IngestReport:
    """Create (or check) the collection for ``encoder`` and ``model``, then embed ``documents`` with
    the document instruction(s) and write them through the store's sink with the ingest engine.

    Args:
        store: An open store.
        name: Collection name.
        documents: Records ``{"id": str, "text": str, "metadata": {...}}``; any iterable.
        encoder: The encoder; its document instruction makes the vectors.
        model: The model's name or path, recorded with the collection for later searches.
        vectors: Named vectors ``{name: document instruction}`` (stores that hold them).
        batch_size: Records per write (capped at the store's limit); None: 256.
        on_duplicate: An id read twice: "error" (default), "first" or "last" copy kept.
        show_progress: A tqdm bar (records).
        allow_model_change: Accept an encoder whose model differs from the collection's, on purpose.
            Records stored unchanged are still skipped and keep the old model's vectors (a
            :class:`~instructor_core.ingest.stores.ModelChangeWarning` says so where the model did
            change); ``skip_unchanged=False`` re-embeds them.
        retry: Retries of a write that failed in transport; None: the engine's defaults.
        quantization: Keep a new collection's vectors quantized, ``"int8"`` or ``"binary"`` (stores
            that can: Qdrant; searches rescore on the float vectors), or ``"none"``; None: ``"none"``
            for a new collection, the existing one's otherwise. Another than an existing
            collection's is refused.
        hybrid: Make the collection with a keyword index: the store writes, beside each dense
            vector, a BM25 sparse vector of the record's raw text (Qdrant stores; others refuse).
            An existing collection keeps what it has (refused: adding the index to one without it).
        skip_unchanged: Skip records whose id the collection holds with the same content hash
            (a re-run embeds only what is missing or changed); False embeds and writes every record.

    Returns:
        IngestReport(seen, written, batches, skipped, retried, duplicates, unchanged, embedded).
    """
    if batch_size is not None:
        check_positive_int(batch_size, "batch_size")
    layout, _ = prepare_collection(
        store, name, encoder, model=model, vectors=vectors, allow_model_change=allow_model_change,
        quantization=quantization, hybrid=hybrid,
    )  # fmt: skip

    note = model_change_note(name, layout, encoder, model) if allow_model_change and skip_unchanged else None
    if note is not None:
        warnings.warn(note, ModelChangeWarning, stacklevel=2)

    tally = TruncationTally()

    def embed(records: Sequence[Record]) -> list[Any]:
        with watching(encoder) as flags:  # the texts the model cuts at its max length, from its own tokenization
            vectors = embed_views(records, encoder, layout, 32)
        tally.add([r.id for r in records], flags)
        return vectors

    with translated(store):  # a write the store's engine fails (a full disk, damaged files): one line
        sink = store.sink(name)
        report = write_records(
            sink,
            name,
            documents,
            embed,
            batch_size=batch_size,
            on_duplicate=on_duplicate,
            show_progress=show_progress,
            retry=retry,
            skip_unchanged=skip_unchanged,
        )
        finish = getattr(sink, "finish", None)  # optional: a store's work after the last write
        if callable(finish):
            finish()
        if tally.count:
            limit = getattr(encoder, "max_length", None)
            report = replace(report, truncated=tally.count, first_truncated=tally.first, max_length=limit)
        return report


def model_change_note(name: str, stored: CollectionLayout, encoder: Encoder, model: str | None) -> str | None:
    """What an ingest allowed to change the model (``allow_model_change``) leaves behind when it skips
    unchanged records, or None where the model did not change (its fingerprint; where either side has
    none, its name): those records keep the old model's vectors."""
    current = encoder_fingerprint(encoder)
    if stored.fingerprint is not None and current is not None:
        if stored.fingerprint == current:
            return None
        what = f"model fingerprint {stored.fingerprint}, the encoder at hand has {current}"
    elif stored.model is not None and model is not None and stored.model != model:
        what = f"model {stored.model!r}, the encoder at hand is {model!r}"
    else:
        return None
    return (
        f"collection {name!r} was made with {what} (allowed by allow_model_change / --allow-model-change): records "
        "stored unchanged are skipped and keep the old model's vectors; pass skip_unchanged=False (CLI: --reembed) "
        "to re-embed them all with this one"
    )


@contextmanager
def translated(store: Store) -> Iterator[None]:
    """The store's own error translation (:meth:`BaseStore.translated`) around a block; for a store
    without one, its engine's disk-full and damage errors still become one line."""
    own = getattr(store, "translated", None)
    if callable(own):
        with own():
            yield
        return
    try:
        yield
    except InstructorError:
        raise
    except Exception as exc:
        if (cause := engine_failure(exc, store.describe())) is not None:
            raise StoreError(cause) from exc
        raise


def search(
    store: Store,
    name: str,
    queries: Sequence[str],
    encoder: Encoder,
    *,
    k: int = 10,
    filters: Mapping[str, Any] | None = None,
    instruction: str | None = None,
    vector: str | None = None,
    model: str | None = None,
    allow_model_change: bool = False,
    info: CollectionInfo | None = None,
    mode: SearchMode | None = None,
    fusion: Fusion = "rrf",
) -> list[list[Hit]]:
    """The best ``k`` hits for each query, embedded with the query instruction (or ``instruction``).

    The dense side embeds each query with the query instruction; the keyword side (``mode``
    ``"keyword"`` or ``"hybrid"``, collections made with ``hybrid=True``) ranks the raw query text by
    the collection's BM25 index, never the instruction.

    Args:
        store: An open store.
        name: Collection name.
        queries: Query texts.
        encoder: The encoder the collection was made with.
        k: Hits per query.
        filters: ``{metadata key: value}``, all of which must match.
        instruction: Query instruction; None takes the encoder's.
        vector: The named vector to search (collections with several).
        model: The model name the caller asked for, checked against the collection's where neither
            side has a fingerprint.
        allow_model_change: Search with another model on purpose.
        info: The collection's info, if the caller read it already (read once per search).
        mode: "dense", "keyword" or "hybrid"; None: hybrid on a collection with a keyword index,
            dense elsewhere.
        fusion: How hybrid fuses its two lists: "rrf" (reciprocal ranks) or "dbsf" (normalized scores).

    Raises:
        ModelMismatchError: Another model than the collection's.
        CollectionMismatchError: Another dimension.
        NoKeywordIndexError: A keyword or hybrid search of a collection without a keyword index.
    """
    check_positive_int(k, "k")
    info = store.info(name) if info is None else info
    mode = resolve_mode(name, info.layout, mode)
    if fusion not in ("rrf", "dbsf"):
        raise InputError(f"fusion {fusion!r}: expected 'rrf' or 'dbsf'")
    check_search(name, info.layout, encoder, model=model, allow_model_change=allow_model_change)
    check_vector(name, info.layout, vector)
    if not queries:
        return []
    texts = list(queries)
    if mode == "keyword":
        return store.search(name, [], k=k, filters=filters, vector=vector, texts=texts, mode=mode, fusion=fusion)
    rows = [row.tolist() for row in encoder.encode_queries(texts, instruction)]
    if mode == "dense":
        return store.search(name, rows, k=k, filters=filters, vector=vector)
    return store.search(name, rows, k=k, filters=filters, vector=vector, texts=texts, mode=mode, fusion=fusion)


def resolve_mode(name: str, layout: CollectionLayout | None, mode: SearchMode | None) -> SearchMode:
    """The search mode for a collection: ``mode`` checked against its layout, or, for None, hybrid
    where it has a keyword index and dense elsewhere.

    Raises:
        ValueError: An unknown mode.
        NoKeywordIndexError: Keyword or hybrid on a collection without a keyword index.
    """
    has_index = layout is not None and SPARSE_FEATURE in layout.features()
    if mode is None:
        return "hybrid" if has_index else "dense"
    if mode not in ("dense", "keyword", "hybrid"):
        raise InputError(f"mode {mode!r}: expected 'dense', 'keyword' or 'hybrid'")
    if mode != "dense" and not has_index:
        raise NoKeywordIndexError(name, mode)
    return mode


def _differences(
    info: CollectionInfo, encoder: Encoder, model: str, quantization: Quantization | None = None
) -> list[str]:
    """What ``info`` records that the encoder at hand would not make (names of the fields)."""
    out = []
    if quantization is not None and info.layout is not None and info.layout.quantization != quantization:
        out.append("quantization")
    if info.model is not None and info.model != model:
        out.append("model")
    if info.query_instruction != encoder.instructions.query:
        out.append("query_instruction")
    if info.vectors or info.document_instruction != encoder.instructions.document:
        out.append("document_instruction")
    if info.dimension and info.dimension != encoder.dimension:
        out.append("dimension")
    current = getattr(encoder, "max_length", None)
    if info.max_length is not None and isinstance(current, int) and current != info.max_length:
        out.append("max_length")
    if info.fingerprint is not None and not out:
        current = encoder_fingerprint(encoder)
        if current is not None and current != info.fingerprint:
            out.append("fingerprint")
    return out


def replace_empty_collection(
    store: Store, name: str, encoder: Encoder, *, model: str, quantization: Quantization | None = None
) -> list[str]:
    """Delete a collection that holds nothing and was made for another model or other instructions,
    so the ingest about to run makes it anew for ``encoder``.

    A first ingest that failed before its first write (a bad record in the first batch, a wrong
    instruction noticed at once) leaves an empty collection that records the model and
    instructions of that run; without this, every retry with other ones is refused although no
    vector would be mixed. A collection with documents, one made outside instructor (no recorded
    model), or one that already fits is left alone; :func:`ingest` checks those as usual.

    Returns:
        The recorded fields that differed (``["document_instruction"]``), empty where nothing was
        deleted.
    """
    if name not in store.list_collections():  # (an unreachable store raises here, as it should)
        return []
    try:
        info = store.info(name)
    except StoreError:  # not made by instructor: the ingest decides
        return []
    if info.count != 0 or info.model is None:
        return []
    differing = _differences(info, encoder, model, quantization)
    if differing:
        store.delete(name)
    return differing
