"""Where a Ray job writes, through the core's store protocol and the stores' own ingest sinks.

- The collection is created or checked on the driver by the store's own ``ingest``
  (``instructor_core.stores.open_store(url).ingest(name, [], encoder, model=...)``): the same model,
  instruction, dimension and metadata checks as a single-process ingest, with nothing written.
- A Ray write task opens the store's engine sink (``instructor_chroma.ChromaSink``,
  ``instructor_qdrant.QdrantSink``) and calls its ``write`` with the vectors the actors made: the
  same deterministic ids, payload and record rules as the single-process path, no model loaded.
- An embedded store (``SCHEME:DIR``) is written by the driver through the store's own ``ingest``,
  with an encoder stand-in that serves the vectors the cluster made (:class:`PrecomputedEncoder`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from instructor_core.records import RecordRules
from instructor_core.stores import open_store, split_store_url

__all__ = [
    "PrecomputedEncoder",
    "StoreTarget",
    "WorkerSink",
    "count_points",
    "open_worker_sink",
    "prepare_collection",
    "rules_for",
]

_SERVER_SINKS = ("chroma", "qdrant")


@dataclass(frozen=True)
class StoreTarget:
    """A collection in a store, as plain data (it travels to the Ray workers).

    Attributes:
        url: The store URL: ``chroma+http://H:P``, ``qdrant+http://H:P`` (servers) or
            ``chroma:DIR``, ``qdrant:DIR`` (embedded), or any registered ``SCHEME:...``.
        collection: Collection name.
        local_mode: A ``qdrant:DIR`` opened with qdrant-client's local mode (``QdrantClient(path=)``,
            :class:`instructor_ray.QdrantDatasink` with ``path=``) rather than the embedded Qdrant
            Edge store ``qdrant:DIR`` means elsewhere. qdrant-client's local mode unpickles its
            storage: for trusted folders only (tests).
    """

    url: str
    collection: str
    local_mode: bool = False

    def __post_init__(self) -> None:
        split_store_url(self.url)  # a malformed URL fails here, naming the accepted forms
        if not isinstance(self.collection, str) or not self.collection:
            raise ValueError(f"collection must be a non-empty str, got {self.collection!r}")

    @property
    def scheme(self) -> str:
        """``"chroma"``, ``"qdrant"``, or a third party's store name."""
        return split_store_url(self.url)[0]

    @property
    def location(self) -> str:
        """The folder or the server URL."""
        return split_store_url(self.url)[1]

    @property
    def embedded(self) -> bool:
        """Whether the store is a folder one process must own (so only the driver may write it)."""
        return not self.location.startswith(("http://", "https://"))

    def describe(self) -> str:
        return f"{self.scheme} at {self.location}"


def _open(target: StoreTarget) -> Any:
    """The store ``target`` names (qdrant-client's local mode where ``target.local_mode``)."""
    if target.local_mode and target.scheme == "qdrant" and target.embedded:
        from qdrant_client import QdrantClient

        from instructor_qdrant.store import QdrantStore

        return QdrantStore(QdrantClient(path=target.location), target.location)
    return open_store(target.url)


def rules_for(target: StoreTarget) -> RecordRules:
    """The record rules of the store's ingest sink (the checks made in the workers)."""
    if target.scheme == "chroma":
        from instructor_chroma.ingest import CHROMA_RULES

        return CHROMA_RULES
    if target.scheme == "qdrant":
        from instructor_qdrant.points import QDRANT_RULES

        return QDRANT_RULES
    return RecordRules()


def prepare_collection(target: StoreTarget, encoder: Any, model: str) -> int:
    """Create ``target``'s collection for ``encoder`` and ``model`` or check the existing one, with
    the store's own ingest of no records; returns the points it holds."""
    store = _open(target)
    try:
        store.ingest(target.collection, [], encoder, model=model, show_progress=False)
        return int(store.info(target.collection).count)
    finally:
        store.close()


def count_points(target: StoreTarget) -> int:
    """Points in ``target``'s collection."""
    store = _open(target)
    try:
        return int(store.info(target.collection).count)
    finally:
        store.close()


@dataclass
class WorkerSink:
    """A store's engine sink opened in a Ray worker, and the store to close after."""

    sink: Any
    store: Any

    def close(self) -> None:
        self.store.close()


def open_worker_sink(target: StoreTarget, *, allow_local: bool = False) -> WorkerSink:
    """The engine sink of a server store's existing collection, for writing precomputed vectors.

    ``allow_local`` admits a Qdrant local-mode folder (one writer at a time: tests).

    Raises:
        ValueError: A store without a Ray datasink (an embedded one, or a third party's).
    """
    local_ok = allow_local and target.scheme == "qdrant"
    if (target.embedded and not local_ok) or target.scheme not in _SERVER_SINKS:
        raise ValueError(
            f"{target.describe()}: Ray workers write only to a Chroma or Qdrant server; an embedded or other "
            "store is written by the driver (instructor_ray.ingest_dataset does that)"
        )
    store = _open(target)
    client: Any = cast(Any, store).client  # ChromaStore / QdrantStore keep their client here
    try:
        if target.scheme == "chroma":
            from instructor_chroma.ingest import ChromaSink

            # No embedding function: the vectors come made, so a worker never loads the model.
            collection = client.get_collection(target.collection, embedding_function=None)
            sink: Any = ChromaSink(collection, None)
        else:
            from instructor_qdrant.points import QdrantSink

            sink = QdrantSink(client, target.collection, cast(Any, None), cast(Any, None))
    except BaseException:
        store.close()
        raise
    return WorkerSink(sink, store)


class PrecomputedEncoder:
    """An encoder stand-in for a store's own ingest: ``encode_documents`` serves the vectors the
    cluster made (looked up by text, so a repeated text gets its one vector), everything else is
    the real encoder's (the collection's model, instructions, dimension, queries).

    Args:
        encoder: The real encoder (loaded on the driver; it embeds nothing here).
        instruction: The document instruction the vectors were made with; any other is refused.
    """

    def __init__(self, encoder: Any, instruction: str) -> None:
        self._encoder = encoder
        self._instruction = instruction
        self._vectors: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self._open = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._encoder, name)

    def add(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Remember the vectors of rows about to be handed to the ingest."""
        with self._lock:
            for text, vector in zip(texts, vectors, strict=True):
                self._vectors.setdefault(text, []).append(vector)

    def close(self) -> None:
        """After the ingest: the stand-in becomes the real encoder again (a chromadb function cache
        may keep it for later queries)."""
        with self._lock:
            self._open = False
            self._vectors.clear()

    def encode_documents(
        self,
        texts: Iterable[str],
        instruction: str | None = None,
        *,
        batch_size: int = 32,
        normalize: bool = True,
        show_progress: bool = False,
    ) -> np.ndarray:
        if not self._open:
            return self._encoder.encode_documents(
                texts, instruction, batch_size=batch_size, normalize=normalize, show_progress=show_progress
            )
        wanted = self._encoder.instructions.document if instruction is None else instruction
        if wanted != self._instruction or not normalize:
            raise ValueError(
                f"the cluster embedded with document instruction {self._instruction!r} (normalized); the store "
                f"asked for {wanted!r} (normalize={normalize})"
            )
        items = list(texts)
        out = np.zeros((len(items), int(self._encoder.dimension)), dtype=np.float32)
        with self._lock:
            for row, text in enumerate(items):
                queue = self._vectors.get(text)
                if not queue:
                    raise KeyError(f"no vector from the cluster for a text of {len(text)} characters")
                out[row] = queue.pop(0)
                if not queue:
                    del self._vectors[text]
        return out
