"""instructor_llamaindex: INSTRUCTOR embeddings as a LlamaIndex ``BaseEmbedding``.

``InstructorEmbedding`` embeds queries with the query instruction and nodes with the document
(text) instruction; set it as ``Settings.embed_model`` or pass it to an index or an
``IngestionPipeline``.

Needs the ``llamaindex`` extra: ``pip install "instructor[llamaindex]"``.
"""

from __future__ import annotations

try:
    import llama_index.core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "instructor_llamaindex needs LlamaIndex (llama-index-core), which is not installed. "
        'Install it with: pip install "instructor[llamaindex]"'
    ) from exc

from .embeddings import InstructorEmbedding

__all__ = ["InstructorEmbedding"]
