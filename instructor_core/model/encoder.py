"""InstructorEncoder: instruction-conditioned text embeddings with exact reference semantics.

The input to the model is ``instruction + text`` (sentence-transformers' prompt semantics). Where
the model's pooling has ``include_prompt: false`` (every INSTRUCTOR checkpoint), each item's
instruction tokens are left out of pooling, so one batch can mix instructions.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from instructor_core.errors import DeviceError, InputError, InputTypeError
from instructor_core.instructions import Instructions
from instructor_core.model.backends import Backend
from instructor_core.model.batching import pad, token_budget_batches
from instructor_core.model.load_options import LoadOptions, prompt_pairs
from instructor_core.model.loading import ModelSpec, read_model_folder, resolve_model_path
from instructor_core.model.modules import (
    hidden_size,
    load_post_module,
    load_tokenizer,
    load_transformer,
    out_features,
    unreadable_files,
)
from instructor_core.model.pooling import pool
from instructor_core.model.prompts import DOCUMENT_PROMPT_NAMES, resolve_prompt
from instructor_core.model.quantization import Precision, PrecisionError, check_precision, quantize_embeddings
from instructor_core.validation import check_instruction, check_pairs, check_positive_int, check_texts

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from instructor_core.model.backends.onnxrt import OnnxTransformer

__all__ = ["InstructorEncoder", "TokenBatch"]

DTypeName = str | torch.dtype
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_DTYPE_NAMES = {value: key for key, value in _DTYPES.items()}


@dataclass(frozen=True)
class TokenBatch:
    """A padded batch ready for the model.

    Attributes:
        input_ids: ``(batch, seq)`` right-padded token ids.
        attention_mask: ``(batch, seq)`` 0/1.
        prompt_lengths: ``(batch,)`` instruction token counts to leave out of pooling, or None
            where the model pools over the instruction too.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    prompt_lengths: torch.Tensor | None

    def to(self, device: torch.device | str) -> TokenBatch:
        """Return the batch on ``device``."""
        return TokenBatch(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            None if self.prompt_lengths is None else self.prompt_lengths.to(device),
        )


def _pick_device(device: str | torch.device | None) -> torch.device:
    if device is not None:
        return _check_device(torch.device(device))
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _check_device(device: torch.device) -> torch.device:
    """``device`` if this torch build and machine have it, else a :class:`DeviceError` saying why."""
    build = f"torch {torch.__version__}"
    if device.type == "cuda":
        if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
            raise DeviceError(
                f"device {str(device)!r} asked for, but this torch build has no CUDA ({build}); use --device cpu"
            )
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {str(device)!r} asked for, but no CUDA GPU is visible ({build}, CUDA {torch.version.cuda}); "
                "use --device cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {str(device)!r} asked for, but only {torch.cuda.device_count()} CUDA GPU(s) are visible"
            )
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError(
                f"device {str(device)!r} asked for, but MPS is not available here ({build}); use --device cpu"
            )
    return device


def _pick_dtype(dtype: DTypeName | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise InputError(f"dtype must be one of {sorted(_DTYPES)} or a torch.dtype, got {dtype!r}")
    return _DTYPES[dtype]


@dataclass(frozen=True)
class _Output:
    """What a call asks of its output beyond the vectors: truncation and precision."""

    truncate_dim: int | None = None
    precision: Precision = "float32"
    calibration_embeddings: np.ndarray | None = None


class InstructorEncoder(torch.nn.Module):
    """Embeds texts together with instructions; one model for queries and documents.

    Build one with :meth:`from_pretrained`. ``encode_queries`` and ``encode_documents`` apply the
    default instructions (or the one passed); ``encode`` takes (instruction, text) pairs.
    """

    # An ONNX Runtime transformer when a non-torch backend was asked for. It holds the weights of
    # the load and serves eval-mode passes only; a refit drops it (see :meth:`use_torch_backend`).
    _runtime: OnnxTransformer | None = None
    _backend: Backend = "torch"
    _model_root: Path | None = None  # the folder from_pretrained loaded (the fingerprint's source)
    _fingerprint: str | None = None

    def __init__(
        self,
        spec: ModelSpec,
        transformer: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        dense: Sequence[torch.nn.Module],
        instructions: Instructions,
        max_length: int,
        device: torch.device,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.transformer = transformer
        self.tokenizer = tokenizer
        self.dense = torch.nn.ModuleList(dense)
        self._instructions = instructions
        self.max_length = max_length
        self._prompt_cache: dict[str, tuple[int, int, tuple[int, ...]]] = {}
        # One encode at a time per model: a fast tokenizer's truncation state and the train/eval
        # switch are shared, and adapters (LangChain, LlamaIndex, Chroma) may share one encoder
        # across threads. Reentrant, so a subclass or hook may encode from inside an encode.
        self._encode_lock = threading.RLock()
        #: How it was loaded (``from_pretrained``); the defaults for an encoder built in memory.
        self.load_options = LoadOptions()
        self._named_prompts: dict[str, str] = dict(spec.prompts)
        #: The prompt a plain :meth:`encode` of texts uses (sentence-transformers' ``default_prompt_name``).
        self.default_prompt_name: str | None = spec.default_prompt_name
        self._truncate_dim: int | None = None
        # Set by watch_truncation(): each encode appends its texts' truncation flags, in input order.
        self._truncation_watch: list[list[bool]] | None = None
        self.to(device)
        self.eval()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike[str],
        instructions: Instructions | None = None,
        device: str | torch.device | None = None,
        max_length: int | None = None,
        dtype: DTypeName | None = None,
        *,
        options: LoadOptions | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        backend: Backend = "torch",
        backend_cache_dir: str | os.PathLike[str] | None = None,
        instructor: bool | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        prompts: Mapping[str, str] | None = None,
        default_prompt_name: str | None = None,
        truncate_dim: int | None = None,
        model_kwargs: Mapping[str, object] | None = None,
    ) -> InstructorEncoder:
        """Load an encoder from a local folder or a Hugging Face hub id.

        The loading options are the fields of :class:`~instructor_core.model.load_options.LoadOptions`
        (documented there): pass them as ``options=LoadOptions(...)`` or as the keywords of the same
        names (``device="cpu"``), which override ``options``' defaults; a keyword that contradicts a
        value ``options`` sets is an error. ``dtype`` also takes a ``torch.dtype``.

        Args:
            name_or_path: A sentence-transformers folder, an INSTRUCTOR checkpoint
                ("hkunlp/instructor-large"), or a plain Hugging Face encoder folder.
            instructions: Default query/document instructions; None takes the model's own
                (``config_sentence_transformers.json`` prompts, the INSTRUCTOR retrieval
                instructions for INSTRUCTOR checkpoints, or none).
            device: See :class:`LoadOptions`.
            max_length: See :class:`LoadOptions`.
            dtype: See :class:`LoadOptions`.
            options: All loading options in one object.
            trust_remote_code: See :class:`LoadOptions`.
            revision: See :class:`LoadOptions`.
            backend: See :class:`LoadOptions`. :meth:`forward` in train mode or with gradients
                enabled always uses the torch model, and a refit (``training.prepare_encoder``)
                drops the ONNX runtime for good.
            backend_cache_dir: See :class:`LoadOptions`.
            instructor: See :class:`LoadOptions`; True also overrides a pooling config that says
                ``include_prompt: true``.
            cache_dir: See :class:`LoadOptions`.
            prompts: See :class:`LoadOptions`: named prompts added to (or overriding) the folder's.
            default_prompt_name: See :class:`LoadOptions`.
            truncate_dim: See :class:`LoadOptions`.
            model_kwargs: transformers-style loading keywords, as sentence-transformers takes them:
                each key is a :class:`LoadOptions` field or alias (``torch_dtype``,
                ``attn_implementation``, ``revision``, ...); any other key is an error naming it.

        Raises:
            LoadOptionsError: An option with a value it cannot take.
            DeviceError: A device this torch build or machine lacks (before any weights are read).
            ModelFolderError: A folder whose layout or config cannot be read (naming the file and field).
            ModelLoadError: A file that cannot be read: truncated or corrupt weights, a broken config.
        """
        if instructions is not None and not isinstance(instructions, Instructions):
            raise InputTypeError(
                f"instructions must be an Instructions(query=..., document=...), got {type(instructions).__name__}"
            )
        torch_dtype = _pick_dtype(dtype)
        keywords = {
            "device": device,
            "max_length": max_length,
            "dtype": None if dtype is None else _DTYPE_NAMES[torch_dtype],
            "trust_remote_code": trust_remote_code,
            "revision": revision,
            "backend": backend,
            "backend_cache_dir": backend_cache_dir,
            "instructor": instructor,
            "cache_dir": cache_dir,
            "prompts": None if prompts is None else prompt_pairs(prompts),
            "default_prompt_name": default_prompt_name,
            "truncate_dim": truncate_dim,
        }
        opts = (options or LoadOptions()).merged(keywords, where="from_pretrained")
        if model_kwargs:
            opts = LoadOptions.from_mapping(model_kwargs, where="model_kwargs", base=opts)
        return cls._load(name_or_path, instructions, opts)

    @classmethod
    def _load(
        cls, name_or_path: str | os.PathLike[str], instructions: Instructions | None, opts: LoadOptions
    ) -> InstructorEncoder:
        target = _pick_device("cpu" if opts.backend != "torch" else opts.device)  # before any weights are read
        root = resolve_model_path(name_or_path, revision=opts.revision, cache_dir=opts.cache_dir)
        spec = read_model_folder(root, hub_id=os.fspath(name_or_path), instructor=opts.instructor)
        torch_dtype = _pick_dtype(opts.dtype)
        with unreadable_files(name_or_path):  # a truncated or corrupt file: ModelLoadError naming the model
            transformer = load_transformer(spec.transformer_path, torch_dtype, opts)
            tokenizer = load_tokenizer(spec.transformer_path, spec.do_lower_case, opts)
            dense = [load_post_module(d).to(torch_dtype) for d in spec.dense]
        limit = opts.max_length if opts.max_length is not None else _model_max_length(spec, transformer, tokenizer)
        encoder = cls(
            spec,
            transformer,
            tokenizer,
            dense,
            instructions if instructions is not None else spec.instructions,
            limit,
            target,
        )
        encoder._model_root = Path(root)
        encoder.load_options = opts
        encoder._apply_prompt_options(opts, explicit_instructions=instructions is not None)
        if opts.truncate_dim is not None:
            encoder.truncate_dim = opts.truncate_dim
        if opts.backend == "torch" and encoder.device.type == "cpu" and torch_dtype == torch.float32:
            from instructor_core.model.backends.onednn import pack_linears

            pack_linears(transformer)  # same float32 math, oneDNN kernels; plain Linear when training
        if opts.backend != "torch":
            from instructor_core.model.backends.onnxrt import OnnxTransformer

            encoder._runtime = OnnxTransformer.prepare(
                transformer, spec.transformer_path, opts.backend, opts.backend_cache_dir
            )
            encoder._backend = opts.backend
        return encoder

    def use_torch_backend(self) -> Backend:
        """Drop the ONNX Runtime session, so every pass runs the torch weights from now on.

        The session holds the weights of the load; once the torch weights change (a refit) it
        would serve stale vectors. Reload a saved model with ``backend=...`` for the fast path.

        Returns:
            The backend that was in use before ("torch" where there was nothing to drop).
        """
        previous = self._backend
        self._runtime = None
        self._backend = "torch"
        return previous

    # ------------------------------------------------------------------ properties
    @property
    def instructions(self) -> Instructions:
        """The default instructions for queries and documents."""
        return self._instructions

    @instructions.setter
    def instructions(self, value: Instructions) -> None:
        if not isinstance(value, Instructions):
            raise InputTypeError(f"instructions must be an Instructions, got {type(value).__name__}")
        self._instructions = value

    @property
    def model_dimension(self) -> int:
        """Length of the model's own embeddings, before any truncation."""
        if len(self.dense):
            return out_features(self.dense[-1])
        return hidden_size(self.transformer)

    @property
    def dimension(self) -> int:
        """Length of each embedding: :attr:`truncate_dim` where set, else :attr:`model_dimension`."""
        return self._truncate_dim or self.model_dimension

    @property
    def truncate_dim(self) -> int | None:
        """Matryoshka truncation in effect for every call (None: the model's dimension)."""
        return self._truncate_dim

    @truncate_dim.setter
    def truncate_dim(self, value: int | None) -> None:
        self._truncate_dim = None if value is None else self.check_truncate_dim(value)

    def check_truncate_dim(self, value: object) -> int:
        """``value`` if it is a valid truncation of this model's vectors.

        Raises:
            ValueError: Not a positive int, or above :attr:`model_dimension` (naming both numbers).
        """
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"truncate_dim must be a positive int, got {value!r}")
        if value > self.model_dimension:
            raise InputError(
                f"truncate_dim={value} is above this model's dimension {self.model_dimension}: "
                f"pass at most {self.model_dimension}"
            )
        return value

    @property
    def prompts(self) -> dict[str, str]:
        """The named prompts: the folder's (and those passed at load), with ``query`` and ``document``
        always there as the instruction slots in effect."""
        return {**self._named_prompts, "query": self._instructions.query, "document": self._instructions.document}

    def _apply_prompt_options(self, opts: LoadOptions, *, explicit_instructions: bool) -> None:
        """Merge ``prompts``/``default_prompt_name`` given at load over the folder's; a ``query`` or
        ``document`` prompt given there sets its slot (unless ``instructions`` were passed)."""
        given = opts.prompt_dict()
        self._named_prompts.update(given)
        if given and not explicit_instructions:
            named = self._named_prompts
            document = next((named[k] for k in DOCUMENT_PROMPT_NAMES if k in named), self._instructions.document)
            self._instructions = Instructions(query=named.get("query", self._instructions.query), document=document)
        if opts.default_prompt_name is not None:
            self.default_prompt_name = opts.default_prompt_name
        if self.default_prompt_name is not None:
            resolve_prompt(self.prompts, self.default_prompt_name)

    @property
    def backend(self) -> Backend:
        """Where eval-mode passes run the transformer: one of :data:`~instructor_core.model.backends.BACKENDS`."""
        return self._backend

    @property
    def fingerprint(self) -> str:
        """``"sha256:..."`` of the model as loaded: the folder's weights and configuration (see
        :func:`instructor_core.model.fingerprint.model_fingerprint`) and whether instruction tokens are
        pooled (:func:`~instructor_core.model.fingerprint.loaded_fingerprint`); computed on first use.

        It describes the folder this encoder was loaded from or last saved to: a refit
        (``prepare_encoder``) forgets it until :meth:`save_pretrained` (the trainer saves the
        final model, so its encoder then has the saved folder's fingerprint).

        Raises:
            ValueError: If the encoder was not loaded with :meth:`from_pretrained`.
        """
        if self._fingerprint is None:
            if self._model_root is None:
                raise InputError("this encoder's weights are not those of a folder: save_pretrained() it first")
            from instructor_core.model.fingerprint import loaded_fingerprint, model_fingerprint

            folder = model_fingerprint(self._model_root)
            self._fingerprint = loaded_fingerprint(folder, include_prompt=self.spec.include_prompt)
        return self._fingerprint

    @property
    def device(self) -> torch.device:
        """Where the model's weights are."""
        return next(self.transformer.parameters()).device

    # ------------------------------------------------------------------ public encoding
    def encode_queries(
        self,
        texts: Iterable[str],
        instruction: str | None = None,
        *,
        prompt_name: str | None = None,
        batch_size: int = 32,
        normalize: bool = True,
        show_progress: bool = False,
        truncate_dim: int | None = None,
        precision: Precision = "float32",
        calibration_embeddings: np.ndarray | None = None,
    ) -> np.ndarray:
        """Embed queries with the query instruction, or ``instruction``, or the prompt ``prompt_name``.

        Args:
            texts: The queries.
            instruction: An instruction in place of the query instruction.
            prompt_name: One of :attr:`prompts` in place of the query instruction (not with ``instruction``).
            batch_size: Texts per forward pass at full length (see :meth:`encode`).
            normalize: L2-normalize the vectors (after any truncation).
            show_progress: Show a tqdm bar over batches.
            truncate_dim: Keep the first N dimensions (Matryoshka); None: :attr:`truncate_dim`.
            precision: "float32" (default), "int8", "uint8", "binary" or "ubinary", as
                sentence-transformers' ``encode(precision=...)`` (see :mod:`instructor_core.model.quantization`).
            calibration_embeddings: Float embeddings to compute the int8/uint8 ranges from.

        Returns:
            ``(n, dimension)`` float32 (or the precision's dtype; ``(n, dimension / 8)`` for binary).
        """
        prefix = self._pick_prompt(instruction, prompt_name, self._instructions.query)
        items = check_texts(texts, "texts")
        return self._encode_pairs(
            [(prefix, t) for t in items], batch_size, normalize, show_progress,
            _Output(truncate_dim, precision, calibration_embeddings),
        )  # fmt: skip

    def encode_documents(
        self,
        texts: Iterable[str],
        instruction: str | None = None,
        *,
        prompt_name: str | None = None,
        batch_size: int = 32,
        normalize: bool = True,
        show_progress: bool = False,
        truncate_dim: int | None = None,
        precision: Precision = "float32",
        calibration_embeddings: np.ndarray | None = None,
    ) -> np.ndarray:
        """Embed documents with the document instruction, or ``instruction``, or the prompt
        ``prompt_name``; the other arguments as in :meth:`encode_queries`."""
        prefix = self._pick_prompt(instruction, prompt_name, self._instructions.document)
        items = check_texts(texts, "texts")
        return self._encode_pairs(
            [(prefix, t) for t in items], batch_size, normalize, show_progress,
            _Output(truncate_dim, precision, calibration_embeddings),
        )  # fmt: skip

    def encode(
        self,
        inputs: Iterable[tuple[str, str]] | Iterable[str],
        *,
        prompt_name: str | None = None,
        batch_size: int = 32,
        normalize: bool = True,
        show_progress: bool = False,
        truncate_dim: int | None = None,
        precision: Precision = "float32",
        calibration_embeddings: np.ndarray | None = None,
    ) -> np.ndarray:
        """Embed (instruction, text) pairs, any mix of instructions in one call; or plain texts under
        the prompt ``prompt_name`` (else the model's ``default_prompt_name``, else none), as
        sentence-transformers' ``encode``.

        Args:
            inputs: ``[(instruction, text), ...]`` (use "" for no instruction), or ``[text, ...]``.
            prompt_name: For plain texts: one of :attr:`prompts`.
            batch_size: Texts per forward pass at full length; shorter texts share the same token
                budget (``batch_size * max_length`` padded tokens), so more of them go in one pass.
            normalize: L2-normalize the output (on top of the model's own Normalize, if any).
            show_progress: Show a tqdm bar over batches.
            truncate_dim: See :meth:`encode_queries`.
            precision: See :meth:`encode_queries`.
            calibration_embeddings: See :meth:`encode_queries`.

        Returns:
            A numpy array ``(len(inputs), dimension)`` in input order (float32 unless ``precision``).
        """
        items = list(inputs) if not isinstance(inputs, (str, bytes)) else [inputs]
        if items and all(isinstance(item, str) for item in items):
            if prompt_name is not None:
                prefix = resolve_prompt(self.prompts, prompt_name)
            elif self.default_prompt_name is not None:
                prefix = resolve_prompt(self.prompts, self.default_prompt_name)
            else:
                prefix = ""
            pairs = [(prefix, text) for text in check_texts(items, "texts")]
        else:
            if prompt_name is not None:
                raise InputError("prompt_name applies to plain texts; (instruction, text) pairs carry their own")
            pairs = check_pairs(items)
        return self._encode_pairs(
            pairs, batch_size, normalize, show_progress, _Output(truncate_dim, precision, calibration_embeddings)
        )

    def _pick_prompt(self, instruction: str | None, prompt_name: str | None, slot: str) -> str:
        if instruction is not None and prompt_name is not None:
            raise InputError("pass instruction or prompt_name, not both")
        if prompt_name is not None:
            return resolve_prompt(self.prompts, prompt_name)
        return slot if instruction is None else check_instruction(instruction)

    # ------------------------------------------------------------------ tokenization and forward
    def prompt_length(self, instruction: str) -> int:
        """Tokens of ``instruction`` left out of pooling: its tokens with a leading special token,
        without the tokenizer's trailing special token (sentence-transformers' count).

        Raises:
            ValueError: If the instruction leaves no room for text within ``max_length``.
        """
        if not instruction:  # no instruction: nothing is left out, not even a leading special token
            return 0
        cached = self._prompt_cache.get(instruction)
        if cached is None:
            ids = self.tokenizer(instruction, add_special_tokens=True)["input_ids"]
            full = len(ids)
            count = full - 1 if ids and ids[-1] in set(self.tokenizer.all_special_ids) else full
            cached = (count, full, tuple(ids[:count]))
            self._prompt_cache[instruction] = cached
        count, full, _ = cached
        if full >= self.max_length:
            raise InputError(
                f"instruction {instruction[:80]!r} takes {full} tokens with special tokens, and max_length is "
                f"{self.max_length}: no room is left for the text. Shorten the instruction or raise max_length."
            )
        return count

    def prompt_tokens_in(self, ids: Sequence[int], instruction: str) -> int:
        """How many of ``ids`` (``instruction + text`` tokenized together) are the instruction's, to
        leave out of pooling: the leading tokens they share with :meth:`prompt_length`'s count of the
        instruction alone.

        Usually all of them. But a byte-level BPE instruction ending in a space tokenizes alone to
        ``[..., ":", "Ġ"]``, while followed by a text the space starts the text's first token
        (``[..., ":", "Ġcat"]``): counting the instruction alone (sentence-transformers' count) would
        leave that word out of pooling too.
        """
        count = self.prompt_length(instruction)
        if not count:
            return 0
        own = self._prompt_cache[instruction][2]
        shared = 0
        for mine, theirs in zip(own, ids, strict=False):  # ids may be shorter (an empty text)
            if mine != theirs:
                break
            shared += 1
        return shared

    def first_unpoolable(self, ids: Sequence[Sequence[int]], instructions: Sequence[str]) -> int | None:
        """The index of the first item whose tokens leave nothing to pool (no token at all: an empty
        text on a tokenizer that adds no special tokens; or only the instruction's, where the model
        leaves them out of pooling), or None. Pooling nothing makes zeros or NaN, never a vector."""
        for index, (row, instruction) in enumerate(zip(ids, instructions, strict=True)):
            left_out = 0 if self.spec.include_prompt or not row else self.prompt_tokens_in(row, instruction)
            if len(row) <= left_out:
                return index
        return None

    def tokenize(self, pairs: Sequence[tuple[str, str]]) -> list[list[int]]:
        """Token ids of ``instruction + text`` for each pair, truncated to ``max_length``."""
        if not pairs:
            return []
        joined = self._joined(pairs)
        backend = self._fast_backend()
        if backend is None:
            return self.tokenizer(joined, add_special_tokens=True, truncation=True, max_length=self.max_length)[
                "input_ids"
            ]
        return [encoding.ids for encoding in backend.encode_batch(joined, add_special_tokens=True)]

    def tokenize_marking_truncation(self, pairs: Sequence[tuple[str, str]]) -> tuple[list[list[int]], list[bool]]:
        """:meth:`tokenize`, and for each pair whether its tokens were cut at ``max_length``.

        The fast tokenizers say so themselves (the encoding's overflow); other tokenizers are asked
        once more without truncation.
        """
        if not pairs:
            return [], []
        joined = self._joined(pairs)
        backend = self._fast_backend()
        if backend is None:
            ids = self.tokenizer(joined, add_special_tokens=True, truncation=True, max_length=self.max_length)[
                "input_ids"
            ]
            whole = self.tokenizer(joined, add_special_tokens=True, truncation=False)["input_ids"]
            return ids, [len(full) > len(cut) for full, cut in zip(whole, ids, strict=True)]
        encodings = backend.encode_batch(joined, add_special_tokens=True)
        return [e.ids for e in encodings], [bool(e.overflowing) for e in encodings]

    def _joined(self, pairs: Sequence[tuple[str, str]]) -> list[str]:
        """``instruction + text`` for each pair, once every instruction is known to leave room for text."""
        for instruction, _ in pairs:
            self.prompt_length(instruction)  # fail early on an instruction that leaves no room
        return [instruction + text for instruction, text in pairs]

    def _fast_backend(self) -> Any:  # noqa: ANN401 (a tokenizers.Tokenizer, or None)
        """The Rust tokenizer directly, set up as the tokenizer's __call__ sets it up (truncation to
        max_length on its truncation side, no padding, its split_special_tokens): the same ids
        without the per-call Python work, which is a good part of a single query's overhead. None
        for a tokenizer without one."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None) if self.tokenizer.is_fast else None
        if backend is None:
            return None
        target = {
            "max_length": self.max_length,
            "stride": 0,
            "strategy": "longest_first",
            "direction": self.tokenizer.truncation_side,
        }
        current = backend.truncation
        if current is None or any(current.get(key) != value for key, value in target.items()):
            backend.enable_truncation(**target)
        if backend.padding is not None:
            backend.no_padding()
        split = bool(getattr(self.tokenizer, "split_special_tokens", False))
        if backend.encode_special_tokens != split:
            backend.encode_special_tokens = split
        return backend

    @contextlib.contextmanager
    def watch_truncation(self) -> Iterator[list[list[bool]]]:
        """Record which texts the encodes inside the block cut at ``max_length``.

        Yields a list that each encode call in the block (in this thread: the block holds the encode
        lock) extends with one list of flags, one per input in input order, True where the text's
        tokens were cut. The texts are tokenized once, as always (:meth:`tokenize_marking_truncation`).
        """
        with self._encode_lock:
            outer, flags = self._truncation_watch, list[list[bool]]()
            self._truncation_watch = flags
            try:
                yield flags
            finally:
                self._truncation_watch = outer

    def collate(self, ids: Sequence[Sequence[int]], instructions: Sequence[str]) -> TokenBatch:
        """Pad token id lists (on the tokenizer's padding side) into a :class:`TokenBatch`."""
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        input_ids, attention = pad(ids, pad_id, getattr(self.tokenizer, "padding_side", "right"))
        prompt_lengths = None
        if not self.spec.include_prompt:
            counts = [self.prompt_tokens_in(row, i) for row, i in zip(ids, instructions, strict=True)]
            prompt_lengths = torch.tensor(counts, dtype=torch.long)
        return TokenBatch(input_ids, attention, prompt_lengths)

    def forward(self, batch: TokenBatch, normalize: bool = True) -> torch.Tensor:
        """Embeddings for a batch, differentiable (training uses this; inference wraps it).

        An ONNX runtime, where one was loaded, runs only in eval mode without gradients (inference);
        in train mode (GradCache's no-gradient pass included) the torch model always runs.
        """
        batch = batch.to(self.device)
        if self._runtime is not None and not self.training and not torch.is_grad_enabled():
            hidden = self._runtime(batch.input_ids, batch.attention_mask)
        else:
            hidden = self.transformer(input_ids=batch.input_ids, attention_mask=batch.attention_mask)[0]
        embeddings = pool(hidden, batch.attention_mask, self.spec.pooling, batch.prompt_lengths)
        for layer in self.dense:
            embeddings = layer(embeddings)
        if self.spec.normalize or normalize:
            embeddings = F.normalize(embeddings, p=2, dim=-1)
        return embeddings

    def finish(self, vectors: torch.Tensor, *, normalize: bool, dim: int | None = None) -> torch.Tensor:
        """The end of an encode on ``forward(batch, normalize=False)``'s output (the model's own
        modules, its Normalize included where it has one): keep the first ``dim`` dimensions
        (Matryoshka), then L2-normalize where asked, once, in the model's dtype, in
        sentence-transformers' order (``truncate_dim``, then ``normalize_embeddings``); vectors that
        the model's own Normalize made unit length and that were not truncated are left as they
        are (sentence-transformers' default). Normalizing before truncating too changed bfloat16
        vectors by up to one step of their precision. ``encode`` and the server (``instructor
        serve``) both end a pass so."""
        truncated = dim is not None and dim < vectors.shape[-1]
        if truncated:
            vectors = vectors[..., :dim]
        if normalize and (truncated or not self.spec.normalize):
            vectors = F.normalize(vectors, p=2, dim=-1)
        return vectors

    def _encode_pairs(
        self,
        pairs: list[tuple[str, str]],
        batch_size: int,
        normalize: bool,
        show_progress: bool,
        output: _Output | None = None,
    ) -> np.ndarray:
        check_positive_int(batch_size, "batch_size")
        output = output or _Output()
        precision = check_precision(output.precision)
        dim = self.dimension if output.truncate_dim is None else self.check_truncate_dim(output.truncate_dim)
        result = np.zeros((len(pairs), dim), dtype=np.float32)
        if pairs:
            with self._encode_lock:
                self._encode_locked(pairs, batch_size, normalize, show_progress, result)
        if precision == "float32":
            return result
        try:
            return quantize_embeddings(result, precision, calibration_embeddings=output.calibration_embeddings)
        except PrecisionError as exc:
            raise PrecisionError(f"{exc} (here: {len(pairs)} text(s) in one call)") from None

    def _encode_locked(
        self, pairs: list[tuple[str, str]], batch_size: int, normalize: bool, show_progress: bool, result: np.ndarray
    ) -> np.ndarray:
        if self._truncation_watch is None:
            ids = self.tokenize(pairs)
        else:
            ids, cut = self.tokenize_marking_truncation(pairs)
            self._truncation_watch.append(cut)
        bad = self.first_unpoolable(ids, [instruction for instruction, _ in pairs])
        if bad is not None:
            instruction, text = pairs[bad]
            why = "makes no token with this model's tokenizer, which adds no special tokens"
            if ids[bad]:
                why = f"leaves no token to pool once the instruction's {len(ids[bad])} tokens are left out of pooling"
            raise InputError(f"item {bad}: the text {text[:60]!r} {why}: nothing to embed. Drop it or give it text")
        # Token budget: batch_size rows at full length, and more rows when texts are shorter, so a
        # forward pass never holds more padded tokens than batch_size fixed-count rows could.
        batches = token_budget_batches(
            [len(row) for row in ids], max_tokens=batch_size * self.max_length, min_rows=batch_size
        )
        dim = result.shape[1]
        was_training = self.training
        # Module.eval()/train() set every submodule (hundreds of setattr calls per encode): only
        # switch when some submodule is in train mode (the encoder, or a part a caller set).
        switch = any(module.training for module in self.modules())
        if switch:
            self.eval()
        progress = tqdm(batches, desc="Encoding", unit="batch") if show_progress else batches
        try:
            with torch.inference_mode():
                for chosen in progress:
                    batch = self.collate([ids[i] for i in chosen], [pairs[i][0] for i in chosen])
                    # Matryoshka: the first dim dimensions, then normalized (sentence-transformers)
                    vectors = self.finish(self.forward(batch, normalize=False), normalize=normalize, dim=dim)
                    result[chosen] = vectors.float().cpu().numpy()
        finally:
            if switch:
                self.train(was_training)
        return result

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_encode_lock", None)  # locks do not pickle or deepcopy; a copy gets its own
        state["_truncation_watch"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._encode_lock = threading.RLock()

    # ------------------------------------------------------------------ saving
    def save_pretrained(self, path: str | os.PathLike[str]) -> Path:
        """Write a sentence-transformers folder that this package and sentence-transformers load.

        The instructions are saved as ``config_sentence_transformers.json`` prompts
        ("query" / "document").
        """
        from instructor_core.model.saving import save_model_folder

        saved = save_model_folder(self, Path(path))
        self._model_root, self._fingerprint = saved, None  # the weights are now that folder's
        return saved


def _model_max_length(spec: ModelSpec, transformer: torch.nn.Module, tokenizer: PreTrainedTokenizerBase) -> int:
    if spec.max_seq_length:
        return spec.max_seq_length
    limit = getattr(tokenizer, "model_max_length", None) or 10**9
    positions = getattr(transformer.config, "max_position_embeddings", None)
    if positions and positions > 0:
        limit = min(limit, positions)
    return int(limit) if limit < 10**6 else 512
