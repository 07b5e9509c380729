"""InstructorEmbedding: a LlamaIndex ``BaseEmbedding`` over an :class:`InstructorEncoder`.

Queries get the query instruction, node texts the document (text) instruction; each is applied
once, by the encoder. Batches stay batches on the async path too: LlamaIndex's default async
embedding gathers one call per text, this class runs one encoder call per ``embed_batch_size``
chunk in a worker thread, so the event loop keeps running.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Mapping

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.callbacks import CallbackManager
from llama_index.core.storage.kvstore.types import BaseKVStore
from pydantic import Field, PrivateAttr

from instructor_core import Instructions, InstructorEncoder, LoadOptions, RemoteEncoder
from instructor_core.errors import InputError, InputTypeError

__all__ = ["InstructorEmbedding"]


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
        options: How ``model_name`` was loaded (:class:`~instructor_core.LoadOptions`; the device
            is not kept).
        query_prompt_name: A named prompt of the model (``encoder.prompts``) for queries, in place
            of the query instruction.
        text_prompt_name: A named prompt for documents and nodes, in place of the text instruction.
        truncate_dim: Keep the first N dimensions of each vector (Matryoshka models).
    """

    query_instruction: str | None = Field(default=None, description="Instruction for queries; None: the model's own.")
    text_instruction: str | None = Field(
        default=None, description="Instruction for documents and nodes; None: the model's own."
    )
    normalize: bool = Field(default=True, description="L2-normalize the embeddings.")
    options: LoadOptions = Field(default_factory=LoadOptions, description="How model_name was loaded.")
    query_prompt_name: str | None = Field(
        default=None, description="A named prompt of the model for queries, in place of the query instruction."
    )
    text_prompt_name: str | None = Field(
        default=None, description="A named prompt of the model for documents, in place of the text instruction."
    )
    truncate_dim: int | None = Field(default=None, gt=0, description="Keep the first N dimensions (Matryoshka).")

    _encoder: InstructorEncoder | RemoteEncoder = PrivateAttr()

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
        options: LoadOptions | Mapping[str, object] | None = None,
        encoder: InstructorEncoder | RemoteEncoder | None = None,
        normalize: bool = True,
        query_prompt_name: str | None = None,
        text_prompt_name: str | None = None,
        truncate_dim: int | None = None,
        num_workers: int | None = None,
        embeddings_cache: BaseKVStore | None = None,
        server: str | None = None,
        api_key: str | None = None,
        **keywords: object,
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
            options: The other loading options (:class:`~instructor_core.LoadOptions`: ``backend``,
                ``dtype``, ``max_length``, ...); ``cache_folder`` and ``device`` above override its
                ``cache_dir`` and ``device``.
            encoder: An already loaded encoder to share between adapters.
            normalize: L2-normalize the vectors.
            query_prompt_name: A named prompt for queries (not with ``query_instruction``).
            text_prompt_name: A named prompt for documents (not with ``text_instruction``).
            truncate_dim: Keep the first N dimensions of each vector (Matryoshka models).
            num_workers: LlamaIndex async workers (batches still run one at a time on the model).
            embeddings_cache: A LlamaIndex key-value store that caches text embeddings.
            server: The URL of a running ``instructor serve``: embed there (queries with the query
                role, nodes with the document role) instead of loading a model.
            api_key: The server's key (default: ``$INSTRUCTOR_API_KEY``).
            **keywords: Any other :class:`~instructor_core.LoadOptions` field or alias as a keyword
                (``max_length=128``, ``backend="onnx-int8"``, ``dtype``, ``revision``,
                ``trust_remote_code``, ...), folded into ``options``; another keyword is a ``TypeError``.

        Raises:
            ValueError: If neither or both of ``model_name`` and ``encoder`` are given, or a
                loading option (``device``, ``options``, ...) is given with ``encoder``.
            TypeError: If ``encoder`` is not an InstructorEncoder.
        """
        if isinstance(options, Mapping):  # LlamaIndex's from_dict / from_json hands its fields back as a dict
            options = LoadOptions.from_mapping(options, where="InstructorEmbedding")
        options = LoadOptions.from_keywords(keywords, where="InstructorEmbedding", base=options)
        loading = (options or LoadOptions()).merged(
            {"cache_dir": cache_folder, "device": device}, where="InstructorEmbedding"
        )
        if server is not None:
            if encoder is not None or model_name is not None:
                raise InputError("pass server (a running instructor serve), model_name or encoder: one of them")
            loading.for_encoder("InstructorEmbedding(server=...)")
            remote = RemoteEncoder(server, api_key=api_key)
            encoder, name = remote, remote.model_name
        elif encoder is None:
            if model_name is None:
                raise InputError(
                    "pass model_name (a hub id or a folder, e.g. 'hkunlp/instructor-base', the default of "
                    "llama-index-embeddings-instructor) or encoder=InstructorEncoder"
                )
            encoder = InstructorEncoder.from_pretrained(model_name, options=loading)
            name = os.fspath(model_name)
        else:
            if not isinstance(encoder, (InstructorEncoder, RemoteEncoder)):
                raise InputTypeError(f"encoder must be an InstructorEncoder, got {type(encoder).__name__}")
            if model_name is not None:
                raise InputError("pass either model_name or encoder, not both")
            loading.for_encoder("InstructorEmbedding(encoder=...)")
            name = encoder.model_name if isinstance(encoder, RemoteEncoder) else str(encoder.spec.transformer_path)
        super().__init__(
            model_name=name,
            query_instruction=query_instruction,
            text_instruction=text_instruction,
            embed_batch_size=embed_batch_size,
            normalize=normalize,
            query_prompt_name=query_prompt_name,
            text_prompt_name=text_prompt_name,
            truncate_dim=truncate_dim,
            callback_manager=callback_manager,
            num_workers=num_workers,
            embeddings_cache=embeddings_cache,
            options=dataclasses.replace(loading, device=None),
        )
        self._encoder = encoder

    @property
    def cache_folder(self) -> str | None:
        """llama-index's name for the hub download cache (``options.cache_dir``)."""
        return self.options.cache_dir

    @classmethod
    def class_name(cls) -> str:
        return "InstructorEmbedding"

    @property
    def encoder(self) -> InstructorEncoder | RemoteEncoder:
        """The shared encoder."""
        return self._encoder

    @property
    def instructions(self) -> Instructions:
        """The instructions in effect: the ones passed, else the encoder's defaults."""
        return self._encoder.instructions.replace(query=self.query_instruction, document=self.text_instruction)

    # ------------------------------------------------------------------ sync
    def _embed_queries(self, queries: list[str]) -> list[list[float]]:
        vectors = self._encoder.encode_queries(
            queries,
            self.query_instruction,
            prompt_name=self.query_prompt_name,
            batch_size=self.embed_batch_size,
            normalize=self.normalize,
            truncate_dim=self.truncate_dim,
        )
        return vectors.tolist()

    def _get_query_embedding(self, query: str) -> list[float]:
        if not isinstance(query, str):
            raise InputTypeError(f"query must be a str, got {type(query).__name__}: {query!r:.60}")
        return self._embed_queries([query])[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        if not isinstance(text, str):
            raise InputTypeError(f"text must be a str, got {type(text).__name__}: {text!r:.60}")
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        vectors = self._encoder.encode_documents(
            texts,
            self.text_instruction,
            prompt_name=self.text_prompt_name,
            batch_size=self.embed_batch_size,
            normalize=self.normalize,
            truncate_dim=self.truncate_dim,
        )
        return vectors.tolist()

    # ------------------------------------------------------------------ async: worker threads, whole batches
    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)
