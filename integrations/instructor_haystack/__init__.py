"""instructor_haystack: a short name for ``haystack_integrations.components.embedders.instructor``.

The classes are the same objects; a pipeline saved with them records their ``haystack_integrations``
path, so it loads with Haystack's default deserialization allowlist either way.
"""

from __future__ import annotations

from haystack_integrations.components.embedders.instructor import (
    InstructorDocumentEmbedder,
    InstructorSparseDocumentEmbedder,
    InstructorSparseTextEmbedder,
    InstructorTextEmbedder,
    clear_encoder_cache,
)

__all__ = [
    "InstructorDocumentEmbedder",
    "InstructorSparseDocumentEmbedder",
    "InstructorSparseTextEmbedder",
    "InstructorTextEmbedder",
    "clear_encoder_cache",
]
