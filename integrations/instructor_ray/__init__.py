"""Ray Data integration: embed and ingest corpora past one machine.

- :func:`embed_dataset` adds INSTRUCTOR embeddings to a ``ray.data.Dataset`` with an actor pool
  (the model loaded once per actor; streaming; per-row instructions through a column).
- :class:`ChromaDatasink` and :class:`QdrantDatasink` upsert embedded rows into a store server
  from the workers, under the same deterministic ids and payload as the single-process helpers.
- :func:`ingest_dataset` validates, embeds and writes in one call; for an embedded store
  (``chroma:DIR``, ``qdrant:DIR``) the cluster embeds and the driver writes.
- :func:`read_corpus_dataset` reads JSONL / Parquet / CSV shards, keeping each row's file.

Install with ``pip install "instructor[ray]"``.
"""

from __future__ import annotations

try:
    import ray.data  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError('instructor_ray needs Ray Data; install it with: pip install "instructor[ray]"') from exc

from .blocks import RowFields, ShardRecordError
from .embed import embed_dataset
from .ingest import PATH_COLUMN, ingest_dataset, read_corpus_dataset
from .sinks import ChromaDatasink, QdrantDatasink
from .stores import StoreTarget

__all__ = [
    "PATH_COLUMN",
    "ChromaDatasink",
    "QdrantDatasink",
    "RowFields",
    "ShardRecordError",
    "StoreTarget",
    "embed_dataset",
    "ingest_dataset",
    "read_corpus_dataset",
]
