"""LoadOptions: how a model is loaded, declared once for the core, every adapter, Ray and the CLI.

``InstructorEncoder.from_pretrained(path, options=LoadOptions(device="cpu", backend="onnx"))`` and
each adapter (``InstructorEmbeddings(..., options=...)``, ``InstructorEmbedding(..., options=...)``,
``InstructorEmbeddingFunction(..., options=...)``, ``instructor_ray.embed_dataset(..., options=...)``)
take the same object; the CLI's ``--device``, ``--dtype``, ``--backend``, ... are made from its fields
(:func:`instructor_core.cli.commands.options.add_model_options`). A new loading option is one field here.

The names the host stacks' own classes used (``cache_folder`` for ``cache_dir``; LangChain's
``model_kwargs``) map onto it through :meth:`LoadOptions.from_mapping`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any, Literal

from instructor_core.errors import InstructorError
from instructor_core.model.backends import BACKENDS, Backend

__all__ = ["DTYPES", "LoadOptions", "LoadOptionsError", "prompt_pairs"]

#: The weights' dtypes a model can be loaded in.
DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")
DType = Literal["float32", "bfloat16", "float16"]

#: Other spellings the host stacks use for a field: ``cache_folder`` (sentence-transformers,
#: LangChain, LlamaIndex) is ``cache_dir``; ``torch_dtype`` (transformers' ``model_kwargs``) is ``dtype``.
ALIASES: dict[str, str] = {"cache_folder": "cache_dir", "torch_dtype": "dtype"}


class LoadOptionsError(InstructorError, ValueError):
    """A loading option with a value or a name it cannot take; the message names it."""


class _WrongType(LoadOptionsError, TypeError):
    """A loading option of the wrong type (also a ``TypeError``)."""


def prompt_pairs(value: object) -> tuple[tuple[str, str], ...]:
    """Prompts as hashable ``(name, text)`` pairs, from a mapping or pairs."""
    items: Any = value.items() if isinstance(value, Mapping) else value
    try:
        pairs = tuple((name, text) for name, text in items)
    except (TypeError, ValueError):
        raise _WrongType(f"prompts must be a mapping of prompt names to texts, got {value!r:.80}") from None
    for name, text in pairs:
        if not isinstance(name, str) or not isinstance(text, str):
            raise _WrongType(f"prompts must map str names to str texts, got {name!r}: {text!r:.60}")
    return pairs


def _help(text: str, *, cli: bool = True) -> dict[str, Any]:
    return {"help": text, "cli": cli}


@dataclass(frozen=True)
class LoadOptions:
    """How to load a model (``InstructorEncoder.from_pretrained`` and every adapter).

    Attributes:
        device: "cpu", "cuda", "cuda:1", "mps"; None picks the best available. One this torch build
            or machine lacks raises :class:`~instructor_core.errors.DeviceError` at load.
        dtype: The weights' dtype: "float32" (None, the default: exact), "bfloat16" or "float16".
        max_length: Token limit (instruction + text); None takes the model's own.
        backend: Where the transformer runs at inference: "torch" (default, exact), "onnx" (ONNX
            Runtime, float32) or "onnx-int8" (int8 weights, the fast CPU path); ONNX backends run on
            the CPU in float32 and need the ``onnx`` extra.
        backend_cache_dir: Where ONNX exports are cached; None uses ``$INSTRUCTOR_CACHE`` or
            ``~/.cache/instructor``. Never the model folder.
        revision: Hub revision (branch, tag or commit) of a hub id.
        trust_remote_code: Allow model code from the folder; off unless you pass True.
        cache_dir: Where hub downloads are cached; None uses the Hugging Face default. A
            sentence-transformers 2.x cache folder (``owner_name`` subfolders) is read as it is.
        instructor: Whether the model is an INSTRUCTOR checkpoint (instruction tokens left out of
            pooling, the paper's retrieval instructions as defaults); None detects it.
        prompts: Named prompts to add to (or override in) the folder's own, as sentence-transformers'
            ``prompts=``: ``{"query": ..., "document": ..., "STS": ...}``. Kept as ``(name, text)``
            pairs; :meth:`prompt_dict` gives the mapping.
        default_prompt_name: The prompt a plain ``encode`` of texts uses (sentence-transformers'
            ``default_prompt_name``); None takes the folder's.
        truncate_dim: Matryoshka truncation: keep the first ``truncate_dim`` dimensions (then
            normalize); None keeps the model's dimension.
        attn_implementation: The transformer's attention implementation ("eager", "sdpa",
            "flash_attention_2", ...), as transformers' ``attn_implementation``; None: transformers'
            default.
    """

    device: str | None = field(default=None, metadata=_help("cpu, cuda, cuda:1, mps (default: the best available)"))
    instructor: bool | None = field(
        default=None,
        metadata=_help(
            "--instructor: the model is an INSTRUCTOR checkpoint (instruction left out of pooling), "
            "--no-instructor: it is not (default: detect it from the hub id, the cache path, the config or "
            "the model card, and warn where a T5 folder with a Dense layer says neither)"
        ),
    )
    max_length: int | None = field(
        default=None, metadata=_help("token limit for instruction + text (default: the model's)")
    )
    backend: Backend = field(
        default="torch",
        metadata=_help(
            "where the transformer runs: torch (default, exact), onnx (ONNX Runtime, float32) or onnx-int8 "
            '(int8 weights, the fast CPU path); onnx backends need the onnx extra (pip install -e ".[onnx]")'
        ),
    )
    dtype: DType | None = field(default=None, metadata=_help("weights' dtype with --backend torch (default: float32)"))
    backend_cache_dir: str | None = field(default=None, metadata=_help("where ONNX exports are cached", cli=False))
    revision: str | None = field(default=None, metadata=_help("hub revision (branch, tag or commit)", cli=False))
    trust_remote_code: bool = field(default=False, metadata=_help("allow model code from the folder", cli=False))
    cache_dir: str | None = field(default=None, metadata=_help("where hub downloads are cached", cli=False))
    prompts: tuple[tuple[str, str], ...] | None = field(default=None, metadata=_help("named prompts", cli=False))
    default_prompt_name: str | None = field(default=None, metadata=_help("the prompt a plain encode uses", cli=False))
    truncate_dim: int | None = field(
        default=None,
        metadata={
            "help": "keep the first N dimensions of each vector (Matryoshka models), then normalize "
            "(default: the model's dimension)",
            "cli": True,
            "flag": "--dim",
        },
    )
    attn_implementation: str | None = field(
        default=None, metadata=_help("the transformer's attention implementation", cli=False)
    )

    def __post_init__(self) -> None:
        for name in ("backend_cache_dir", "cache_dir"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                object.__setattr__(self, name, os.fspath(value))
            elif value is not None and not isinstance(value, str):
                raise _WrongType(f"{name} must be a folder path, got {type(value).__name__}")
        if self.device is not None and not isinstance(self.device, str):
            object.__setattr__(self, "device", str(self.device))  # a torch.device
        if self.dtype is not None and not isinstance(self.dtype, str):  # a torch.dtype (model_kwargs' torch_dtype)
            object.__setattr__(self, "dtype", str(self.dtype).removeprefix("torch."))
        if self.prompts is not None:
            object.__setattr__(self, "prompts", prompt_pairs(self.prompts))
        self._check_values()
        if self.backend != "torch":
            if self.dtype not in (None, "float32"):
                raise LoadOptionsError(
                    f"backend {self.backend!r} runs float32 weights; leave dtype unset, got {self.dtype!r}"
                )
            if self.device is not None and not self.device.startswith("cpu"):
                raise LoadOptionsError(f"backend {self.backend!r} runs on the CPU; got device {self.device!r}")

    def _check_values(self) -> None:
        if self.backend not in BACKENDS:
            raise LoadOptionsError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.dtype is not None and self.dtype not in DTYPES:
            raise LoadOptionsError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        limit = self.max_length
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 2):
            raise LoadOptionsError(f"max_length must be an int >= 2, got {limit!r}")
        if not isinstance(self.trust_remote_code, bool):
            raise _WrongType(f"trust_remote_code must be a bool, got {self.trust_remote_code!r}")
        if self.instructor is not None and not isinstance(self.instructor, bool):
            raise _WrongType(f"instructor must be True, False or None, got {self.instructor!r}")
        dim = self.truncate_dim
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
            raise LoadOptionsError(f"truncate_dim must be a positive int, got {dim!r}")
        for name in ("default_prompt_name", "attn_implementation"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise _WrongType(f"{name} must be a str, got {getattr(self, name)!r}")

    def prompt_dict(self) -> dict[str, str]:
        """The prompts given, as a mapping (empty where none were)."""
        return dict(self.prompts or ())

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The fields, in order."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def canonical(cls, name: str) -> str | None:
        """The field a name means (``cache_folder`` -> ``cache_dir``), None for a name it does not know."""
        name = ALIASES.get(name, name)
        return name if name in cls.names() else None

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any], *, where: str = "options", base: LoadOptions | None = None
    ) -> LoadOptions:
        """``base`` (or the defaults) with the fields ``values`` names changed; aliases accepted.

        Raises:
            LoadOptionsError: A key that is no loading option (naming it, where it came from and the
                known names), or two spellings of one option with different values.
        """
        changes: dict[str, Any] = {}
        for key, value in values.items():
            name = cls.canonical(key)
            if name is None:
                known = ", ".join((*cls.names(), *ALIASES))
                raise LoadOptionsError(f"{where}: {key!r} is not a loading option; known: {known}")
            if name in changes and changes[name] != value:
                raise LoadOptionsError(f"{where}: {key!r}={value!r} contradicts {name}={changes[name]!r}; pass one")
            changes[name] = value
        return (base or cls()).merged(changes, where=where)

    @classmethod
    def from_keywords(cls, keywords: Mapping[str, Any], *, where: str, base: LoadOptions | None = None) -> LoadOptions:
        """An adapter's loading keywords (``**loading``: every field and alias, ``max_length=128``,
        ``backend="onnx"``, ``cache_folder=...``) over ``base`` (its ``options=``): one declaration, this
        class, for every adapter's keywords.

        Raises:
            TypeError: A keyword that is no loading option, as Python names an unexpected keyword.
            LoadOptionsError: A bad value, or one that contradicts ``base``.
        """
        unknown = sorted(key for key in keywords if cls.canonical(key) is None)
        if unknown:
            known = ", ".join((*cls.names(), *ALIASES))
            raise _WrongType(
                f"{where}() got an unexpected keyword argument {unknown[0]!r}; its loading keywords: {known}"
            )
        return cls.from_mapping(keywords, where=where, base=base)

    def merged(self, changes: Mapping[str, Any], *, where: str = "options") -> LoadOptions:
        """These options with ``changes`` applied; a change equal to the field's default changes nothing
        (so explicit keyword defaults never undo ``options``), and one that contradicts a value these
        options set is refused.

        Raises:
            LoadOptionsError: Naming the option and both values.
        """
        defaults = {f.name: f.default for f in fields(self) if f.default is not MISSING}
        applied: dict[str, Any] = {}
        for name, value in changes.items():
            default = defaults[name]
            if value is default or (value == default and type(value) is type(default)):
                continue
            if isinstance(value, os.PathLike):
                value = os.fspath(value)
            mine = getattr(self, name)
            if mine != defaults[name] and mine != value:
                raise LoadOptionsError(f"{where}: {name}={value!r} contradicts options.{name}={mine!r}; pass one")
            applied[name] = value
        return replace(self, **applied) if applied else self

    def changed(self) -> dict[str, Any]:
        """The fields that differ from their defaults: ``{"device": "cpu"}``."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != f.default}

    def for_encoder(self, where: str) -> None:
        """Refuse these options where an already loaded encoder is passed (they only apply at load).

        Raises:
            LoadOptionsError: Naming the options given.
        """
        given = sorted(self.changed())
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise LoadOptionsError(
                f"{where}: {', '.join(given)} only {verb} when loading a model; a shared encoder keeps its own "
                "settings (move it with encoder.to(device))"
            )
