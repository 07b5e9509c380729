"""Ray Data integration: embed and ingest corpora past one machine.

- :func:`embed_dataset` adds INSTRUCTOR embeddings to a ``ray.data.Dataset`` with an actor pool
  (the model loaded once per actor; streaming; per-row instructions through a column).
- :class:`ChromaDatasink` and :class:`QdrantDatasink` upsert embedded rows into a store server
  from the workers, under the same deterministic ids and payload as the single-process helpers.
- :func:`ingest_dataset` validates, embeds and writes in one call; for an embedded store
  (``chroma:DIR``, ``qdrant:DIR``) the cluster embeds and the driver writes.
- :func:`read_corpus_dataset` reads JSONL / CSV / Parquet shards with the core readers, keeping each
  row's file and line.

Install with ``pip install -e ".[ray]"`` from a checkout.
"""

from __future__ import annotations

import importlib
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

from instructor_core.errors import install_hint

if TYPE_CHECKING:  # the names below, for type checkers; at run time they load on first use
    from .blocks import RowFields, ShardRecordError
    from .embed import embed_dataset
    from .ingest import PATH_COLUMN, ingest_dataset, read_corpus_dataset
    from .sinks import ChromaDatasink, QdrantDatasink, StoreDatasink
    from .stores import StoreTarget

if find_spec("ray") is None:  # pragma: no cover - depends on the environment
    raise ImportError(f"instructor_ray needs Ray Data; install it with: {install_hint('ray')}")

#: Where each public name lives: imported on first use, so ``instructor_ray.cli`` (the CLI's engine
#: entry point) loads without importing Ray.
_HOME = {
    "PATH_COLUMN": "ingest",
    "ChromaDatasink": "sinks",
    "QdrantDatasink": "sinks",
    "RowFields": "blocks",
    "ShardRecordError": "blocks",
    "StoreDatasink": "sinks",
    "StoreTarget": "stores",
    "embed_dataset": "embed",
    "ingest_dataset": "ingest",
    "read_corpus_dataset": "ingest",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'instructor_ray' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])


__all__ = [
    "PATH_COLUMN",
    "ChromaDatasink",
    "QdrantDatasink",
    "RowFields",
    "ShardRecordError",
    "StoreDatasink",
    "StoreTarget",
    "embed_dataset",
    "ingest_dataset",
    "read_corpus_dataset",
]
