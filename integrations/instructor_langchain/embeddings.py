"""InstructorEmbeddings: a LangChain ``Embeddings`` over an :class:`InstructorEncoder`.

Queries get the query instruction, documents the document instruction; each is applied once, by
the encoder. The async methods run the encoder in a worker thread, one call per list, so the event
loop keeps running while a batch is embedded.
"""

from __future__ import annotations

import asyncio
import os

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from instructor_core import Instructions, InstructorEncoder

__all__ = ["InstructorEmbeddings"]


class InstructorEmbeddings(BaseModel, Embeddings):
    """INSTRUCTOR embeddings for LangChain: the query instruction on queries, the document
    instruction on documents.

    Build it from a model name or folder (``model_name="hkunlp/instructor-large"``) or from an
    encoder you already loaded (``encoder=enc``), so one model serves several adapters.

    Example:
        >>> emb = InstructorEmbeddings(
        ...     model_name="hkunlp/instructor-large",
        ...     query_instruction="Represent the scientific claim for retrieving supporting abstracts: ",
        ...     document_instruction="Represent the scientific abstract for retrieval: ",
        ... )
        >>> vectors = emb.embed_documents(["An abstract."])
        >>> query = emb.embed_query("A claim.")

    Attributes:
        model_name: Hub id or local folder (a str or a path) to load; leave None when passing
            ``encoder``.
        encoder: An already loaded encoder to share; not serialized.
        query_instruction: Prepended to every query; None takes the encoder's default
            (``encoder.instructions.query``), "" means none.
        document_instruction: Prepended to every document; None takes the encoder's default.
        batch_size: Texts per forward pass.
        normalize: L2-normalize the vectors (cosine similarity equals the dot product).
        show_progress: Show a progress bar while embedding documents.
        device: Where to load ``model_name`` ("cpu", "cuda", ...); None picks the best device.
            Only used when loading; move a shared encoder yourself.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, protected_namespaces=())

    model_name: str | None = None
    encoder: InstructorEncoder | None = Field(default=None, exclude=True, repr=False)
    query_instruction: str | None = None
    document_instruction: str | None = None
    batch_size: int = Field(default=32, gt=0)
    normalize: bool = True
    show_progress: bool = False
    device: str | None = None

    @field_validator("model_name", mode="before")
    @classmethod
    def _path_to_str(cls, value: object) -> object:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @model_validator(mode="after")
    def _load_encoder(self) -> InstructorEmbeddings:
        if self.encoder is None:
            if self.model_name is None:
                raise ValueError("pass model_name (a hub id or a folder) or encoder (an InstructorEncoder)")
            self.encoder = InstructorEncoder.from_pretrained(self.model_name, device=self.device)
        elif self.model_name is not None:
            raise ValueError("pass either model_name or encoder, not both")
        elif self.device is not None:
            raise ValueError(
                "device only applies when loading model_name; move a shared encoder with encoder.to(device)"
            )
        return self

    @property
    def _model(self) -> InstructorEncoder:
        encoder = self.encoder
        assert encoder is not None  # set by the validator
        return encoder

    @property
    def instructions(self) -> Instructions:
        """The instructions in effect: the ones passed, else the encoder's defaults."""
        return self._model.instructions.replace(query=self.query_instruction, document=self.document_instruction)

    @property
    def dimension(self) -> int:
        """Length of each embedding."""
        return self._model.dimension

    # ------------------------------------------------------------------ sync
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents with the document instruction.

        Args:
            texts: The documents; each must be a str.

        Returns:
            One list of Python floats per document, in input order; ``[]`` for no documents.

        Raises:
            TypeError: If ``texts`` is not a list of strings (the message names the bad item).
        """
        vectors = self._model.encode_documents(
            texts,
            self.document_instruction,
            batch_size=self.batch_size,
            normalize=self.normalize,
            show_progress=self.show_progress,
        )
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed one query with the query instruction.

        Raises:
            TypeError: If ``text`` is not a str.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}: {text!r:.60}")
        vectors = self._model.encode_queries([text], self.query_instruction, batch_size=1, normalize=self.normalize)
        return vectors[0].tolist()

    # ------------------------------------------------------------------ async
    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Like :meth:`embed_documents`, in a worker thread: one encoder call for the whole list."""
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """Like :meth:`embed_query`, in a worker thread."""
        return await asyncio.to_thread(self.embed_query, text)
