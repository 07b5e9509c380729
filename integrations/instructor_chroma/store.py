"""Chroma behind the core's store protocol (``instructor_core.ingest.stores.Store``), for the CLI and Ray.

Registered as the ``chroma`` entry point of ``instructor.stores``: ``chroma:DIR`` opens an embedded
``PersistentClient``, ``chroma+http://HOST:PORT`` an ``HttpClient``. The model and both instructions
live in the collection's embedding-function configuration, so a search needs only the collection.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import chromadb
from chromadb.api.types import Documents, Embeddings
from chromadb.config import Settings
from chromadb.errors import ChromaError, NotFoundError
from chromadb.utils.embedding_functions import register_embedding_function

from instructor_core.errors import InputError, InputTypeError
from instructor_core.ingest.records import HASH_KEY
from instructor_core.ingest.stores import (
    BaseStore,
    CollectionLayout,
    CollectionMismatchError,
    CollectionNotFoundError,
    Hit,
    StoreNotFoundError,
    StoreUnavailableError,
    lock_timeout_s,
    store_factory,
)
from instructor_core.messages import short_repr

from .embedding import NAME, InstructorEmbeddingFunction
from .ingest import ChromaSink, is_transport_error, stored_dimension

__all__ = ["ChromaStore", "check_collection_name", "open_store", "where_clause"]

CREATED_KEY = "instructor_created"


_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{1,510})[A-Za-z0-9]")


def check_collection_name(name: Any) -> str:
    """Chroma's own rules for a collection name, checked before the store is touched: 3-512
    characters from ``[a-zA-Z0-9._-]``, starting and ending with a letter or digit, no ``..``, not
    an IPv4 address.

    Raises:
        ValueError: Naming the rule.
    """
    rule = "Chroma takes 3-512 characters from a-z A-Z 0-9 . _ -, starting and ending with a letter or digit"
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InputError(f"collection name {short_repr(name)}: {rule}")
    if ".." in name:
        raise InputError(f"collection name {name!r}: Chroma refuses two periods in a row")
    if re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", name):
        raise InputError(f"collection name {name!r}: Chroma refuses a name that is an IP address")
    return name


def where_clause(filters: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A Chroma ``where`` for ``{key: value}`` filters (all must match): keys are metadata keys
    (not ``$`` operators), values str, int, float or bool.

    Raises:
        ValueError: A key or value Chroma would refuse, named.
    """
    if not filters:
        return None
    for key, value in filters.items():
        if not isinstance(key, str) or not key or key.startswith("$"):
            raise InputError(f"filter key {key!r}: expected a metadata key (not empty, not a $ operator)")
        if not isinstance(value, (str, int, float, bool)):
            raise InputError(f"filter {key!r}: the value must be a str, int, float or bool, got {value!r}")
    if len(filters) == 1:
        return dict(filters)
    return {"$and": [{key: value} for key, value in filters.items()]}


class _StoredFunction(InstructorEmbeddingFunction):
    """The embedding-function entry a collection made by the store records (its config: model,
    instructions, fingerprint, loading), without a model: the store writes precomputed vectors.
    A process that opens the collection later rebuilds the real
    :class:`~instructor_chroma.InstructorEmbeddingFunction` from this config (same registered name)."""

    def __init__(self, config: dict[str, Any]) -> None:  # no model: nothing of the parent's to set up
        self._config = config
        self.normalize = True

    def __call__(self, input: Documents) -> Embeddings:
        raise InputTypeError("this collection's vectors are written precomputed by instructor's store layer")

    def get_config(self) -> dict[str, Any]:
        return dict(self._config)

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> _StoredFunction:  # chromadb calls it on create: no model
        return _StoredFunction(config)


def _function_config(layout: CollectionLayout) -> dict[str, Any]:
    """What :class:`InstructorEmbeddingFunction` records for a collection of ``layout``."""
    config: dict[str, Any] = {
        "model": layout.model or "",
        "query_instruction": layout.query_instruction,
        "document_instruction": layout.document_instruction,
        "normalize": True,
        "max_length": layout.loading.get("max_length"),
        "fingerprint": layout.fingerprint,
    }
    if layout.loading.get("instructor") is not None:
        config["instructor"] = layout.loading["instructor"]
    return config


def _user_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """A point's metadata as the user gave it: without the content hash the store keeps beside it."""
    return {key: value for key, value in (metadata or {}).items() if key != HASH_KEY}


class ChromaStore(BaseStore):
    """A Chroma client (embedded folder or server) as an ``instructor_core.ingest.stores.Store``.

    Args:
        client: A chromadb client.
        location: The folder or URL it was opened from (for messages).
        remote: Whether the client talks to a server (its writes then overlap the encoding).
        lock: The entered ``store_lock`` of an embedded folder, released by :meth:`close`.
    """

    scheme = "chroma"
    store_errors = (ChromaError,)
    #: Why there is no --hybrid here (chromadb 1.5: "Sparse vector indexing is not enabled in local").
    feature_notes = {
        "bm25 sparse-vector": "Chroma's local engine, embedded or chroma run, has no sparse index; use a Qdrant "
        "store (--store qdrant:DIR) for hybrid search"
    }

    def __init__(self, client: Any, location: str, *, remote: bool, lock: Any = None) -> None:
        self.client = client
        self.location = location
        self.remote = remote
        self.single_writer = not remote
        self._lock = lock
        self._handles: dict[str, Any] = {}

    def check_name(self, name: str) -> str:
        """See :func:`check_collection_name`."""
        return check_collection_name(name)

    def is_transport_error(self, exc: BaseException) -> bool:
        """See :func:`instructor_chroma.ingest.is_transport_error`."""
        return is_transport_error(exc)

    def _names(self) -> list[str]:
        return [c if isinstance(c, str) else c.name for c in self.client.list_collections()]

    def _get(self, name: str) -> Any:
        """The collection, without rebuilding its embedding function (no model load): fetched (with
        its config) by :meth:`_exists`, then kept for the store's other steps."""
        if name not in self._handles and not self._exists(name):
            raise CollectionNotFoundError(name, self.describe(), self._names())
        return self._handles[name]

    def _exists(self, name: str) -> bool:
        try:
            self._handles[name] = self.client.get_collection(name, embedding_function=None)
        except NotFoundError:
            self._handles.pop(name, None)
            return False
        return True

    def _layout(self, name: str) -> CollectionLayout:
        collection = self._get(name)
        stored = (collection.configuration_json or {}).get("embedding_function") or {}
        if stored.get("name") != NAME:
            raise StoreUnavailableError(
                f"collection {name!r} in {self.describe()} was not made with instructor (its embedding "
                f"function: {stored.get('name', 'none')!r})"
            )
        config = dict(stored.get("config") or {})
        InstructorEmbeddingFunction.validate_config(config)
        loading = {key: config[key] for key in ("max_length", "instructor") if config.get(key) is not None}
        return CollectionLayout(
            dimension=stored_dimension(collection) or 0,
            query_instruction=config["query_instruction"],
            document_instruction=config["document_instruction"],
            model=config["model"],
            fingerprint=config.get("fingerprint"),
            created=(collection.metadata or {}).get(CREATED_KEY),
            loading=loading,
        )

    def _count(self, name: str) -> int:
        return int(self._get(name).count())

    def _create(self, name: str, layout: CollectionLayout) -> None:
        if layout.vectors:
            raise CollectionMismatchError(
                f"{self.describe()}: Chroma collections have one vector per document, not named vectors"
            )
        try:
            self.client.create_collection(
                name,
                configuration={"hnsw": {"space": "cosine"}},
                metadata={CREATED_KEY: layout.created} if layout.created else None,
                embedding_function=_StoredFunction(_function_config(layout)),
            )
        finally:  # chromadb registers the class of the function it stores under its name: take the name back
            register_embedding_function(InstructorEmbeddingFunction)

    def _drop(self, name: str) -> None:
        self._handles.pop(name, None)
        self.client.delete_collection(name)

    def _sink(self, name: str) -> ChromaSink:
        sink = ChromaSink(self._get(name), None)
        sink.overlap = self.remote
        return sink

    def _query(
        self, name: str, vectors: list[list[float]], k: int, filters: Mapping[str, Any] | None, vector: str | None
    ) -> list[list[Hit]]:
        if vector is not None:
            raise InputError("Chroma collections have one vector per document; drop the named vector")
        where = where_clause(filters)
        result = self._get(name).query(query_embeddings=vectors, n_results=k, where=where)
        return [
            [
                Hit(id=i, text=t or "", score=1.0 - float(d), metadata=_user_metadata(m))
                for i, d, t, m in zip(ids, distances, texts, metas, strict=True)
            ]
            for ids, distances, texts, metas in zip(
                result["ids"], result["distances"], result["documents"], result["metadatas"], strict=True
            )
        ]

    def _release(self) -> None:
        close = getattr(self.client, "close", None)
        if close is not None:
            close()


#: The file an embedded Chroma store keeps in its folder.
SQLITE_FILE = "chroma.sqlite3"


@store_factory(
    ChromaStore.features,
    ChromaStore.feature_notes,
    check_name=lambda location, name: check_collection_name(name),  # Chroma's rules, embedded or server
    marker=("chroma.sqlite3", "a Chroma store"),
)
def open_store(location: str, *, create: bool = True) -> ChromaStore:
    """The ``instructor.stores`` factory: ``DIR`` (embedded) or ``http(s)://HOST:PORT`` (a server).

    Args:
        location: The folder or the server's URL.
        create: Make an embedded store where there is none; False raises
            ``instructor_core.ingest.stores.StoreNotFoundError`` instead, creating nothing.
    """
    settings = Settings(anonymized_telemetry=False)
    if location.startswith(("http://", "https://")):
        url = urlparse(location)
        if not url.hostname:
            raise InputError(f"store chroma+{location!r}: expected chroma+http://HOST:PORT")
        try:
            client = chromadb.HttpClient(
                host=url.hostname,
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=settings,
            )
        except Exception as exc:  # chromadb checks the server at construction
            if is_transport_error(exc) or isinstance(exc, ValueError):
                raise StoreUnavailableError(f"cannot reach chroma at {location}: {exc}".splitlines()[0]) from exc
            raise
        return ChromaStore(client, location, remote=True)
    if not create:
        folder = Path(location).expanduser()
        if not folder.is_dir():
            raise StoreNotFoundError(location)
        if not (folder / SQLITE_FILE).is_file():
            raise StoreNotFoundError(location, f"the folder holds no Chroma store: no {SQLITE_FILE} in it")
    return _open_embedded(location, settings)


def _open_embedded(location: str, settings: Settings) -> ChromaStore:
    """A ``PersistentClient`` on ``location`` under the folder's inter-process lock: two processes
    writing one embedded Chroma folder corrupt it, so a second one waits, then fails with one line
    naming the holder's pid (``StoreLockedError``)."""
    from instructor_core.locking import store_lock

    if os.path.exists(location) and not os.path.isdir(location):
        raise StoreUnavailableError(f"chroma:{location} is a file, not a store folder")
    lock = store_lock(location, timeout=lock_timeout_s(), what="Chroma store")
    lock.__enter__()
    try:
        client = chromadb.PersistentClient(path=location, settings=settings)
    except BaseException:
        lock.__exit__(None, None, None)
        raise
    return ChromaStore(client, location, remote=False, lock=lock)
