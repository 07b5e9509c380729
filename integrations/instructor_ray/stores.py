"""Where a Ray job writes: any store registered under ``instructor.stores``, through the core's
store protocol only (``instructor_core.ingest.stores.Store``); no store is named here.

- The driver creates or checks the collection with ``instructor_core.ingest.store_ops.prepare_collection``:
  the same model, instruction, dimension and metadata checks as a single-process ingest.
- A store whose folder one process owns (``store.single_writer``: ``chroma:DIR``, ``qdrant:DIR``) is
  written by the driver, through the store's sink, with the vectors the cluster made.
- Any other store is written by the Ray write tasks: each opens the store by URL and writes through
  ``store.sink(collection)``: the same deterministic ids, payload and record rules as the
  single-process path, no model loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from instructor_core.errors import InputError
from instructor_core.ingest.stores import Store, open_store, split_store_url

__all__ = ["StoreTarget", "count_points", "open_target"]


@dataclass(frozen=True)
class StoreTarget:
    """A collection in a store, as plain data (it travels to the Ray workers).

    Attributes:
        url: The store URL: ``SCHEME+http://H:P`` (a server) or ``SCHEME:DIR`` (embedded), for any
            registered ``SCHEME``.
        collection: Collection name.
        opener: Opens the store instead of ``open_store(url)`` (a picklable callable; e.g.
            ``instructor_qdrant.store.open_local_mode`` for a qdrant-client local-mode folder).
    """

    url: str
    collection: str
    opener: Callable[[], Store] | None = None

    def __post_init__(self) -> None:
        split_store_url(self.url)  # a malformed URL fails here, naming the accepted forms
        if not isinstance(self.collection, str) or not self.collection:
            raise InputError(f"collection must be a non-empty str, got {self.collection!r}")

    @property
    def scheme(self) -> str:
        """The store's registered name."""
        return split_store_url(self.url)[0]

    @property
    def location(self) -> str:
        """The folder or the server URL."""
        return split_store_url(self.url)[1]

    @property
    def embedded(self) -> bool:
        """Whether the URL names a folder (``SCHEME:DIR``) rather than a server: a hint for messages;
        the store itself says whether one process must own it (``single_writer``)."""
        return not self.location.startswith(("http://", "https://"))

    def describe(self) -> str:
        return f"{self.scheme} at {self.location}"


def open_target(target: StoreTarget) -> Store:
    """The store ``target`` names."""
    return target.opener() if target.opener is not None else open_store(target.url)


def count_points(store: Store, target: StoreTarget) -> int:
    """Points in ``target``'s collection."""
    return int(store.info(target.collection).count)


def close_quietly(store: Any) -> None:
    """Close ``store`` (None: nothing)."""
    if store is not None:
        store.close()
