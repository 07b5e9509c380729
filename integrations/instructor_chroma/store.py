"""Chroma behind the core's store protocol (``instructor_core.stores.Store``), for the CLI and Ray.

Registered as the ``chroma`` entry point of ``instructor.stores``: ``chroma:DIR`` opens an embedded
``PersistentClient``, ``chroma+http://HOST:PORT`` an ``HttpClient``. The model and both instructions
live in the collection's embedding-function configuration, so a search needs only the collection.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import chromadb
from chromadb.config import Settings
from chromadb.errors import ChromaError, NotFoundError

from instructor_core.engine import DuplicatePolicy, IngestReport
from instructor_core.engine_errors import engine_failure
from instructor_core.errors import InstructorError
from instructor_core.protocols import Encoder
from instructor_core.stores import (
    CollectionInfo,
    CollectionNotFoundError,
    Hit,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
    check_model,
    encoder_fingerprint,
    lock_timeout_s,
)
from instructor_core.terminal import short_repr
from instructor_core.validation import check_positive_int

from .embedding import NAME, InstructorEmbeddingFunction
from .ingest import DEFAULT_BATCH_SIZE, _stored_dimension, ingest, is_transport_error, open_collection

__all__ = ["ChromaStore", "check_collection_name", "open_store", "where_clause"]

CREATED_KEY = "instructor_created"
T = TypeVar("T")


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
        raise ValueError(f"collection name {short_repr(name)}: {rule}")
    if ".." in name:
        raise ValueError(f"collection name {name!r}: Chroma refuses two periods in a row")
    if re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", name):
        raise ValueError(f"collection name {name!r}: Chroma refuses a name that is an IP address")
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
            raise ValueError(f"filter key {key!r}: expected a metadata key (not empty, not a $ operator)")
        if not isinstance(value, (str, int, float, bool)):
            raise ValueError(f"filter {key!r}: the value must be a str, int, float or bool, got {value!r}")
    if len(filters) == 1:
        return dict(filters)
    return {"$and": [{key: value} for key, value in filters.items()]}


def _one_line(method: Callable[..., T]) -> Callable[..., T]:
    """chromadb's own errors (``ChromaError``: a rejected argument, an internal error) and transport
    errors as one-line ``StoreError`` naming the store; anything else unchanged."""

    @functools.wraps(method)
    def wrapper(self: ChromaStore, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except ChromaError as exc:
            if isinstance(exc, NotFoundError):
                raise
            if (cause := engine_failure(exc, self.describe())) is not None:  # disk full, damaged files
                raise StoreError(cause) from exc
            text = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
            raise StoreError(f"{self.describe()} refused the request: {text}") from exc
        except Exception as exc:
            if not isinstance(exc, InstructorError) and (cause := engine_failure(exc, self.describe())) is not None:
                raise StoreError(cause) from exc
            if is_transport_error(exc):
                text = f"{exc}".splitlines()[0] if str(exc) else type(exc).__name__
                raise StoreUnavailableError(f"cannot reach {self.describe()}: {text}") from exc
            raise

    return wrapper


class ChromaStore:
    """A Chroma client (embedded folder or server) as an ``instructor_core.stores.Store``.

    Args:
        client: A chromadb client.
        location: The folder or URL it was opened from (for messages).
        remote: Whether the client talks to a server (its writes then overlap the encoding).
        lock: The entered ``store_lock`` of an embedded folder, released by :meth:`close`.
    """

    def __init__(self, client: Any, location: str, *, remote: bool, lock: Any = None) -> None:
        self.client = client
        self.location = location
        self.remote = remote
        self._lock = lock

    def describe(self) -> str:
        """``"chroma at DIR"`` or ``"chroma at http://HOST:PORT"``."""
        return f"chroma at {self.location}"

    @_one_line
    def list_collections(self) -> list[str]:
        """Names of the collections."""
        return sorted(c if isinstance(c, str) else c.name for c in self.client.list_collections())

    def _collection(self, name: str, embedding_function: Any = None) -> Any:
        try:
            if embedding_function is None:
                return self.client.get_collection(name)
            return self.client.get_collection(name, embedding_function=embedding_function)
        except NotFoundError:
            raise CollectionNotFoundError(name, self.describe(), self.list_collections()) from None

    def _config(self, name: str, collection: Any) -> dict[str, Any]:
        stored = (collection.configuration_json or {}).get("embedding_function") or {}
        if stored.get("name") != NAME:
            raise StoreUnavailableError(
                f"collection {name!r} in {self.describe()} was not made with instructor (its embedding "
                f"function: {stored.get('name', 'none')!r})"
            )
        config = dict(stored.get("config") or {})
        InstructorEmbeddingFunction.validate_config(config)
        return config

    @_one_line
    def info(self, name: str) -> CollectionInfo:
        """What the collection's embedding-function config records, plus its size."""
        check_collection_name(name)
        if name not in self.list_collections():
            raise CollectionNotFoundError(name, self.describe(), self.list_collections())
        collection = self._raw_collection(name)
        config = self._config(name, collection)
        return CollectionInfo(
            name=name,
            model=config["model"],
            query_instruction=config["query_instruction"],
            document_instruction=config["document_instruction"],
            dimension=_stored_dimension(collection) or 0,
            count=int(collection.count()),
            fingerprint=config.get("fingerprint"),
            created=(collection.metadata or {}).get(CREATED_KEY),
        )

    def _raw_collection(self, name: str) -> Any:
        """The collection without rebuilding its embedding function (no model load): chromadb's
        ``get_collection`` builds it from the config, so the model-free path lists the model."""
        for collection in self.client.list_collections():
            if not isinstance(collection, str) and collection.name == name:
                return collection
        return self._collection(name)

    def _function(self, encoder: Encoder, model: str) -> InstructorEmbeddingFunction:
        return InstructorEmbeddingFunction(
            model,
            query_instruction=encoder.instructions.query,
            document_instruction=encoder.instructions.document,
            encoder=encoder,
        )

    @_one_line
    def ingest(
        self,
        name: str,
        documents: Iterable[Any],
        encoder: Encoder,
        *,
        model: str,
        batch_size: int | None = None,
        on_duplicate: DuplicatePolicy = "error",
        show_progress: bool = True,
        allow_model_change: bool = False,
    ) -> IngestReport:
        """Create (or check) the collection for ``encoder`` and ``model``, then ingest ``documents``."""
        check_collection_name(name)
        ef = self._function(encoder, model)
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        collection = open_collection(
            self.client, name, ef, metadata={CREATED_KEY: created}, allow_model_change=allow_model_change
        )
        return ingest(
            collection,
            documents,
            embedding_function=ef,
            batch_size=batch_size or DEFAULT_BATCH_SIZE,
            show_progress=show_progress,
            overlap=self.remote,
            on_duplicate=on_duplicate,
            allow_model_change=allow_model_change,
        )

    @_one_line
    def search(
        self,
        name: str,
        queries: Sequence[str],
        encoder: Encoder,
        *,
        k: int = 10,
        filters: Mapping[str, Any] | None = None,
        instruction: str | None = None,
        vector: str | None = None,
        allow_model_change: bool = False,
    ) -> list[list[Hit]]:
        """Embed ``queries`` with the query instruction and query the collection."""
        check_positive_int(k, "k")
        if vector is not None:
            raise ValueError("Chroma collections have one vector per document; drop the named vector")
        where = where_clause(filters)
        check_collection_name(name)
        collection = self._raw_collection(name)
        config = self._config(name, collection)
        check_model(
            name, config.get("fingerprint"), encoder_fingerprint(encoder), allow_model_change=allow_model_change
        )
        if not queries:
            return []
        vectors = encoder.encode_queries(list(queries), instruction)
        result = collection.query(query_embeddings=vectors, n_results=k, where=where)
        return [
            [
                Hit(id=i, text=t or "", score=1.0 - float(d), metadata=dict(m or {}))
                for i, d, t, m in zip(ids, distances, texts, metas, strict=True)
            ]
            for ids, distances, texts, metas in zip(
                result["ids"], result["distances"], result["documents"], result["metadatas"], strict=True
            )
        ]

    @_one_line
    def delete(self, name: str) -> None:
        """Delete the collection."""
        if name not in self.list_collections():
            raise CollectionNotFoundError(name, self.describe(), self.list_collections())
        self.client.delete_collection(name)

    def close(self) -> None:
        """Release the client, then the folder's lock (an embedded store)."""
        try:
            close = getattr(self.client, "close", None)
            if close is not None:
                close()
        finally:
            lock, self._lock = self._lock, None
            if lock is not None:
                lock.__exit__(None, None, None)


#: The file an embedded Chroma store keeps in its folder.
SQLITE_FILE = "chroma.sqlite3"


def open_store(location: str, *, create: bool = True) -> ChromaStore:
    """The ``instructor.stores`` factory: ``DIR`` (embedded) or ``http(s)://HOST:PORT`` (a server).

    Args:
        location: The folder or the server's URL.
        create: Make an embedded store where there is none; False raises
            ``instructor_core.stores.StoreNotFoundError`` instead, creating nothing.
    """
    settings = Settings(anonymized_telemetry=False)
    if location.startswith(("http://", "https://")):
        url = urlparse(location)
        if not url.hostname:
            raise ValueError(f"store chroma+{location!r}: expected chroma+http://HOST:PORT")
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
