"""Writing a sentence-transformers folder that both this package and sentence-transformers load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors.torch import save_file

if TYPE_CHECKING:
    from .encoder import InstructorEncoder

__all__ = ["save_model_folder"]

_ACTIVATION_NAMES = {
    "identity": "torch.nn.modules.linear.Identity",
    "tanh": "torch.nn.modules.activation.Tanh",
}


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def save_model_folder(encoder: InstructorEncoder, root: Path) -> Path:
    """Save ``encoder`` into ``root`` (created if needed) and return ``root``.

    Layout: the Hugging Face model and tokenizer at the top, ``modules.json`` naming Transformer,
    Pooling, Dense... and Normalize, ``sentence_bert_config.json`` with the token limit, and the
    instructions as ``config_sentence_transformers.json`` prompts.
    """
    import torch
    import transformers

    root.mkdir(parents=True, exist_ok=True)
    spec = encoder.spec
    encoder.transformer.save_pretrained(root)
    encoder.tokenizer.save_pretrained(root)
    _write_json(
        root / "sentence_bert_config.json",
        {"max_seq_length": encoder.max_length, "do_lower_case": spec.do_lower_case},
    )

    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]
    hidden = (
        encoder.transformer.config.hidden_size
        if hasattr(encoder.transformer.config, "hidden_size")
        else encoder.transformer.config.d_model
    )
    pooling_config = {
        "word_embedding_dimension": hidden,
        "pooling_mode_cls_token": spec.pooling == "cls",
        "pooling_mode_mean_tokens": spec.pooling == "mean",
        "pooling_mode_max_tokens": spec.pooling == "max",
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": spec.pooling == "lasttoken",
        "include_prompt": spec.include_prompt,
    }
    _write_json(root / "1_Pooling" / "config.json", pooling_config)
    modules.append({"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"})
    for layer in encoder.dense:
        idx = len(modules)
        folder = f"{idx}_Dense"
        _write_json(
            root / folder / "config.json",
            {
                "in_features": layer.linear.in_features,
                "out_features": layer.linear.out_features,
                "bias": layer.linear.bias is not None,
                "activation_function": _ACTIVATION_NAMES[layer.activation_name],
            },
        )
        state = {f"linear.{k}": v.detach().to("cpu").contiguous() for k, v in layer.linear.state_dict().items()}
        save_file(state, str(root / folder / "model.safetensors"))
        modules.append({"idx": idx, "name": str(idx), "path": folder, "type": "sentence_transformers.models.Dense"})
    if spec.normalize:
        idx = len(modules)
        (root / f"{idx}_Normalize").mkdir(exist_ok=True)
        modules.append(
            {
                "idx": idx,
                "name": str(idx),
                "path": f"{idx}_Normalize",
                "type": "sentence_transformers.models.Normalize",
            }
        )
    _write_json(root / "modules.json", modules)

    from . import __version__

    _write_json(
        root / "config_sentence_transformers.json",
        {
            "__version__": {
                "instructor": __version__,
                "transformers": transformers.__version__,
                "pytorch": torch.__version__,
            },
            "prompts": {"query": encoder.instructions.query, "document": encoder.instructions.document},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    return root
