"""Reading model folders: sentence-transformers layouts, INSTRUCTOR checkpoints, plain encoders.

Only public transformers / huggingface_hub / safetensors APIs are used; sentence-transformers is
never imported at run time. The result is a :class:`ModelSpec`, a plain description of the
pipeline (transformer -> pooling -> dense layers -> normalize) that the encoder then builds.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from instructor_core.errors import InputTypeError, InstructorError
from instructor_core.instructions import INSTRUCTOR_RETRIEVAL, NO_INSTRUCTIONS, Instructions
from instructor_core.messages import short_repr
from instructor_core.model.detect import (
    INSTRUCTOR_HUB_IDS,
    instructor_evidence,
    looks_like_instructor,
    warn_if_ambiguous,
)
from instructor_core.model.prompts import slots_from_prompts

__all__ = [
    "DenseSpec",
    "INSTRUCTOR_HUB_IDS",
    "LayerNormSpec",
    "ModelFolderError",
    "ModelSpec",
    "PoolingMode",
    "read_model_folder",
    "resolve_model_path",
]

PoolingMode = Literal["mean", "cls", "max", "lasttoken", "mean_sqrt_len_tokens", "weightedmean"]
POOLING_MODES: tuple[str, ...] = ("mean", "cls", "max", "lasttoken", "mean_sqrt_len_tokens", "weightedmean")
#: A Dense layer's activation: the name of a ``torch.nn`` activation class ("Tanh", "Identity", "GELU").
Activation = str

#: Where sentence-transformers saves an activation's class (``torch.nn.modules.activation.GELU``).
_ACTIVATION_MODULES = ("torch.nn.modules.activation.", "torch.nn.modules.linear.", "torch.nn.")
#: The legacy pooling flags of a Pooling config, by mode.
_POOLING_FLAGS = {
    "mean": "pooling_mode_mean_tokens",
    "cls": "pooling_mode_cls_token",
    "max": "pooling_mode_max_tokens",
    "lasttoken": "pooling_mode_lasttoken",
    "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
    "weightedmean": "pooling_mode_weightedmean_tokens",
}
#: The packages whose module classes this package runs itself (anything else is the model's own code).
_KNOWN_MODULE_PACKAGES = ("sentence_transformers.", "InstructorEmbedding.")


class ModelFolderError(InstructorError, ValueError):
    """A model folder whose layout this package cannot read; the message says what was found."""


@dataclass(frozen=True)
class DenseSpec:
    """One Dense module: a linear layer and its activation, with the folder holding its weights."""

    path: Path
    in_features: int
    out_features: int
    bias: bool
    activation: Activation


@dataclass(frozen=True)
class LayerNormSpec:
    """One LayerNorm module after pooling (sentence-transformers' ``LayerNorm``), with its folder."""

    path: Path
    dimension: int


@dataclass(frozen=True)
class ModelSpec:
    """What a model folder describes.

    Attributes:
        transformer_path: Folder with the Hugging Face config, weights and tokenizer.
        pooling: Pooling mode over token embeddings.
        include_prompt: Whether instruction tokens count in pooling (False for INSTRUCTOR).
        dense: The modules applied after pooling, in order: Dense layers and LayerNorms.
        normalize: Whether the pipeline ends in an L2 normalization.
        max_seq_length: Token limit from ``sentence_bert_config.json``; None if unset.
        do_lower_case: Lowercase the input before tokenizing (sentence-transformers' flag).
        instructions: The folder's default instructions (the query and document slots).
        prompts: The folder's named prompts, ``(name, text)`` in its order.
        default_prompt_name: The prompt a plain ``encode`` uses, where the folder names one.
        is_instructor: Whether the folder is an INSTRUCTOR checkpoint.
        instructor_stated: What the caller stated with ``instructor=`` (True or False), or None
            where it was detected; a store records it so another process loads the folder alike.
    """

    transformer_path: Path
    pooling: PoolingMode = "mean"
    include_prompt: bool = True
    dense: tuple[DenseSpec | LayerNormSpec, ...] = ()
    normalize: bool = False
    max_seq_length: int | None = None
    do_lower_case: bool = False
    instructions: Instructions = field(default=NO_INSTRUCTIONS)
    prompts: tuple[tuple[str, str], ...] = ()
    default_prompt_name: str | None = None
    is_instructor: bool = False
    instructor_stated: bool | None = None


def resolve_model_path(
    name_or_path: str | os.PathLike[str],
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Return a local folder for a model: the path itself, or a hub snapshot.

    Args:
        name_or_path: A local folder, or a Hugging Face hub id such as "hkunlp/instructor-large".
        revision: Hub revision (branch, tag or commit); ignored for local folders.
        cache_dir: Where hub downloads are cached (the Hugging Face cache layout); None uses the
            Hugging Face default. A folder ``cache_dir/owner_name`` (the layout of
            sentence-transformers < 2.3 and InstructorEmbedding, e.g. ``hkunlp_instructor-large``)
            is used as it is when no revision is asked for.

    Raises:
        ModelFolderError: If the path is neither a folder nor a hub id that can be fetched.
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise InputTypeError(f"model must be a hub id or a folder path, got {type(name_or_path).__name__}")
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelFolderError(f"{path} is a file; expected a model folder or a hub id")
    name = str(name_or_path)
    if name.count("/") != 1 or name.startswith((".", "/", "~")):
        raise ModelFolderError(f"{name!r} is not a local folder, and not a hub id of the form 'owner/name'")
    if cache_dir is not None and revision is None:
        legacy = Path(cache_dir).expanduser() / name.replace("/", "_")
        if (legacy / "modules.json").is_file() or (legacy / "config.json").is_file():
            return legacy
    from huggingface_hub import snapshot_download

    try:
        folder = None if cache_dir is None else Path(cache_dir)
        return Path(snapshot_download(name, revision=revision, cache_dir=folder))
    except Exception as exc:  # the hub client raises many types; keep the cause attached
        raise ModelFolderError(
            f"could not fetch {name!r} from the Hugging Face hub ({type(exc).__name__}: {exc}). "
            "Pass a local folder, or check the network / HF_HUB_OFFLINE."
        ) from exc


def _load_json(path: Path) -> object:
    """The JSON value in ``path``; a file that is not UTF-8 JSON is a :class:`ModelFolderError` naming it."""
    try:
        with path.open(encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise ModelFolderError(f"{path} is not valid JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ModelFolderError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except RecursionError as exc:
        raise ModelFolderError(f"{path}: the JSON is nested too deeply to read") from exc


def _read_json(path: Path) -> dict[str, Any]:
    data = _load_json(path)
    if not isinstance(data, dict):
        raise ModelFolderError(f"{path} should hold a JSON object, found {type(data).__name__}")
    return data


def _module_kind(type_name: str) -> str:
    """Map a modules.json type to transformer / pooling / dense / layernorm / normalize, or ``""`` for a
    module this package cannot run as written (the model's own code, a Router, anything else)."""
    last = type_name.rsplit(".", 1)[-1]
    known_package = type_name.startswith(_KNOWN_MODULE_PACKAGES) or "." not in type_name
    if not known_package:
        return ""  # custom code (jina-v3's custom_st.Transformer): never run as something else
    if last in ("Transformer", "INSTRUCTOR_Transformer"):
        return "transformer"
    if last in ("Pooling", "INSTRUCTOR_Pooling"):
        return "pooling"
    return {"Dense": "dense", "LayerNorm": "layernorm", "Normalize": "normalize"}.get(last, "")


def _refuse_module(modules_path: Path, position: int, type_name: str, folder: Path) -> ModelFolderError:
    custom = "." in type_name and not type_name.startswith(_KNOWN_MODULE_PACKAGES)
    why = (
        "its class is the model's own code, which this package never runs in place of a built-in module"
        if custom
        else "this package cannot run that module exactly"
    )
    return ModelFolderError(
        f"{modules_path}: module {position} ({short_repr(type_name)}, folder {short_repr(str(folder), 200)}) is not "
        f"supported: {why}. "
        "Supported: Transformer, Pooling, Dense, LayerNorm and Normalize. Load this model with "
        "sentence-transformers (trust_remote_code=True where it needs its own code)."
    )


def _read_pooling(config: dict[str, Any], where: Path) -> tuple[PoolingMode, bool | None]:
    mode = config.get("pooling_mode")
    if isinstance(mode, list) and len(mode) == 1:
        mode = mode[0]
    if mode is None:
        chosen = [name for name, flag in _POOLING_FLAGS.items() if config.get(flag)]
        if len(chosen) != 1:
            raise ModelFolderError(
                f"{where}: expected exactly one pooling mode ({', '.join(POOLING_MODES)}), found {chosen or 'none'}"
            )
        mode = chosen[0]
    if mode not in POOLING_MODES:
        raise ModelFolderError(f"{where}: pooling mode {mode!r} is not supported ({', '.join(POOLING_MODES)} are)")
    include = config.get("include_prompt")
    return cast(PoolingMode, mode), None if include is None else bool(include)


def _activation(name: object, folder: Path) -> Activation:
    """The torch.nn activation class a Dense config names; only classes of ``torch.nn`` are taken."""
    import torch

    text = str(name)
    prefix = next((p for p in _ACTIVATION_MODULES if text.startswith(p)), None)
    short = text[len(prefix) :] if prefix else ""
    candidate = getattr(torch.nn, short, None) if short.isidentifier() else None
    if not (isinstance(candidate, type) and issubclass(candidate, torch.nn.Module)):
        raise ModelFolderError(
            f"{folder}: Dense activation {text!r} is not a torch.nn activation (such as "
            "torch.nn.modules.activation.Tanh or GELU, or torch.nn.modules.linear.Identity)"
        )
    return short


def _read_dense(folder: Path) -> DenseSpec:
    config = _read_json(folder / "config.json")
    activation = _activation(config.get("activation_function", "torch.nn.modules.activation.Tanh"), folder)
    if "residual" in config and config["residual"]:
        raise ModelFolderError(f"{folder}: residual Dense layers are not supported")
    try:
        return DenseSpec(
            path=folder,
            in_features=int(config["in_features"]),
            out_features=int(config["out_features"]),
            bias=bool(config.get("bias", True)),
            activation=activation,
        )
    except KeyError as exc:
        raise ModelFolderError(f"{folder}/config.json lacks {exc.args[0]!r}") from exc


def _read_layer_norm(folder: Path) -> LayerNormSpec:
    config = _read_json(folder / "config.json")
    dimension = config.get("dimension")
    if not isinstance(dimension, int) or dimension < 1:
        raise ModelFolderError(f"{folder}/config.json: LayerNorm needs a positive int 'dimension', got {dimension!r}")
    return LayerNormSpec(path=folder, dimension=dimension)


def _folder_prompts(root: Path) -> tuple[dict[str, str], str | None]:
    """The folder's named prompts and default prompt name (``config_sentence_transformers.json``)."""
    path = root / "config_sentence_transformers.json"
    if not path.is_file():
        return {}, None
    config = _read_json(path)
    prompts = config.get("prompts") or {}
    if not isinstance(prompts, dict):
        raise ModelFolderError(f"{path}: 'prompts' should be an object of strings, found {type(prompts).__name__}")
    for name, text in prompts.items():
        if not isinstance(text, str | None):
            raise ModelFolderError(
                f"{path}: prompt {short_repr(name)} should be a string, found {type(text).__name__} {short_repr(text)}"
            )
    default = config.get("default_prompt_name")
    if default is not None and not isinstance(default, str):
        raise ModelFolderError(
            f"{path}: default_prompt_name should be a prompt's name (a string), found {short_repr(default)}"
        )
    if default is not None and default not in prompts:
        names = ", ".join(short_repr(name) for name in sorted(prompts)[:10]) or "none"
        more = f" and {len(prompts) - 10} more" if len(prompts) > 10 else ""
        raise ModelFolderError(
            f"{path}: default_prompt_name {short_repr(default)} is not among its prompts ({names}{more})"
        )
    return {str(k): v or "" for k, v in prompts.items()}, default


@dataclass(frozen=True)
class _Pipeline:
    """The modules listed in modules.json, read."""

    transformer_path: Path
    pooling: PoolingMode
    include_prompt: bool | None
    dense: tuple[DenseSpec | LayerNormSpec, ...]
    normalize: bool
    module_types: tuple[str, ...]


def _plain_folder_spec(root: Path) -> ModelSpec:
    """A folder without modules.json: a plain Hugging Face encoder (mean pooling, no instructions)."""
    if (root / "config.json").is_file():
        return ModelSpec(transformer_path=root, pooling="mean")
    found = sorted(p.name for p in root.iterdir())[:20] if root.is_dir() else []
    inner = [p for p in sorted(root.iterdir()) if _is_model_folder(p)] if root.is_dir() else []
    hint = f"; did you mean {inner[0]}?" if len(inner) == 1 else ""
    raise ModelFolderError(
        f"{root} holds neither modules.json (a sentence-transformers folder) nor config.json "
        f"(a Hugging Face model); found: {found or 'nothing'}{hint}"
    )


def _is_model_folder(path: Path) -> bool:
    """Whether ``path`` is a folder holding a model (a package folder's ``model/``, say)."""
    return path.is_dir() and ((path / "modules.json").is_file() or (path / "config.json").is_file())


def _read_modules(modules_path: Path) -> list[dict[str, Any]]:
    modules = _load_json(modules_path)
    if not isinstance(modules, list) or not modules:
        raise ModelFolderError(f"{modules_path} should be a non-empty list of modules")
    for position, module in enumerate(modules):
        if not isinstance(module, dict):
            raise ModelFolderError(
                f"{modules_path}: module {position} is {short_repr(module)}, expected an object with 'type' and 'path'"
            )
        for key in ("type", "path"):
            if not isinstance(module.get(key, ""), str):
                raise ModelFolderError(
                    f"{modules_path}: module {position}'s {key!r} should be a string, found {short_repr(module[key])}"
                )
    return modules


def _read_pipeline(root: Path, modules_path: Path, modules: list[dict[str, Any]]) -> _Pipeline:
    """Read each module's folder, in order; exactly one Transformer and at least one Pooling."""
    transformer_path: Path | None = None
    pooling: tuple[PoolingMode, bool | None] | None = None
    dense: list[DenseSpec | LayerNormSpec] = []
    normalize = False
    for position, module in enumerate(modules):
        type_name = str(module.get("type", ""))
        kind = _module_kind(type_name)
        folder = root / str(module.get("path", ""))
        if kind not in ("", "normalize") and not folder.is_dir():
            raise ModelFolderError(
                f"{modules_path}: module {position} ({type_name!r}) names the folder "
                f"{short_repr(str(module.get('path', '')))}, which does not exist in {root}"
            )
        if kind == "transformer":
            if transformer_path is not None:
                raise ModelFolderError(f"{modules_path}: more than one Transformer module")
            transformer_path = folder
        elif kind == "pooling":
            pooling = _read_pooling(_read_json(folder / "config.json"), folder)
        elif kind == "dense":
            dense.append(_read_dense(folder))
        elif kind == "layernorm":
            dense.append(_read_layer_norm(folder))
        elif kind == "normalize":
            normalize = True
        else:
            raise _refuse_module(modules_path, position, type_name, folder)
    if transformer_path is None:
        raise ModelFolderError(f"{modules_path} names no Transformer module")
    if pooling is None:
        raise ModelFolderError(f"{modules_path} names no Pooling module")
    return _Pipeline(
        transformer_path=transformer_path,
        pooling=pooling[0],
        include_prompt=pooling[1],
        dense=tuple(dense),
        normalize=normalize,
        module_types=tuple(str(m.get("type", "")) for m in modules),
    )


def _read_tokenizer_settings(transformer_path: Path) -> tuple[int | None, bool]:
    """``max_seq_length`` and ``do_lower_case`` from sentence-transformers' module config."""
    for name in ("sentence_bert_config.json", "sentence_xlnet_config.json"):
        config_path = transformer_path / name
        if config_path.is_file():
            st_config = _read_json(config_path)
            max_seq_length = st_config.get("max_seq_length")
            if max_seq_length is not None and (
                isinstance(max_seq_length, bool) or not isinstance(max_seq_length, int) or max_seq_length < 1
            ):
                raise ModelFolderError(
                    f"{config_path}: max_seq_length should be a positive integer, found {short_repr(max_seq_length)}"
                )
            return max_seq_length, bool(st_config.get("do_lower_case", False))
    return None, False


def _decide_instructor(
    root: Path,
    pipeline: _Pipeline,
    folder_instructions: Instructions | None,
    *,
    hub_id: str | None,
    instructor: bool | None,
) -> bool:
    """Whether to treat the folder as an INSTRUCTOR checkpoint: the caller's word, else the evidence.

    Warns (once per folder) where the folder has INSTRUCTOR's shape, its pooling config is silent
    and nothing marks it either way.
    """
    if instructor is not None:
        if not isinstance(instructor, bool):
            raise InputTypeError(f"instructor must be True, False or None, got {instructor!r}")
        return instructor
    shaped = pipeline.include_prompt is None and looks_like_instructor(
        pipeline.transformer_path, len(pipeline.dense), folder_instructions is not None
    )
    evidence = instructor_evidence(
        root,
        pipeline.transformer_path,
        hub_id=hub_id,
        module_types=pipeline.module_types,
        shaped_like_instructor=shaped,
    )
    if evidence is None and shaped:
        warn_if_ambiguous(root)
    return evidence is not None


def read_model_folder(root: Path, *, hub_id: str | None = None, instructor: bool | None = None) -> ModelSpec:
    """Describe the pipeline stored in ``root``.

    Understands sentence-transformers folders (``modules.json``), INSTRUCTOR checkpoints and plain
    Hugging Face encoder folders (``config.json``; mean pooling, no instructions).

    An INSTRUCTOR checkpoint leaves the instruction's tokens out of pooling (unless its pooling
    config says ``include_prompt: true``) and defaults to the paper's retrieval instructions. It is
    recognised by ``InstructorEmbedding`` module types, an ``hkunlp/instructor-*`` hub id, a path
    such as ``.../models--hkunlp--instructor-large/snapshots/<rev>``, its config's
    ``_name_or_path`` or its model card (see :mod:`instructor_core.model.detect`).

    Args:
        root: The model folder.
        hub_id: The name the model was loaded by (a hub id or the path as given).
        instructor: True or False states whether the folder is an INSTRUCTOR checkpoint, and
            overrides detection; True also leaves the instruction out of pooling whatever the
            pooling config says. None (default) detects it, and warns once per folder where the
            folder looks like one but nothing says.

    Raises:
        ModelFolderError: If the folder holds none of these, naming what it does hold.
    """
    modules_path = root / "modules.json"
    if not modules_path.is_file():
        if instructor:
            raise ModelFolderError(
                f"{root} has no modules.json; instructor=True needs an INSTRUCTOR checkpoint folder "
                "(Transformer, Pooling, Dense and Normalize modules)"
            )
        return _plain_folder_spec(root)
    pipeline = _read_pipeline(root, modules_path, _read_modules(modules_path))
    max_seq_length, do_lower_case = _read_tokenizer_settings(pipeline.transformer_path)
    prompts, default_prompt_name = _folder_prompts(root)
    folder_instructions = slots_from_prompts(prompts)
    is_instructor = _decide_instructor(root, pipeline, folder_instructions, hub_id=hub_id, instructor=instructor)
    include_prompt = pipeline.include_prompt
    if include_prompt is None or instructor:
        include_prompt = not is_instructor
    if folder_instructions is None:
        folder_instructions = INSTRUCTOR_RETRIEVAL if is_instructor else NO_INSTRUCTIONS
    return ModelSpec(
        transformer_path=pipeline.transformer_path,
        pooling=pipeline.pooling,
        include_prompt=include_prompt,
        dense=pipeline.dense,
        normalize=pipeline.normalize,
        max_seq_length=max_seq_length,
        do_lower_case=do_lower_case,
        instructions=folder_instructions,
        prompts=tuple(prompts.items()),
        default_prompt_name=default_prompt_name,
        is_instructor=is_instructor,
        instructor_stated=instructor,
    )
