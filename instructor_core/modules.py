"""The torch pieces of a pipeline: the Hugging Face transformer, its tokenizer, Dense layers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch

from .loading import Activation, DenseSpec, ModelFolderError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, PreTrainedTokenizerFast

__all__ = ["Dense", "hidden_size", "load_tokenizer", "load_transformer"]

# Encoder-decoder families whose encoder alone is the embedding model.
_ENCODER_ONLY_CLASSES = {"t5": "T5EncoderModel", "mt5": "MT5EncoderModel", "umt5": "UMT5EncoderModel"}


class Dense(torch.nn.Module):
    """A sentence-transformers Dense module: ``activation(linear(x))``."""

    def __init__(self, in_features: int, out_features: int, bias: bool, activation: Activation) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(in_features, out_features, bias=bias)
        self.activation_name: Activation = activation
        self.activation = torch.nn.Tanh() if activation == "tanh" else torch.nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer."""
        return self.activation(self.linear(x))

    @classmethod
    def load(cls, spec: DenseSpec) -> Dense:
        """Build the layer from its folder: ``model.safetensors`` first, else a weights-only pickle."""
        layer = cls(spec.in_features, spec.out_features, spec.bias, spec.activation)
        safetensors_path = spec.path / "model.safetensors"
        pickle_path = spec.path / "pytorch_model.bin"
        if safetensors_path.is_file():
            from safetensors.torch import load_file

            state = load_file(str(safetensors_path))
        elif pickle_path.is_file():
            state = torch.load(pickle_path, map_location="cpu", weights_only=True)
        else:
            raise ModelFolderError(f"{spec.path} has no model.safetensors or pytorch_model.bin")
        missing = {"linear.weight"} | ({"linear.bias"} if spec.bias else set())
        if not missing <= set(state):
            raise ModelFolderError(f"{spec.path}: weights lack {sorted(missing - set(state))}")
        layer.linear.load_state_dict(
            {k.removeprefix("linear."): v for k, v in state.items() if k.startswith("linear.")}
        )
        return layer


def hidden_size(transformer: torch.nn.Module) -> int:
    """Width of the transformer's hidden states (``hidden_size``, or ``d_model`` for T5)."""
    config = transformer.config
    size = getattr(config, "hidden_size", None)
    return int(size if size is not None else getattr(config, "d_model", 0))


def load_transformer(path: Path, dtype: torch.dtype, trust_remote_code: bool) -> PreTrainedModel:
    """Load the Hugging Face model in ``path``; T5-family configs load their encoder only.

    safetensors weights are preferred; pickle checkpoints load with ``weights_only`` (transformers'
    own safe loading).
    """
    import transformers

    config = transformers.AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    class_name = _ENCODER_ONLY_CLASSES.get(getattr(config, "model_type", ""))
    model_class = getattr(transformers, class_name) if class_name else transformers.AutoModel
    model = model_class.from_pretrained(path, config=config, dtype=dtype, trust_remote_code=trust_remote_code)
    return model


def load_tokenizer(path: Path, do_lower_case: bool, trust_remote_code: bool) -> PreTrainedTokenizerBase:
    """Load the tokenizer; ``do_lower_case`` adds a lowercase step to its normalizer (as
    sentence-transformers does), so the caller's text is never rewritten."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    tokenizer.padding_side = "right"
    if do_lower_case:
        _add_lowercase(tokenizer)
    return tokenizer


def _add_lowercase(tokenizer: PreTrainedTokenizerBase) -> None:
    if not getattr(tokenizer, "is_fast", False):
        try:
            tokenizer.do_lower_case = True
        except AttributeError:
            tokenizer.basic_tokenizer.do_lower_case = True
        return
    from tokenizers import normalizers

    fast = cast("PreTrainedTokenizerFast", tokenizer)
    current = fast.backend_tokenizer.normalizer
    if current is not None and "Lowercase" in repr(current):
        return
    steps = [normalizers.Lowercase()]
    if isinstance(current, normalizers.Sequence):
        steps += list(current)  # type: ignore[call-overload]  # a Sequence iterates; the stub says not
    elif current is not None:
        steps.append(current)
    fast.backend_tokenizer.normalizer = normalizers.Sequence(steps)
