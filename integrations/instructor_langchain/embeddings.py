"""InstructorEmbeddings: a LangChain ``Embeddings`` over an :class:`InstructorEncoder`.

Queries get the query instruction, documents the document instruction; each is applied once, by
the encoder. The async methods run the encoder in a worker thread, one call per list, so the event
loop keeps running while a batch is embedded.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from instructor_core import Instructions, InstructorEncoder, LoadOptions, RemoteEncoder
from instructor_core.errors import InputError, InputTypeError
from instructor_core.model.quantization import Precision

__all__ = ["ENCODE_KWARGS", "QUERY_ENCODE_KWARGS", "InstructorEmbeddings"]


#: ``encode_kwargs`` keys understood (sentence-transformers' ``encode`` names, as
#: langchain-huggingface's ``HuggingFaceEmbeddings`` passes them), each mapped to its field here.
ENCODE_KWARGS = {
    "normalize_embeddings": "normalize",
    "batch_size": "batch_size",
    "show_progress_bar": "show_progress",
    "prompt_name": "document_prompt_name",
    "truncate_dim": "truncate_dim",
    "precision": "precision",
}
#: ``query_encode_kwargs`` keys: the same names, for queries (``prompt_name`` sets the query prompt).
QUERY_ENCODE_KWARGS = {**ENCODE_KWARGS, "prompt_name": "query_prompt_name"}


def _merge_encode_kwargs(data: dict[str, Any], bag: str, known: dict[str, str]) -> None:
    """Check the keys of ``data[bag]``; for ``encode_kwargs``, move them onto the fields they mean.
    Refuse unknown keys and clashes with a field given beside them."""
    given = data.get(bag)
    if given is None:
        return
    if not isinstance(given, dict):
        raise InputError(f"{bag} must be a dict, got {type(given).__name__}")
    for key, value in given.items():
        if key not in known:
            raise InputError(
                f"{bag} key {key!r} is not supported by instructor_langchain.InstructorEmbeddings; "
                f"supported: {', '.join(known)}"
            )
        field = known[key]
        if field in data and data[field] != value:
            raise InputError(f"{bag}[{key!r}]={value!r} contradicts {field}={data[field]!r}; pass one of them")
        if bag == "encode_kwargs" or key == "prompt_name":
            data[field] = value


def _gather_loading(data: dict[str, Any]) -> None:
    """Fold LangChain's ``model_kwargs`` and the loading keywords (``device=``, ``cache_folder=``, ...,
    every :class:`LoadOptions` field and alias) into one ``options``; refuse unknown ``model_kwargs`` keys
    and two different values for one option."""
    bag = data.get("model_kwargs")
    if bag is not None and not isinstance(bag, dict):
        raise InputError(f"model_kwargs must be a dict, got {type(bag).__name__}")
    for key in bag or {}:
        if LoadOptions.canonical(key) is None:
            raise InputError(
                f"model_kwargs key {key!r} is not supported by instructor_langchain.InstructorEmbeddings; "
                f"supported: {', '.join(LoadOptions.names())}, cache_folder"
            )
    keywords = {key: data.pop(key) for key in list(data) if LoadOptions.canonical(key) is not None}
    if not keywords and not bag:
        return
    options = data.get("options")
    if options is not None and not isinstance(options, LoadOptions):
        raise InputError(f"options must be a LoadOptions, got {type(options).__name__}")
    data["given_options"] = sorted({LoadOptions.canonical(k) or k for k in (*keywords, *(bag or {}))})
    for key, value in (bag or {}).items():  # a model_kwargs key and its keyword twin must agree
        twin = next((k for k in keywords if LoadOptions.canonical(k) == LoadOptions.canonical(key)), None)
        if twin is not None and keywords[twin] != value:
            raise InputError(f"model_kwargs[{key!r}]={value!r} contradicts {twin}={keywords[twin]!r}; pass one of them")
    merged = LoadOptions.from_mapping({**(bag or {}), **keywords}, where="InstructorEmbeddings", base=options)
    data["options"] = merged


class InstructorEmbeddings(BaseModel, Embeddings):
    """INSTRUCTOR embeddings for LangChain: the query instruction on queries, the document
    instruction on documents.

    Build it from a model name or folder (``model_name="hkunlp/instructor-large"``) or from an
    encoder you already loaded (``encoder=enc``), so one model serves several adapters.

    A drop-in for ``langchain_community``'s ``HuggingFaceInstructEmbeddings``: its constructor
    calls work unchanged (``embed_instruction``, ``query_instruction``, ``cache_folder``,
    ``model_kwargs={"device": ...}``, ``encode_kwargs={"normalize_embeddings": ...,
    "batch_size": ...}``); see docs/migrating.md for what differs.

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
        server: The URL of a running ``instructor serve``: embed there (``embed_query`` with the
            query role, ``embed_documents`` with the document role) instead of loading a model.
        api_key: The server's key (default: ``$INSTRUCTOR_API_KEY``); not serialized.
        query_instruction: Prepended to every query; None takes the encoder's default
            (``encoder.instructions.query``), "" means none.
        document_instruction: Prepended to every document; None takes the encoder's default.
            ``embed_instruction=`` (LangChain's name) sets it too.
        batch_size: Texts per forward pass.
        normalize: L2-normalize the vectors (cosine similarity equals the dot product).
        show_progress: Show a progress bar while embedding documents.
        options: How ``model_name`` is loaded (:class:`~instructor_core.LoadOptions`). Its fields are
            also accepted as keywords (``device="cpu"``, ``backend="onnx-int8"``, ``cache_folder=``
            for ``cache_dir``) and as LangChain's ``model_kwargs`` keys; all of them fold into
            ``options``. Only used when loading; move a shared encoder yourself.
        given_options: The loading options named in the call (for messages).
        model_kwargs: LangChain's loading options: each key is a :class:`LoadOptions` field (or
            ``cache_folder``); any other key is an error naming it.
        document_prompt_name: A named prompt of the model (``encoder.prompts``) for documents, in
            place of the document instruction; ``encode_kwargs={"prompt_name": ...}`` sets it.
        query_prompt_name: A named prompt for queries, in place of the query instruction;
            ``query_encode_kwargs={"prompt_name": ...}`` sets it.
        truncate_dim: Keep the first N dimensions of each vector (Matryoshka models).
        precision: "float32" (default), "int8", "uint8", "binary" or "ubinary" (values as floats).
        encode_kwargs: langchain-huggingface's encoding options: the keys in :data:`ENCODE_KWARGS`
            (``normalize_embeddings``, ``batch_size``, ``show_progress_bar``, ``prompt_name``,
            ``truncate_dim``, ``precision``) are read into the fields above; any other key is an error.
            Its ``prompt_name`` is the documents' (queries keep the query instruction).
        query_encode_kwargs: The same keys for queries only (as ``HuggingFaceEmbeddings``): each
            overrides the field for queries; ``prompt_name`` sets ``query_prompt_name``.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, protected_namespaces=())

    model_name: str | None = None
    encoder: InstructorEncoder | RemoteEncoder | None = Field(default=None, exclude=True, repr=False)
    server: str | None = None
    api_key: str | None = Field(default=None, exclude=True, repr=False)
    query_instruction: str | None = None
    document_instruction: str | None = None
    batch_size: int = Field(default=32, gt=0)
    normalize: bool = True
    show_progress: bool = False
    options: LoadOptions | None = Field(default=None, repr=False)
    given_options: list[str] = Field(default_factory=list, exclude=True, repr=False)
    document_prompt_name: str | None = None
    query_prompt_name: str | None = None
    truncate_dim: int | None = Field(default=None, gt=0)
    precision: Precision = "float32"
    model_kwargs: dict[str, Any] | None = None
    encode_kwargs: dict[str, Any] | None = None
    query_encode_kwargs: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _langchain_names(cls, data: object) -> object:
        """Read LangChain's names: ``embed_instruction``, ``model_kwargs``, ``encode_kwargs``."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "embed_instruction" in data:
            if "document_instruction" in data:
                raise InputError("pass embed_instruction (LangChain's name) or document_instruction, not both")
            data["document_instruction"] = data.pop("embed_instruction")
        _gather_loading(data)
        _merge_encode_kwargs(data, "encode_kwargs", ENCODE_KWARGS)
        _merge_encode_kwargs(data, "query_encode_kwargs", QUERY_ENCODE_KWARGS)
        return data

    @field_validator("model_name", mode="before")
    @classmethod
    def _path_to_str(cls, value: object) -> object:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @model_validator(mode="after")
    def _load_encoder(self) -> InstructorEmbeddings:
        if self.server is not None:
            if self.encoder is not None or self.model_name is not None:
                raise InputError("pass server (a running instructor serve), model_name or encoder: one of them")
            if self.options is not None and self.options.changed():
                raise InputError(
                    f"{', '.join(sorted(self.options.changed()))}: loading options do not apply with server= "
                    "(the server loaded its model)"
                )
            self.encoder = RemoteEncoder(self.server, api_key=self.api_key)
        elif self.encoder is None:
            if self.model_name is None:
                raise InputError(
                    "pass model_name (a hub id or a folder, e.g. 'hkunlp/instructor-large', the default of "
                    "LangChain's HuggingFaceInstructEmbeddings) or encoder (an InstructorEncoder)"
                )
            self.encoder = InstructorEncoder.from_pretrained(self.model_name, options=self.options)
        elif self.model_name is not None:
            raise InputError("pass either model_name or encoder, not both")
        elif self.options is not None:
            given = self.given_options or sorted(self.options.changed())
            if given:
                verb = "applies" if len(given) == 1 else "apply"
                raise InputError(
                    f"{', '.join(given)} only {verb} when loading model_name; a shared encoder keeps its own "
                    "settings (move it with encoder.to(device))"
                )
        return self

    @property
    def cache_folder(self) -> str | None:
        """LangChain's name for the hub download cache (``options.cache_dir``)."""
        return None if self.options is None else self.options.cache_dir

    @property
    def embed_instruction(self) -> str | None:
        """LangChain's name for :attr:`document_instruction`."""
        return self.document_instruction

    @property
    def _model(self) -> InstructorEncoder | RemoteEncoder:
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
    def _call_options(self, *, query: bool) -> dict[str, Any]:
        """The encoder keywords for one side: the fields, and for queries ``query_encode_kwargs`` over them."""
        options: dict[str, Any] = {
            "batch_size": self.batch_size,
            "normalize": self.normalize,
            "show_progress": self.show_progress,
            "truncate_dim": self.truncate_dim,
            "precision": self.precision,
        }
        if query:
            for key, value in (self.query_encode_kwargs or {}).items():
                if key != "prompt_name":
                    options[QUERY_ENCODE_KWARGS[key]] = value
        return options

    def _side(self, instruction: str | None, prompt_name: str | None) -> dict[str, Any]:
        return {"prompt_name": prompt_name} if prompt_name is not None else {"instruction": instruction}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents with the document instruction (or ``document_prompt_name``).

        Args:
            texts: The documents; each must be a str.

        Returns:
            One list of Python floats per document, in input order; ``[]`` for no documents.

        Raises:
            TypeError: If ``texts`` is not a list of strings (the message names the bad item).
        """
        vectors = self._model.encode_documents(
            texts, **self._side(self.document_instruction, self.document_prompt_name), **self._call_options(query=False)
        )
        return vectors.astype(float).tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed one query with the query instruction (or ``query_prompt_name``).

        Raises:
            TypeError: If ``text`` is not a str.
        """
        if not isinstance(text, str):
            raise InputTypeError(f"text must be a str, got {type(text).__name__}: {text!r:.60}")
        options = {**self._call_options(query=True), "batch_size": 1, "show_progress": False}
        vectors = self._model.encode_queries(
            [text], **self._side(self.query_instruction, self.query_prompt_name), **options
        )
        return vectors[0].astype(float).tolist()

    # ------------------------------------------------------------------ async
    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Like :meth:`embed_documents`, in a worker thread: one encoder call for the whole list."""
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """Like :meth:`embed_query`, in a worker thread."""
        return await asyncio.to_thread(self.embed_query, text)
