"""InstructorEmbeddingFunction: chromadb's EmbeddingFunction protocol over InstructorEncoder.

Documents (``collection.add/upsert(documents=...)``) are embedded with the document instruction,
query texts (``collection.query(query_texts=...)``) with the query instruction. The model and both
instructions are stored in the collection's configuration; a fresh process that has imported
``instructor_chroma`` rebuilds the function from it, so queries need not be told the model.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import replace
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from instructor_core import Instructions, InstructorEncoder, LoadOptions
from instructor_core.errors import InputError, InputTypeError
from instructor_core.ingest.stores import ModelMismatchError, check_model, encoder_fingerprint
from instructor_core.model.prompts import resolve_prompt
from instructor_core.validation import check_instruction, check_texts

__all__ = ["InstructorEmbeddingFunction", "ModelMismatchError", "clear_encoder_cache"]

#: Name under which the function is registered with chromadb (chroma's own "instructor" function
#: wraps the InstructorEmbedding package; this one is distinct).
NAME = "instructor_chroma"

_CACHE_SIZE = 4


_cache: OrderedDict[tuple[str, LoadOptions], Any] = OrderedDict()
_lock = threading.Lock()


def _encoder_for(model: str, options: LoadOptions) -> Any:
    """A loaded encoder for ``(model, options)`` (the device aside); chroma rebuilds the function from
    its config on every query, so loaded models are kept (the last few) instead of being read again."""
    key = (model, replace(options, device=None))
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    encoder = InstructorEncoder.from_pretrained(model, options=options)
    _remember(model, replace(key[1], max_length=encoder.max_length), encoder)
    if options.max_length is None:
        _remember(model, key[1], encoder)
    return encoder


def _remember(model: str, options: LoadOptions, encoder: Any) -> None:
    with _lock:
        _cache[(model, options)] = encoder
        _cache.move_to_end((model, options))
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)


def clear_encoder_cache() -> None:
    """Forget the encoders kept for functions rebuilt from collection configs (frees their memory)."""
    with _lock:
        _cache.clear()


def _pick_instructions(
    defaults: Instructions, instruction: str | None, query_instruction: str | None, document_instruction: str | None
) -> Instructions:
    """The instructions in effect: ``instruction`` on both sides (Chroma's built-in function), else
    each side's own, else the model's defaults."""
    if instruction is not None:
        if query_instruction is not None or document_instruction is not None:
            raise InputError(
                "pass instruction (one for queries and documents, as chroma's built-in function) or "
                "query_instruction/document_instruction, not both"
            )
        query_instruction = document_instruction = check_instruction(instruction, "instruction")
    return Instructions(
        query=defaults.query if query_instruction is None else check_instruction(query_instruction),
        document=defaults.document
        if document_instruction is None
        else check_instruction(document_instruction, "document_instruction"),
    )


@register_embedding_function
class InstructorEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma embedding function: documents with the document instruction, queries with the query one.

    A drop-in for chroma's built-in ``InstructorEmbeddingFunction(model_name, device,
    instruction)``: those calls work unchanged, by keyword or by position. Chroma's ``instruction``
    is one instruction for documents and queries alike; here it sets both sides to it (the same
    vectors). Left out, the two sides take the model's own query and document instructions (the
    paper's retrieval pair for INSTRUCTOR checkpoints), where chroma's function used none; pass
    ``instruction=""`` to reproduce vectors it made without one. See docs/migrating.md.

    Args:
        model: Hub id or local folder of the model; stored in the collection config, so a local
            folder must exist at the same path wherever the collection is queried.
        device: "cpu", "cuda", ...; None picks the best available. Not stored in the config.
        instruction: One instruction for queries and documents both (chroma's name); None uses
            ``query_instruction`` and ``document_instruction``.
        model_name: Chroma's name for ``model``; pass one of the two.
        query_instruction: Prepended to queries; None takes the model's default.
        document_instruction: Prepended to documents; None takes the model's default.
        normalize: L2-normalize the vectors (cosine space).
        batch_size: Texts per forward pass. Not stored in the config.
        encoder: An already-loaded encoder for ``model`` to use instead of loading it again.
        options: How ``model`` is loaded (:class:`~instructor_core.LoadOptions`); ``device`` above
            overrides its device. Of these, the config keeps ``max_length`` and ``instructor`` (when
            stated, here or when the shared ``encoder`` was loaded), so a fresh process loads the
            model the same way; with a shared ``encoder`` only a ``max_length`` equal to its own is
            accepted.
        query_prompt_name: A named prompt of the model (``encoder.prompts``) for queries, in place of
            the query instruction (the config stores its text as the query instruction).
        document_prompt_name: A named prompt for documents, in place of the document instruction.
        truncate_dim: Keep the first N dimensions of each vector (Matryoshka models); stored in the
            config, so queries in another process get the same dimension.
        server: The URL of a running ``instructor serve``: embed there (each side with its role)
            instead of loading a model; ``model`` defaults to the model it serves.
        api_key: The server's key (default: ``$INSTRUCTOR_API_KEY``).
        **keywords: Any other :class:`~instructor_core.LoadOptions` field or alias as a keyword
            (``max_length=128``, ``backend="onnx-int8"``, ``dtype``, ``revision``, ``trust_remote_code``,
            ``cache_folder``, ...), folded into ``options``; another keyword is a ``TypeError``.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        device: str | None = None,
        instruction: str | None = None,
        *,
        model_name: str | os.PathLike[str] | None = None,
        query_instruction: str | None = None,
        document_instruction: str | None = None,
        normalize: bool = True,
        batch_size: int = 32,
        encoder: Any = None,
        options: LoadOptions | None = None,
        query_prompt_name: str | None = None,
        document_prompt_name: str | None = None,
        truncate_dim: int | None = None,
        server: str | None = None,
        api_key: str | None = None,
        **keywords: object,
    ) -> None:
        options = LoadOptions.from_keywords(keywords, where="InstructorEmbeddingFunction", base=options)
        if server is not None:
            if encoder is not None:
                raise InputError("pass server (a running instructor serve) or encoder, not both")
            from instructor_core import RemoteEncoder

            encoder = RemoteEncoder(server, api_key=api_key)
            if model is None and model_name is None:
                model = encoder.model_name
        if model is not None and model_name is not None:
            raise InputError("pass model or model_name (chroma's name for it), not both")
        model = model if model is not None else model_name
        if model is None:
            raise InputError(
                "pass model (a hub id or a folder, e.g. 'hkunlp/instructor-base', the default of chroma's "
                "built-in InstructorEmbeddingFunction)"
            )
        if not isinstance(model, (str, os.PathLike)):
            raise InputTypeError(f"model must be a hub id or folder path, got {type(model).__name__}")
        self.model = os.fspath(model)
        loading = (options or LoadOptions()).merged({"device": device}, where="InstructorEmbeddingFunction")
        if encoder is None:
            encoder = _encoder_for(self.model, loading)
        else:
            max_length = loading.max_length
            if max_length is not None and encoder.max_length != max_length:
                raise InputError(f"max_length={max_length} differs from the encoder's {encoder.max_length}")
            replace(loading, max_length=None, device=None).for_encoder("InstructorEmbeddingFunction(encoder=...)")
            _remember(self.model, LoadOptions(max_length=encoder.max_length), encoder)
        self._encoder = encoder
        self._config: dict[str, Any] = {}
        for name, prompt_name, explicit in (
            ("query", query_prompt_name, query_instruction),
            ("document", document_prompt_name, document_instruction if instruction is None else instruction),
        ):
            if prompt_name is not None and explicit is not None:
                raise InputError(f"pass {name}_instruction or {name}_prompt_name, not both")
        self.instructions = _pick_instructions(
            encoder.instructions,
            instruction,
            query_instruction if query_prompt_name is None else resolve_prompt(encoder.prompts, query_prompt_name),
            document_instruction
            if document_prompt_name is None
            else resolve_prompt(encoder.prompts, document_prompt_name),
        )
        self.truncate_dim = None if truncate_dim is None else encoder.check_truncate_dim(truncate_dim)
        if not isinstance(normalize, bool):
            raise InputTypeError(f"normalize must be a bool, got {type(normalize).__name__}")
        self.normalize = normalize
        self.max_length: int | None = int(encoder.max_length)
        self.batch_size = batch_size
        # what the caller stated (here or when loading a shared encoder), kept in the config
        spec = getattr(encoder, "spec", None)
        self.instructor: bool | None = getattr(spec, "instructor_stated", None)

    @property
    def model_name(self) -> str:
        """Chroma's name for :attr:`model`."""
        return self.model

    @property
    def encoder(self) -> Any:
        """The encoder in use (loaded now, for a function rebuilt from a collection's config)."""
        return self._loaded()

    def _loaded(self) -> Any:
        """The encoder; a function rebuilt from a config loads its model on first use and checks it
        against the fingerprint the collection recorded."""
        if self._encoder is None:
            config = self._config
            options = LoadOptions(max_length=config.get("max_length"), instructor=config.get("instructor"))
            encoder = _encoder_for(self.model, options)
            check_model(None, config.get("fingerprint"), encoder_fingerprint(encoder))
            self._encoder = encoder
        return self._encoder

    @property
    def fingerprint(self) -> str | None:
        """The model's fingerprint (``InstructorEncoder.fingerprint``), stored in the collection's
        config; None for an encoder that has none."""
        if self._encoder is None:
            return self._config.get("fingerprint")
        return encoder_fingerprint(self._encoder)

    @property
    def dimension(self) -> int:
        """Length of each vector."""
        return int(self._loaded().dimension)

    # ------------------------------------------------------------------ embedding
    def __call__(self, input: Documents) -> Embeddings:
        """Embed documents with the document instruction."""
        texts = check_texts(input, "documents")
        vectors = self._loaded().encode_documents(
            texts,
            self.instructions.document,
            batch_size=self.batch_size,
            normalize=self.normalize,
            **self._truncation(),
        )
        return [np.asarray(v, dtype=np.float32) for v in vectors]

    def _truncation(self) -> dict[str, int]:
        """``truncate_dim`` where one is set; nothing otherwise, so a shared encoder that keeps only the
        core ``Encoder`` protocol (no ``truncate_dim`` keyword) still serves."""
        return {} if self.truncate_dim is None else {"truncate_dim": self.truncate_dim}

    def embed_query(self, input: Documents) -> Embeddings:
        """Embed query texts with the query instruction."""
        texts = check_texts(input, "query texts")
        vectors = self._loaded().encode_queries(
            texts,
            self.instructions.query,
            batch_size=self.batch_size,
            normalize=self.normalize,
            **self._truncation(),
        )
        return [np.asarray(v, dtype=np.float32) for v in vectors]

    # ------------------------------------------------------------------ chroma protocol
    @staticmethod
    def name() -> str:
        return NAME

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        # On unit vectors cosine, inner product and L2 rank identically.
        return ["cosine", "ip", "l2"] if self.normalize else ["cosine"]

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "model": self.model,
            "query_instruction": self.instructions.query,
            "document_instruction": self.instructions.document,
            "normalize": self.normalize,
            "max_length": self.max_length,
            "fingerprint": self.fingerprint,
        }
        if self.instructor is not None:  # stated by the caller: a fresh process must load the model alike
            config["instructor"] = self.instructor
        if self.truncate_dim is not None:
            config["truncate_dim"] = self.truncate_dim
        return config

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> InstructorEmbeddingFunction:
        """The function a collection's config describes. Its model is loaded on first use, not here:
        chromadb rebuilds the function whenever it reads the collection's schema (every upsert of
        precomputed vectors included, and on a machine that may not hold the model, as after an
        ingest through ``instructor serve``). On that first use it is refused
        (``ModelMismatchError``) if the model now at the stored path has another fingerprint than
        the one the collection recorded (weights replaced in place): pass an embedding function
        explicitly to override on purpose."""
        InstructorEmbeddingFunction.validate_config(config)
        function = InstructorEmbeddingFunction.__new__(InstructorEmbeddingFunction)
        function._config = dict(config)
        function._encoder = None
        function.model = config["model"]
        function.instructions = Instructions(config["query_instruction"], config["document_instruction"])
        function.truncate_dim = config.get("truncate_dim")
        function.normalize = config.get("normalize", True)
        function.max_length = config.get("max_length")
        function.batch_size = 32
        function.instructor = config.get("instructor")
        return function

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        if not isinstance(config, dict):
            raise InputError(f"{NAME} config must be a dict, got {type(config).__name__}")
        for key in ("model", "query_instruction", "document_instruction"):
            if not isinstance(config.get(key), str):
                raise InputError(f"{NAME} config needs a str {key!r}, got {config.get(key)!r}")
        if not isinstance(config.get("normalize", True), bool):
            raise InputError(f"{NAME} config 'normalize' must be a bool")
        max_length = config.get("max_length")
        if max_length is not None and (not isinstance(max_length, int) or max_length < 2):
            raise InputError(f"{NAME} config 'max_length' must be an int >= 2 or null")
        if config.get("instructor") is not None and not isinstance(config["instructor"], bool):
            raise InputError(f"{NAME} config 'instructor' must be a bool or absent, got {config['instructor']!r}")
        truncate_dim = config.get("truncate_dim")
        if truncate_dim is not None and (not isinstance(truncate_dim, int) or truncate_dim < 1):
            raise InputError(f"{NAME} config 'truncate_dim' must be a positive int or absent, got {truncate_dim!r}")
        fingerprint = config.get("fingerprint")
        if fingerprint is not None and not isinstance(fingerprint, str):
            raise InputError(f"{NAME} config 'fingerprint' must be a str or null, got {fingerprint!r}")

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        """Refuse a change of model (its fingerprint or its name) or instructions: the stored vectors
        would no longer match (``ModelMismatchError`` for another fingerprint, else ``ValueError``)."""
        check_model(None, old_config.get("fingerprint"), new_config.get("fingerprint"))
        for key in ("model", "query_instruction", "document_instruction", "truncate_dim"):
            if key in new_config and old_config.get(key) != new_config[key]:
                raise InputError(
                    f"cannot change {key} of an existing collection ({old_config.get(key)!r} -> "
                    f"{new_config[key]!r}): its vectors were made with the old one. Create a new "
                    "collection and re-ingest instead."
                )
