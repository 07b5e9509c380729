"""Writing a sentence-transformers folder that both this package and sentence-transformers load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import torch
from safetensors.torch import save_file

from instructor_core.model.modules import LayerNorm, hidden_size

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from instructor_core.instructions import Instructions
    from instructor_core.model.loading import ModelSpec
    from instructor_core.model.modules import Dense


class SavableEncoder(Protocol):
    """What saving reads of an encoder (``InstructorEncoder`` has it): saving depends on these parts,
    not on the encoder module, which calls it."""

    spec: ModelSpec
    transformer: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    dense: torch.nn.ModuleList
    max_length: int
    default_prompt_name: str | None

    @property
    def instructions(self) -> Instructions: ...

    @property
    def prompts(self) -> dict[str, str]: ...


__all__ = ["save_model_folder"]


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def save_model_folder(encoder: SavableEncoder, root: Path) -> Path:
    """Save ``encoder`` into ``root`` (created if needed) and return ``root``.

    Layout: the Hugging Face model and tokenizer at the top, ``modules.json`` naming Transformer,
    Pooling, Dense... and Normalize, ``sentence_bert_config.json`` with the token limit, and the
    instructions as ``config_sentence_transformers.json`` prompts.
    """
    root.mkdir(parents=True, exist_ok=True)
    encoder.transformer.save_pretrained(root)
    encoder.tokenizer.save_pretrained(root)
    _write_json(
        root / "sentence_bert_config.json",
        {"max_seq_length": encoder.max_length, "do_lower_case": encoder.spec.do_lower_case},
    )
    modules = [_module(0, "", "Transformer"), _save_pooling(encoder, root)]
    for layer in encoder.dense:
        if isinstance(layer, LayerNorm):
            modules.append(_save_layer_norm(layer, root, len(modules)))
        else:
            modules.append(_save_dense(cast("Dense", layer), root, len(modules)))
    if encoder.spec.normalize:
        idx = len(modules)
        (root / f"{idx}_Normalize").mkdir(exist_ok=True)
        modules.append(_module(idx, f"{idx}_Normalize", "Normalize"))
    _write_json(root / "modules.json", modules)
    _save_sentence_transformers_config(encoder, root)
    return root


def _module(idx: int, path: str, kind: str) -> dict[str, Any]:
    """One ``modules.json`` entry."""
    return {"idx": idx, "name": str(idx), "path": path, "type": f"sentence_transformers.models.{kind}"}


def _save_pooling(encoder: SavableEncoder, root: Path) -> dict[str, Any]:
    """Write ``1_Pooling/config.json``; return its ``modules.json`` entry."""
    spec = encoder.spec
    pooling_config = {
        "word_embedding_dimension": hidden_size(encoder.transformer),
        "pooling_mode_cls_token": spec.pooling == "cls",
        "pooling_mode_mean_tokens": spec.pooling == "mean",
        "pooling_mode_max_tokens": spec.pooling == "max",
        "pooling_mode_mean_sqrt_len_tokens": spec.pooling == "mean_sqrt_len_tokens",
        "pooling_mode_weightedmean_tokens": spec.pooling == "weightedmean",
        "pooling_mode_lasttoken": spec.pooling == "lasttoken",
        "include_prompt": spec.include_prompt,
    }
    _write_json(root / "1_Pooling" / "config.json", pooling_config)
    return _module(1, "1_Pooling", "Pooling")


def _save_dense(layer: Dense, root: Path, idx: int) -> dict[str, Any]:
    """Write one Dense layer as ``{idx}_Dense`` (config and safetensors); return its entry."""
    folder = f"{idx}_Dense"
    _write_json(
        root / folder / "config.json",
        {
            "in_features": layer.linear.in_features,
            "out_features": layer.linear.out_features,
            "bias": layer.linear.bias is not None,
            "activation_function": _activation_path(layer.activation),
        },
    )
    state = {f"linear.{k}": v.detach().to("cpu").contiguous() for k, v in layer.linear.state_dict().items()}
    save_file(state, str(root / folder / "model.safetensors"))
    return _module(idx, folder, "Dense")


def _activation_path(activation: torch.nn.Module) -> str:
    """Where sentence-transformers finds an activation class: ``torch.nn.modules.activation.GELU``."""
    cls = type(activation)
    return f"{cls.__module__}.{cls.__name__}"


def _save_layer_norm(layer: LayerNorm, root: Path, idx: int) -> dict[str, Any]:
    """Write one LayerNorm as ``{idx}_LayerNorm``; return its entry."""
    folder = f"{idx}_LayerNorm"
    _write_json(root / folder / "config.json", {"dimension": layer.out_features})
    state = {f"norm.{k}": v.detach().to("cpu").contiguous() for k, v in layer.norm.state_dict().items()}
    save_file(state, str(root / folder / "model.safetensors"))
    return _module(idx, folder, "LayerNorm")


def _save_sentence_transformers_config(encoder: SavableEncoder, root: Path) -> None:
    """Write ``config_sentence_transformers.json``: versions, and the prompts (the instruction slots as
    ``query`` and ``document``, beside any other named prompt)."""
    import transformers

    from instructor_core.version import __version__

    _write_json(
        root / "config_sentence_transformers.json",
        {
            "__version__": {
                "instructor": __version__,
                "transformers": transformers.__version__,
                "pytorch": torch.__version__,
            },
            "prompts": encoder.prompts,
            "default_prompt_name": encoder.default_prompt_name,
            "similarity_fn_name": "cosine",
        },
    )
