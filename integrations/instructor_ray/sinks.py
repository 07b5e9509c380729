"""A Ray Data datasink that upserts embedded rows into any store's collection: :class:`StoreDatasink`.

Each write task opens the store by URL and writes through ``store.sink(collection)`` (the core's
store protocol): its blocks become records under the store's rules, upserted with their
precomputed vectors under the same deterministic ids and payload as the single-process path. A
write that Ray retries (a lost worker, a lost node) therefore rewrites the same points: it can
never duplicate one. Transport errors of an upsert are retried with bounded backoff; nothing else is.

The collection is created or checked once, on the driver, before the first write.
:class:`ChromaDatasink` and :class:`QdrantDatasink` are the same datasink for a Chroma or Qdrant
server URL.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from ray.data import Datasink
from ray.data.block import BlockAccessor

from instructor_core.errors import InputError
from instructor_core.ingest.engine import IngestReport, RetryPolicy
from instructor_core.ingest.records import Record
from instructor_core.ingest.store_ops import prepare_collection, translated, write_records
from instructor_core.instructions import Instructions
from instructor_core.model.load_options import LoadOptions

from .blocks import RowFields, block_records
from .stores import StoreTarget, open_target

__all__ = [
    "ChromaDatasink",
    "QdrantDatasink",
    "StoreDatasink",
    "WriteCounts",
    "finish_sink",
    "load_driver_encoder",
    "reporting",
    "vectors_of",
    "write_table",
]

#: Records per upsert call (a write task's blocks are cut into upserts of at most this many).
DEFAULT_WRITE_BATCH = 256
#: Upsert retries: the engine's default policy (bounded exponential backoff, transport errors only).
DEFAULT_RETRY = RetryPolicy()
#: Columns id, text, embedding; metadata every other column.
DEFAULT_FIELDS = RowFields()


@dataclass(frozen=True)
class WriteCounts:
    """What one write task (or the driver's loop) wrote."""

    rows: int = 0
    batches: int = 0
    retried: int = 0

    def __add__(self, other: WriteCounts) -> WriteCounts:
        return WriteCounts(self.rows + other.rows, self.batches + other.batches, self.retried + other.retried)


def vectors_of(table: Any, column: str) -> np.ndarray:
    """The vectors of a block's tensor column as one float32 ``(rows, dimension)`` array."""
    return np.asarray(BlockAccessor.for_block(table).to_numpy(column), dtype=np.float32)


def write_table(
    sink: Any,
    table: Any,
    fields: RowFields,
    *,
    batch_size: int = DEFAULT_WRITE_BATCH,
    retry: RetryPolicy = DEFAULT_RETRY,
    progress: Any = None,
) -> WriteCounts:
    """Validate a pyarrow table of embedded rows with ``sink.rules`` and write it through the core's
    one write path (:func:`instructor_core.ingest.store_ops.write_records`): upserts of at most
    ``batch_size`` records and at most the sink's ``max_batch_size``, transport errors retried with
    ``retry``. Each upsert is reported to ``progress`` (a counter actor) as it is made.

    The whole table is validated (naming a bad record's shard and line) before anything of it is
    written. An empty block (every row of it dropped as stored unchanged, :mod:`instructor_ray.resume`;
    Ray may hand it over without columns) writes nothing. The sink's ``finish`` is its caller's to call.
    """
    if table.num_rows == 0:
        return WriteCounts()
    records = block_records(table, fields, sink.rules)
    if not records:
        return WriteCounts()
    vectors = dict(zip((r.id for r in records), vectors_of(table, fields.output_column), strict=True))

    def embed(chunk: Sequence[Record]) -> list[Any]:  # the block's vectors, handed over by id (ids are unique in it)
        return [vectors[r.id] for r in chunk]

    rows = ({"id": r.id, "text": r.text, "metadata": dict(r.metadata)} for r in records)
    report = write_records(reporting(sink, progress), "", rows, embed, batch_size=batch_size, overlap=False,
                           show_progress=False, retry=retry, skip_unchanged=False)  # fmt: skip
    return WriteCounts(report.written, report.batches, report.retried)


class _Reporting:
    """A sink that tells a progress counter each write's records once the write has returned (so the
    counts never hold a write that a lost task or a stopped store did not make); everything else is the
    sink's own."""

    def __init__(self, sink: Any, progress: Any) -> None:
        self._sink, self._progress = sink, progress

    def write(self, records: Sequence[Record], vectors: Any) -> None:
        self._sink.write(records, vectors)
        self._progress.add.remote(written=len(records))

    def __getattr__(self, name: str) -> Any:  # rules, max_batch_size, overlap, is_transport_error, finish, ...
        return getattr(self._sink, name)


def reporting(sink: Any, progress: Any) -> Any:
    """``sink``, reporting each write to ``progress`` (a counter actor) after it returns; None: ``sink`` itself."""
    return sink if progress is None else _Reporting(sink, progress)


def finish_sink(sink: Any) -> None:
    """The sink's optional ``finish`` (a store's work after its last write), as the local engine calls it."""
    finish = getattr(sink, "finish", None)
    if callable(finish):
        finish()


def load_driver_encoder(model: str, instructions: Instructions | None, options: LoadOptions) -> Any:
    """The encoder the driver checks a collection against (CPU, the torch backend; it embeds nothing)."""
    from instructor_core import InstructorEncoder

    driver = replace(options, device="cpu", backend="torch", dtype=None)
    encoder = InstructorEncoder.from_pretrained(model, options=driver)
    if instructions is not None:
        encoder.instructions = instructions
    return encoder


@dataclass
class _State:
    """Driver-side state of a datasink (never shipped to the workers)."""

    encoder: Any = None
    before: int | None = None
    report: IngestReport | None = None
    counts: list[WriteCounts] = field(default_factory=list)


class StoreDatasink(Datasink):
    """Upsert embedded rows into a collection of any store that Ray workers may write (not a
    ``single_writer`` one: :func:`~instructor_ray.ingest_dataset` writes those from the driver).

    Args:
        store: The store URL (``SCHEME+http://HOST:PORT``, or any registered form) or a
            :class:`~instructor_ray.StoreTarget`.
        collection: Collection name; created for ``model`` if absent, else checked against it.
        model: The model folder or hub id the vectors were made with (recorded with the
            collection; the driver loads it once on CPU to check the collection).
        query_instruction: Stored for searches; None takes the model's default.
        document_instruction: The instruction the vectors were made with; None the model's default.
        options: How the vectors' model was loaded (:class:`~instructor_core.LoadOptions`; its
            ``max_length`` and ``instructor`` decide what the collection records); None: defaults.
        fields: Which columns make a record (id, text, metadata, shard path, vectors).
        batch_size: Records per upsert.
        retry: Attempts and backoff for upserts that fail on the transport.
        encoder: An already-loaded encoder for ``model`` to check the collection with.
    """

    def __init__(
        self,
        store: str | StoreTarget,
        collection: str,
        model: str | os.PathLike[str],
        *,
        query_instruction: str | None = None,
        document_instruction: str | None = None,
        options: LoadOptions | None = None,
        fields: RowFields = DEFAULT_FIELDS,
        batch_size: int = DEFAULT_WRITE_BATCH,
        retry: RetryPolicy = DEFAULT_RETRY,
        encoder: Any = None,
    ) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise InputError(f"batch_size must be a positive int, got {batch_size!r}")
        self.target = store if isinstance(store, StoreTarget) else StoreTarget(store, collection)
        self.model = os.fspath(model)
        self.query_instruction = query_instruction
        self.document_instruction = document_instruction
        self.options = options or LoadOptions()
        self.fields = fields
        self.batch_size = batch_size
        self.retry = retry
        self._state = _State(encoder=encoder)
        #: A counter actor (:func:`instructor_ray.progress.make_counter`) each upsert is reported to, or None.
        self.progress: Any = None

    # ------------------------------------------------------------------ driver
    def prepare(self) -> None:
        """Create or check the collection (driver). Called by ``on_write_start`` if not called before."""
        if self._state.before is not None:
            return
        encoder = self._state.encoder
        if encoder is None:
            encoder = load_driver_encoder(self.model, None, self.options)
        encoder.instructions = encoder.instructions.replace(
            query=self.query_instruction, document=self.document_instruction
        )
        store = open_target(self.target)
        try:
            if store.single_writer:
                raise InputError(
                    f"{store.describe()} is a store that one process must own; Ray workers cannot write it. "
                    "Use ingest_dataset, which embeds on the cluster and writes from the driver."
                )
            _, self._state.before = prepare_collection(store, self.target.collection, encoder, model=self.model)
        finally:
            store.close()
        self._state.encoder = None  # no longer needed; frees the driver's copy of the weights

    def on_write_start(self, schema: Any = None) -> None:
        self.prepare()

    def on_write_complete(self, write_result: Any) -> IngestReport:
        total = WriteCounts()
        for counts in write_result.write_returns:
            total = total + counts
        self._state.report = IngestReport(
            seen=total.rows, written=total.rows, batches=total.batches, retried=total.retried
        )
        return self._state.report

    @property
    def report(self) -> IngestReport | None:
        """The counts of the finished write (None before it completes)."""
        return self._state.report

    @property
    def points_before(self) -> int | None:
        """Points the collection held when the write started."""
        return self._state.before

    # ------------------------------------------------------------------ workers
    @property
    def min_rows_per_write(self) -> int | None:
        return self.batch_size

    def write(self, blocks: Iterable[Any], ctx: Any) -> WriteCounts:
        store = open_target(self.target)
        try:
            with translated(store):  # a server gone past the retries: StoreUnavailableError, one line
                sink = store.sink(self.target.collection)
                counts = WriteCounts()
                for block in blocks:
                    table = BlockAccessor.for_block(block).to_arrow()
                    counts = counts + write_table(sink, table, self.fields, batch_size=self.batch_size,
                                                  retry=self.retry, progress=self.progress)  # fmt: skip
                finish_sink(sink)  # this task's sink is done: its store's work after the last write
            return counts
        finally:
            store.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_state"] = _State()  # the driver's encoder and counts stay on the driver
        return state


class ChromaDatasink(StoreDatasink):
    """:class:`StoreDatasink` for a Chroma server at ``url`` (``http://host:port``)."""

    def __init__(self, url: str, collection: str, model: str | os.PathLike[str], **options: Any) -> None:
        super().__init__(f"chroma+{url.rstrip('/')}", collection, model, **options)


class QdrantDatasink(StoreDatasink):
    """:class:`StoreDatasink` for a Qdrant server at ``url`` (``http://host:port``), or, with
    ``path=`` instead, a qdrant-client local-mode folder. One process may hold such a folder at a
    time: write with ``ds.write_datasink(sink, concurrency=1)`` and nothing else opened on it
    (tests); qdrant-client unpickles its storage, so for trusted folders only."""

    def __init__(
        self,
        url: str | None,
        collection: str,
        model: str | os.PathLike[str],
        *,
        path: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> None:
        if (url is None) == (path is None):
            raise InputError("QdrantDatasink needs exactly one of url (a server) or path= (a local-mode folder)")
        if path is not None:
            from instructor_qdrant.store import open_local_mode

            folder = os.fspath(path)
            target = StoreTarget(f"qdrant:{folder}", collection, opener=functools.partial(open_local_mode, folder))
        else:
            target = StoreTarget(f"qdrant+{str(url).rstrip('/')}", collection)
        super().__init__(target, collection, model, **options)
