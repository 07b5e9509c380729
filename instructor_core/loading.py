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
from typing import Any, Literal

from .instructions import INSTRUCTOR_RETRIEVAL, NO_INSTRUCTIONS, Instructions

__all__ = [
    "DenseSpec",
    "INSTRUCTOR_HUB_IDS",
    "ModelFolderError",
    "ModelSpec",
    "PoolingMode",
    "read_model_folder",
    "resolve_model_path",
]

PoolingMode = Literal["mean", "cls", "max", "lasttoken"]
Activation = Literal["identity", "tanh"]

INSTRUCTOR_HUB_IDS = ("hkunlp/instructor-base", "hkunlp/instructor-large", "hkunlp/instructor-xl")

_ACTIVATIONS: dict[str, Activation] = {
    "torch.nn.modules.linear.Identity": "identity",
    "torch.nn.Identity": "identity",
    "torch.nn.modules.activation.Tanh": "tanh",
    "torch.nn.Tanh": "tanh",
}


class ModelFolderError(ValueError):
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
class ModelSpec:
    """What a model folder describes.

    Attributes:
        transformer_path: Folder with the Hugging Face config, weights and tokenizer.
        pooling: Pooling mode over token embeddings.
        include_prompt: Whether instruction tokens count in pooling (False for INSTRUCTOR).
        dense: Dense layers applied after pooling, in order.
        normalize: Whether the pipeline ends in an L2 normalization.
        max_seq_length: Token limit from ``sentence_bert_config.json``; None if unset.
        do_lower_case: Lowercase the input before tokenizing (sentence-transformers' flag).
        instructions: The folder's default instructions.
        is_instructor: Whether the folder is an INSTRUCTOR checkpoint.
    """

    transformer_path: Path
    pooling: PoolingMode = "mean"
    include_prompt: bool = True
    dense: tuple[DenseSpec, ...] = ()
    normalize: bool = False
    max_seq_length: int | None = None
    do_lower_case: bool = False
    instructions: Instructions = field(default=NO_INSTRUCTIONS)
    is_instructor: bool = False


def resolve_model_path(name_or_path: str | os.PathLike[str], revision: str | None = None) -> Path:
    """Return a local folder for a model: the path itself, or a hub snapshot.

    Args:
        name_or_path: A local folder, or a Hugging Face hub id such as "hkunlp/instructor-large".
        revision: Hub revision (branch, tag or commit); ignored for local folders.

    Raises:
        ModelFolderError: If the path is neither a folder nor a hub id that can be fetched.
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"model must be a hub id or a folder path, got {type(name_or_path).__name__}")
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelFolderError(f"{path} is a file; expected a model folder or a hub id")
    name = str(name_or_path)
    if name.count("/") != 1 or name.startswith((".", "/", "~")):
        raise ModelFolderError(f"{name!r} is not a local folder, and not a hub id of the form 'owner/name'")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, revision=revision))
    except Exception as exc:  # the hub client raises many types; keep the cause attached
        raise ModelFolderError(
            f"could not fetch {name!r} from the Hugging Face hub ({type(exc).__name__}: {exc}). "
            "Pass a local folder, or check the network / HF_HUB_OFFLINE."
        ) from exc


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise ModelFolderError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelFolderError(f"{path} should hold a JSON object, found {type(data).__name__}")
    return data


def _module_kind(type_name: str) -> str:
    """Map a modules.json type to one of transformer / pooling / dense / normalize."""
    last = type_name.rsplit(".", 1)[-1]
    if last in ("Transformer", "INSTRUCTOR_Transformer"):
        return "transformer"
    if last in ("Pooling", "INSTRUCTOR_Pooling"):
        return "pooling"
    if last == "Dense":
        return "dense"
    if last == "Normalize":
        return "normalize"
    return type_name


def _read_pooling(config: dict[str, Any], where: Path) -> tuple[PoolingMode, bool | None]:
    mode = config.get("pooling_mode")
    if isinstance(mode, list) and len(mode) == 1:
        mode = mode[0]
    if mode is None:
        legacy = {
            "mean": config.get("pooling_mode_mean_tokens"),
            "cls": config.get("pooling_mode_cls_token"),
            "max": config.get("pooling_mode_max_tokens"),
            "lasttoken": config.get("pooling_mode_lasttoken"),
        }
        chosen = [name for name, on in legacy.items() if on]
        others = [
            key for key in ("pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens") if config.get(key)
        ]
        if len(chosen) != 1 or others:
            raise ModelFolderError(
                f"{where}: expected exactly one of mean, cls, max or lasttoken pooling, "
                f"found {chosen + [k.removeprefix('pooling_mode_') for k in others] or 'none'}"
            )
        mode = chosen[0]
    if mode not in ("mean", "cls", "max", "lasttoken"):
        raise ModelFolderError(f"{where}: pooling mode {mode!r} is not supported (mean, cls, max, lasttoken are)")
    include = config.get("include_prompt")
    return mode, None if include is None else bool(include)


def _read_dense(folder: Path) -> DenseSpec:
    config = _read_json(folder / "config.json")
    act_name = config.get("activation_function", "torch.nn.modules.activation.Tanh")
    if act_name not in _ACTIVATIONS:
        raise ModelFolderError(f"{folder}: Dense activation {act_name!r} is not supported (Identity or Tanh are)")
    if "residual" in config and config["residual"]:
        raise ModelFolderError(f"{folder}: residual Dense layers are not supported")
    try:
        return DenseSpec(
            path=folder,
            in_features=int(config["in_features"]),
            out_features=int(config["out_features"]),
            bias=bool(config.get("bias", True)),
            activation=_ACTIVATIONS[act_name],
        )
    except KeyError as exc:
        raise ModelFolderError(f"{folder}/config.json lacks {exc.args[0]!r}") from exc


def _folder_instructions(root: Path) -> Instructions | None:
    path = root / "config_sentence_transformers.json"
    if not path.is_file():
        return None
    prompts = _read_json(path).get("prompts") or {}
    if not isinstance(prompts, dict):
        raise ModelFolderError(f"{path}: 'prompts' should be an object, found {prompts!r}")
    query = prompts.get("query")
    document = next((prompts[key] for key in ("document", "passage", "corpus", "text") if key in prompts), None)
    if query is None and document is None:
        return None
    return Instructions(query=query or "", document=document or "")


def read_model_folder(root: Path, *, hub_id: str | None = None) -> ModelSpec:
    """Describe the pipeline stored in ``root``.

    Understands sentence-transformers folders (``modules.json``), INSTRUCTOR checkpoints
    (``InstructorEmbedding`` module types or an ``hkunlp/instructor-*`` hub id) and plain Hugging
    Face encoder folders (``config.json``; mean pooling, no instructions).

    Raises:
        ModelFolderError: If the folder holds none of these, naming what it does hold.
    """
    modules_path = root / "modules.json"
    if not modules_path.is_file():
        if (root / "config.json").is_file():
            return ModelSpec(transformer_path=root, pooling="mean")
        found = sorted(p.name for p in root.iterdir())[:20] if root.is_dir() else []
        raise ModelFolderError(
            f"{root} holds neither modules.json (a sentence-transformers folder) nor config.json "
            f"(a Hugging Face model); found: {found or 'nothing'}"
        )
    with modules_path.open(encoding="utf-8") as fh:
        modules = json.load(fh)
    if not isinstance(modules, list) or not modules:
        raise ModelFolderError(f"{modules_path} should be a non-empty list of modules")

    is_instructor = hub_id in INSTRUCTOR_HUB_IDS or any(
        "InstructorEmbedding" in str(m.get("type", "")) for m in modules
    )
    transformer_path: Path | None = None
    pooling: PoolingMode = "mean"
    include_prompt: bool | None = None
    have_pooling = False
    dense: list[DenseSpec] = []
    normalize = False
    for position, module in enumerate(modules):
        kind = _module_kind(str(module.get("type", "")))
        folder = root / str(module.get("path", ""))
        if kind == "transformer":
            if transformer_path is not None:
                raise ModelFolderError(f"{modules_path}: more than one Transformer module")
            transformer_path = folder
        elif kind == "pooling":
            pooling, include_prompt = _read_pooling(_read_json(folder / "config.json"), folder)
            have_pooling = True
        elif kind == "dense":
            dense.append(_read_dense(folder))
        elif kind == "normalize":
            normalize = True
        else:
            raise ModelFolderError(
                f"{modules_path}: module {position} has type {kind!r}; supported are Transformer, "
                "Pooling, Dense and Normalize"
            )
    if transformer_path is None:
        raise ModelFolderError(f"{modules_path} names no Transformer module")
    if not have_pooling:
        raise ModelFolderError(f"{modules_path} names no Pooling module")

    max_seq_length = None
    do_lower_case = False
    for name in ("sentence_bert_config.json", "sentence_xlnet_config.json"):
        config_path = transformer_path / name
        if config_path.is_file():
            st_config = _read_json(config_path)
            max_seq_length = st_config.get("max_seq_length")
            do_lower_case = bool(st_config.get("do_lower_case", False))
            break

    if include_prompt is None:
        include_prompt = not is_instructor
    instructions = _folder_instructions(root)
    if instructions is None:
        instructions = INSTRUCTOR_RETRIEVAL if is_instructor else NO_INSTRUCTIONS
    return ModelSpec(
        transformer_path=transformer_path,
        pooling=pooling,
        include_prompt=include_prompt,
        dense=tuple(dense),
        normalize=normalize,
        max_seq_length=int(max_seq_length) if max_seq_length else None,
        do_lower_case=do_lower_case,
        instructions=instructions,
        is_instructor=is_instructor,
    )
