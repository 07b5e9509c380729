"""The typed boundary between the core and the adapters: what an encoder must offer.

Adapters (LangChain, LlamaIndex, Chroma, Qdrant, Ray) type against :class:`Encoder` rather than
``InstructorEncoder`` itself, so a wrapper or a test double that keeps the contract fits.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

import numpy as np

from instructor_core.instructions import Instructions

__all__ = ["Encoder"]


@runtime_checkable
class Encoder(Protocol):
    """Embeds queries and documents with their instructions (``InstructorEncoder`` is one)."""

    @property
    def dimension(self) -> int:
        """Length of each vector."""
        ...

    @property
    def instructions(self) -> Instructions:
        """The default query and document instructions."""
        ...

    def encode_queries(
        self,
        texts: Iterable[str],
        instruction: str | None = None,
        *,
        batch_size: int = 32,
        normalize: bool = True,
        show_progress: bool = False,
    ) -> np.ndarray:
        """float32 ``(n, dimension)`` vectors of queries under the query instruction."""
        ...

    def encode_documents(
        self,
        texts: Iterable[str],
        instruction: str | None = None,
        *,
        batch_size: int = 32,
        normalize: bool = True,
        show_progress: bool = False,
    ) -> np.ndarray:
        """float32 ``(n, dimension)`` vectors of documents under the document instruction."""
        ...
