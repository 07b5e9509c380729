"""InstructorDocumentEmbedder: Documents' vectors under the document instruction (or their own)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from haystack import Document, component, default_from_dict
from haystack.utils import ComponentDevice, Secret

from instructor_core import InstructorEncoder
from instructor_core.errors import InputTypeError
from instructor_core.model.backends import Backend
from instructor_core.model.quantization import Precision

from .dense import DEFAULT_API_KEY, DEFAULT_TOKEN, DenseSettings
from .documents import check_documents, check_meta_fields, document_texts, meta_instructions

__all__ = ["InstructorDocumentEmbedder"]


@component
class InstructorDocumentEmbedder(DenseSettings):
    """Embeds Documents with the document instruction, or each with its own from its meta; the
    instruction stays out of pooling, and one batch may mix instructions.

    Follows Haystack's ``SentenceTransformersDocumentEmbedder`` (``run(documents) -> {"documents":
    [...]}`` returning new Documents with ``embedding`` set, ``meta_fields_to_embed``,
    ``embedding_separator``, ``run_async``, ``warm_up``, ``to_dict``/``from_dict``). Unlike it, a
    Document without content or without a field of ``meta_fields_to_embed`` is an error naming it,
    raised before anything is embedded.

    Usage example:

    ```python
    from haystack import Document
    from haystack_integrations.components.embedders.instructor import InstructorDocumentEmbedder

    embedder = InstructorDocumentEmbedder(
        model="hkunlp/instructor-large",
        instruction="Represent the scientific abstract for retrieval: ",
        instruction_meta_key="instruction",  # a Document may carry its own
    )
    docs = embedder.run([Document(content="Vitamin D ...")])["documents"]
    ```

    Args:
        model: See :class:`InstructorTextEmbedder`.
        encoder: See :class:`InstructorTextEmbedder`.
        instruction: The document instruction; None takes the model's own, "" means none.
        prompt_name: One of the model's named prompts in place of ``instruction``.
        instruction_meta_key: A meta key whose value (a str) is that Document's instruction, in place
            of ``instruction`` where present.
        meta_fields_to_embed: Meta fields embedded with the content, before it, each required.
        embedding_separator: What joins the meta fields and the content.
        device: See :class:`InstructorTextEmbedder`.
        token: See :class:`InstructorTextEmbedder`.
        batch_size: Texts per forward pass at full length (shorter texts share the token budget).
        progress_bar: Show a progress bar over batches.
        normalize_embeddings: See :class:`InstructorTextEmbedder`.
        truncate_dim: See :class:`InstructorTextEmbedder`.
        precision: See :class:`InstructorTextEmbedder`; "int8"/"uint8" without ``quantization_ranges``
            calibrate on the Documents of the call.
        quantization_ranges: See :class:`InstructorTextEmbedder`.
        dtype: See :class:`InstructorTextEmbedder` (every :class:`~instructor_core.LoadOptions` field
            below is as there).
        max_length: See :class:`InstructorTextEmbedder`.
        backend: See :class:`InstructorTextEmbedder`.
        backend_cache_dir: See :class:`InstructorTextEmbedder`.
        revision: See :class:`InstructorTextEmbedder`.
        trust_remote_code: See :class:`InstructorTextEmbedder`.
        cache_dir: See :class:`InstructorTextEmbedder`.
        instructor: See :class:`InstructorTextEmbedder`.
        prompts: See :class:`InstructorTextEmbedder`.
        default_prompt_name: See :class:`InstructorTextEmbedder`.
        attn_implementation: See :class:`InstructorTextEmbedder`.
    """

    _name = "InstructorDocumentEmbedder"

    def __init__(
        self,
        *,
        model: str | os.PathLike[str] | None = None,
        encoder: InstructorEncoder | None = None,
        instruction: str | None = None,
        prompt_name: str | None = None,
        instruction_meta_key: str | None = None,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        device: ComponentDevice | None = None,
        token: Secret | None = DEFAULT_TOKEN,
        batch_size: int = 32,
        progress_bar: bool = True,
        normalize_embeddings: bool = True,
        truncate_dim: int | None = None,
        precision: Precision = "float32",
        quantization_ranges: list[list[float]] | None = None,
        dtype: str | None = None,
        max_length: int | None = None,
        backend: Backend = "torch",
        backend_cache_dir: str | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
        cache_dir: str | None = None,
        instructor: bool | None = None,
        prompts: Mapping[str, str] | None = None,
        default_prompt_name: str | None = None,
        attn_implementation: str | None = None,
        server_url: str | None = None,
        api_key: Secret | None = DEFAULT_API_KEY,
    ) -> None:
        options = self._load_options(
            device=device, dtype=dtype, max_length=max_length, backend=backend, backend_cache_dir=backend_cache_dir,
            revision=revision, trust_remote_code=trust_remote_code, cache_dir=cache_dir, instructor=instructor,
            prompts=prompts, default_prompt_name=default_prompt_name, attn_implementation=attn_implementation,
        )  # fmt: skip
        self._setup(
            model=model, encoder=encoder, instruction=instruction, prompt_name=prompt_name, device=device,
            token=token, batch_size=batch_size, progress_bar=progress_bar, normalize_embeddings=normalize_embeddings,
            truncate_dim=truncate_dim, precision=precision, quantization_ranges=quantization_ranges, options=options,
            server_url=server_url, api_key=api_key,
        )  # fmt: skip
        self.instruction_meta_key = instruction_meta_key
        self.meta_fields_to_embed = check_meta_fields(meta_fields_to_embed, self._name)
        self.embedding_separator = embedding_separator
        if instruction_meta_key is not None and not isinstance(instruction_meta_key, str):
            raise InputTypeError(
                f"{self._name}: instruction_meta_key must be a str, got {type(instruction_meta_key).__name__}"
            )
        if not isinstance(embedding_separator, str):
            raise InputTypeError(f"{self._name}: embedding_separator must be a str, got {embedding_separator!r:.40}")

    def _init_parameters(self) -> dict[str, Any]:
        return {
            **DenseSettings._init_parameters(self),  # not super(): @component rebuilds the class
            "instruction_meta_key": self.instruction_meta_key,
            "meta_fields_to_embed": self.meta_fields_to_embed,
            "embedding_separator": self.embedding_separator,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstructorDocumentEmbedder:
        """The component ``to_dict`` described."""
        return default_from_dict(cls, data)

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        """Embed Documents; every one is checked before any is embedded.

        Args:
            documents: The Documents; they are not changed.

        Returns:
            ``{"documents": [...]}``: new Documents, in order, with ``embedding`` set.

        Raises:
            TypeError: Not a list of Documents, or a non-str instruction in the meta (naming the item).
            ValueError: A Document without content or without a field of ``meta_fields_to_embed``
                (naming it).
        """
        where = f"{self._name}.run"
        items = check_documents(documents, where)
        texts = document_texts(items, self.meta_fields_to_embed, self.embedding_separator, where)
        if not items:
            return {"documents": []}
        instructions = meta_instructions(items, self.instruction_meta_key, self._instruction("document"), where)
        vectors = self._encode(list(zip(instructions, texts, strict=True)))
        return {"documents": [replace(d, embedding=v) for d, v in zip(items, vectors, strict=True)]}

    @component.output_types(documents=list[Document])
    async def run_async(self, documents: list[Document]) -> dict[str, list[Document]]:
        """:meth:`run` in a worker thread, so the event loop keeps running while the model works."""
        return await asyncio.to_thread(self.run, documents)
