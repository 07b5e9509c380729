"""InstructorEmbedding: a LlamaIndex ``BaseEmbedding`` over an :class:`InstructorEncoder`.

Queries get the query instruction, node texts the document (text) instruction; each is applied
once, by the encoder. Batches stay batches on the async path too: LlamaIndex's default async
embedding gathers one call per text, this class runs one encoder call per ``embed_batch_size``
chunk in a worker thread, so the event loop keeps running.
"""

from __future__ import annotations

import asyncio
import os
from typing import Literal

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.callbacks import CallbackManager
from llama_index.core.storage.kvstore.types import BaseKVStore
from pydantic import Field, PrivateAttr

from instructor_core import Instructions, InstructorEncoder
from instructor_core.backends import Backend

__all__ = ["InstructorEmbedding"]


_LOADING_DEFAULTS: dict[str, object] = {
    "device": None,
    "cache_folder": None,
    "backend": "torch",
    "dtype": None,
    "max_length": None,
    "revision": None,
    "trust_remote_code": False,
    "instructor": None,
}


class InstructorEmbedding(BaseEmbedding):
    """INSTRUCTOR embeddings for LlamaIndex: the query instruction on queries, the text
    instruction on documents and nodes.

    A drop-in for ``llama-index-embeddings-instructor``'s ``InstructorEmbedding``: its
    constructor calls work unchanged, by keyword or by position (``model_name``,
    ``query_instruction``, ``text_instruction``, ``embed_batch_size``, ``cache_folder``,
    ``device``, ``callback_manager``); see docs/migrating.md for what differs.

    Example:
        >>> from llama_index.core import Settings
        >>> Settings.embed_model = InstructorEmbedding(
        ...     "hkunlp/instructor-large",
        ...     query_instruction="Represent the scientific claim for retrieving supporting abstracts: ",
        ...     text_instruction="Represent the scientific abstract for retrieval: ",
        ... )

    Attributes:
        model_name: The hub id or folder loaded (for an ``encoder=`` passed in, its folder).
        query_instruction: Prepended to every query; None takes the encoder's default.
        text_instruction: Prepended to every document/node text; None takes the encoder's default.
        embed_batch_size: Texts per encoder call (LlamaIndex batches by it; it is also the forward
            pass size).
        normalize: L2-normalize the vectors.
        cache_folder: Where hub downloads are cached; None uses the Hugging Face default.
        backend: "torch", "onnx" or "onnx-int8" (see ``InstructorEncoder.from_pretrained``).
        dtype: The weights' dtype; None is float32.
        max_length: Token limit (instruction + text); None takes the model's own.
        revision: Hub revision of ``model_name``.
        trust_remote_code: Whether model code from the folder was allowed.
        instructor: Whether ``model_name`` was stated to be an INSTRUCTOR checkpoint; None: detected.
    """

    query_instruction: str | None = Field(default=None, description="Instruction for queries; None: the model's own.")
    text_instruction: str | None = Field(
        default=None, description="Instruction for documents and nodes; None: the model's own."
    )
    normalize: bool = Field(default=True, description="L2-normalize the embeddings.")
    cache_folder: str | None = Field(default=None, description="Cache folder for hub downloads.")
    backend: Backend = Field(default="torch", description="torch, onnx or onnx-int8.")
    dtype: Literal["float32", "bfloat16", "float16"] | None = Field(default=None, description="Weights' dtype.")
    max_length: int | None = Field(default=None, ge=2, description="Token limit; None: the model's own.")
    revision: str | None = Field(default=None, description="Hub revision of model_name.")
    trust_remote_code: bool = Field(default=False, description="Allow model code from the folder.")
    instructor: bool | None = Field(default=None, description="Whether it is an INSTRUCTOR checkpoint; None: detect.")

    _encoder: InstructorEncoder = PrivateAttr()

    def __init__(
        self,
        model_name: str | os.PathLike[str] | None = None,
        query_instruction: str | None = None,
        text_instruction: str | None = None,
        embed_batch_size: int = 32,
        cache_folder: str | os.PathLike[str] | None = None,
        device: str | None = None,
        callback_manager: CallbackManager | None = None,
        *,
        encoder: InstructorEncoder | None = None,
        normalize: bool = True,
        backend: Backend = "torch",
        dtype: Literal["float32", "bfloat16", "float16"] | None = None,
        max_length: int | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
        instructor: bool | None = None,
        num_workers: int | None = None,
        embeddings_cache: BaseKVStore | None = None,
    ) -> None:
        """Load a model, or wrap a loaded one.

        Args:
            model_name: Hub id or local folder to load; leave None when passing ``encoder``.
            query_instruction: Query instruction; None takes ``encoder.instructions.query``.
            text_instruction: Document instruction; None takes ``encoder.instructions.document``.
            embed_batch_size: Texts per encoder call.
            cache_folder: Where hub downloads are cached; a sentence-transformers 2.x cache
                folder (``owner_name`` subfolders) is read as it is.
            device: Where to load ``model_name``; None picks the best device. Only for loading.
            callback_manager: LlamaIndex callbacks.
            encoder: An already loaded encoder to share between adapters.
            normalize: L2-normalize the vectors.
            backend: "torch" (default), "onnx" or "onnx-int8" (the fast CPU path).
            dtype: "float32" (default), "bfloat16" or "float16".
            max_length: Token limit (instruction + text); None takes the model's own.
            revision: Hub revision of ``model_name``.
            trust_remote_code: Allow model code from the folder; off unless you pass True.
            instructor: Whether ``model_name`` is an INSTRUCTOR checkpoint; None detects it.
            num_workers: LlamaIndex async workers (batches still run one at a time on the model).
            embeddings_cache: A LlamaIndex key-value store that caches text embeddings.

        Raises:
            ValueError: If neither or both of ``model_name`` and ``encoder`` are given, or a
                loading option (``device``, ``backend``, ...) is given with ``encoder``.
            TypeError: If ``encoder`` is not an InstructorEncoder.
        """
        cache = os.fspath(cache_folder) if cache_folder is not None else None
        loading = {
            "device": device,
            "cache_folder": cache,
            "backend": backend,
            "dtype": dtype,
            "max_length": max_length,
            "revision": revision,
            "trust_remote_code": trust_remote_code,
            "instructor": instructor,
        }
        if encoder is None:
            if model_name is None:
                raise ValueError(
                    "pass model_name (a hub id or a folder, e.g. 'hkunlp/instructor-base', the default of "
                    "llama-index-embeddings-instructor) or encoder=InstructorEncoder"
                )
            encoder = InstructorEncoder.from_pretrained(
                model_name,
                device=device,
                max_length=max_length,
                dtype=dtype,
                trust_remote_code=trust_remote_code,
                revision=revision,
                backend=backend,
                instructor=instructor,
                cache_dir=cache,
            )
            name = os.fspath(model_name)
        else:
            if not isinstance(encoder, InstructorEncoder):
                raise TypeError(f"encoder must be an InstructorEncoder, got {type(encoder).__name__}")
            if model_name is not None:
                raise ValueError("pass either model_name or encoder, not both")
            given = [key for key, value in loading.items() if value != _LOADING_DEFAULTS[key]]
            if given:
                raise ValueError(
                    f"{', '.join(given)} only appl{'ies' if len(given) == 1 else 'y'} when loading model_name; "
                    "a shared encoder keeps its own settings (move it with encoder.to(device))"
                )
            name = str(encoder.spec.transformer_path)
        loading.pop("device")
        super().__init__(
            model_name=name,
            query_instruction=query_instruction,
            text_instruction=text_instruction,
            embed_batch_size=embed_batch_size,
            normalize=normalize,
            callback_manager=callback_manager,
            num_workers=num_workers,
            embeddings_cache=embeddings_cache,
            **loading,
        )
        self._encoder = encoder

    @classmethod
    def class_name(cls) -> str:
        return "InstructorEmbedding"

    @property
    def encoder(self) -> InstructorEncoder:
        """The shared encoder."""
        return self._encoder

    @property
    def instructions(self) -> Instructions:
        """The instructions in effect: the ones passed, else the encoder's defaults."""
        return self._encoder.instructions.replace(query=self.query_instruction, document=self.text_instruction)

    # ------------------------------------------------------------------ sync
    def _embed_queries(self, queries: list[str]) -> list[list[float]]:
        vectors = self._encoder.encode_queries(
            queries, self.query_instruction, batch_size=self.embed_batch_size, normalize=self.normalize
        )
        return vectors.tolist()

    def _get_query_embedding(self, query: str) -> list[float]:
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}: {query!r:.60}")
        return self._embed_queries([query])[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}: {text!r:.60}")
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        vectors = self._encoder.encode_documents(
            texts, self.text_instruction, batch_size=self.embed_batch_size, normalize=self.normalize
        )
        return vectors.tolist()

    # ------------------------------------------------------------------ async: worker threads, whole batches
    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)
