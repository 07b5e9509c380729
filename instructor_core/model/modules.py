"""The torch pieces of a pipeline: the Hugging Face transformer, its tokenizer, Dense layers."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from instructor_core.errors import InstructorError, ModelLoadError
from instructor_core.messages import short_repr
from instructor_core.model.loading import Activation, DenseSpec, LayerNormSpec, ModelFolderError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, PreTrainedTokenizerFast

    from instructor_core.model.load_options import LoadOptions

__all__ = [
    "Dense",
    "LayerNorm",
    "hidden_size",
    "load_post_module",
    "load_tokenizer",
    "load_transformer",
    "out_features",
    "unreadable_files",
]

# Encoder-decoder families whose encoder alone is the embedding model.
_ENCODER_ONLY_CLASSES = {"t5": "T5EncoderModel", "mt5": "MT5EncoderModel", "umt5": "UMT5EncoderModel"}


def _activation_module(name: Activation) -> torch.nn.Module:
    """``torch.nn.<name>()``; the legacy lower-case names "identity" and "tanh" are accepted too."""
    name = {"identity": "Identity", "tanh": "Tanh"}.get(name, name)
    return cast(torch.nn.Module, getattr(torch.nn, name)())


def _load_state(folder: Path) -> dict[str, torch.Tensor]:
    """A module folder's weights: ``model.safetensors`` first, else a weights-only pickle."""
    safetensors_path = folder / "model.safetensors"
    pickle_path = folder / "pytorch_model.bin"
    if safetensors_path.is_file():
        from safetensors.torch import load_file

        return load_file(str(safetensors_path))
    if pickle_path.is_file():
        return cast(dict, torch.load(pickle_path, map_location="cpu", weights_only=True))
    raise ModelFolderError(f"{folder} has no model.safetensors or pytorch_model.bin")


class Dense(torch.nn.Module):
    """A sentence-transformers Dense module: ``activation(linear(x))``, any ``torch.nn`` activation."""

    def __init__(self, in_features: int, out_features: int, bias: bool, activation: Activation) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(in_features, out_features, bias=bias)
        self.activation_name: Activation = {"identity": "Identity", "tanh": "Tanh"}.get(activation, activation)
        self.activation = _activation_module(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer."""
        return self.activation(self.linear(x))

    @property
    def out_features(self) -> int:
        """Width of the output."""
        return self.linear.out_features

    @classmethod
    def load(cls, spec: DenseSpec) -> Dense:
        """Build the layer from its folder."""
        layer = cls(spec.in_features, spec.out_features, spec.bias, spec.activation)
        state = _load_state(spec.path)
        missing = {"linear.weight"} | ({"linear.bias"} if spec.bias else set())
        if not missing <= set(state):
            raise ModelFolderError(f"{spec.path}: weights lack {sorted(missing - set(state))}")
        layer.linear.load_state_dict(
            {k.removeprefix("linear."): v for k, v in state.items() if k.startswith("linear.")}
        )
        return layer


class LayerNorm(torch.nn.Module):
    """sentence-transformers' LayerNorm module after pooling: ``torch.nn.LayerNorm(dimension)``."""

    def __init__(self, dimension: int) -> None:
        super().__init__()
        self.norm = torch.nn.LayerNorm(dimension)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer."""
        return self.norm(x)

    @property
    def out_features(self) -> int:
        """Width of the output (that of the input)."""
        return int(self.norm.normalized_shape[0])

    @classmethod
    def load(cls, spec: LayerNormSpec) -> LayerNorm:
        """Build the layer from its folder."""
        layer = cls(spec.dimension)
        state = _load_state(spec.path)
        wanted = {"norm.weight", "norm.bias"}
        if not wanted <= set(state):
            raise ModelFolderError(f"{spec.path}: weights lack {sorted(wanted - set(state))}")
        layer.norm.load_state_dict({k.removeprefix("norm."): v for k, v in state.items() if k.startswith("norm.")})
        return layer


def load_post_module(spec: DenseSpec | LayerNormSpec) -> Dense | LayerNorm:
    """The module after pooling that ``spec`` describes."""
    return Dense.load(spec) if isinstance(spec, DenseSpec) else LayerNorm.load(spec)


def out_features(layer: torch.nn.Module) -> int:
    """Output width of a module after pooling (:class:`Dense` or :class:`LayerNorm`)."""
    return int(cast("Dense | LayerNorm", layer).out_features)


def hidden_size(transformer: torch.nn.Module) -> int:
    """Width of the transformer's hidden states (``hidden_size``, or ``d_model`` for T5)."""
    config = transformer.config
    size = getattr(config, "hidden_size", None)
    return int(size if size is not None else getattr(config, "d_model", 0))


def load_transformer(path: Path, dtype: torch.dtype, options: LoadOptions) -> PreTrainedModel:
    """Load the Hugging Face model in ``path``; T5-family configs load their encoder only.

    safetensors weights are preferred; pickle checkpoints load with ``weights_only`` (transformers'
    own safe loading). ``options.trust_remote_code`` and ``options.attn_implementation`` ("eager",
    "sdpa", ...) go to transformers as given.
    """
    import transformers

    trust_remote_code, attn_implementation = options.trust_remote_code, options.attn_implementation
    try:
        config = transformers.AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except ValueError as exc:  # AutoConfig's refusals of the config: code it may not run, a model_type it lacks
        raise _config_refused(path, exc, trust_remote_code) from exc
    class_name = _ENCODER_ONLY_CLASSES.get(getattr(config, "model_type", ""))
    model_class = getattr(transformers, class_name) if class_name else transformers.AutoModel
    # typed as Any: transformers 5.25 types from_pretrained's keywords, and a dict[str, str] unpacked into them
    # would be checked against every one (mypy reads **extra as possibly any of them)
    extra: dict[str, Any] = {} if attn_implementation is None else {"attn_implementation": attn_implementation}
    return model_class.from_pretrained(path, config=config, dtype=dtype, trust_remote_code=trust_remote_code, **extra)


@contextlib.contextmanager
def unreadable_files(model: str | os.PathLike[str]) -> Iterator[None]:
    """Turn a model file that cannot be read (a broken config, truncated or corrupt weights, a file that
    is not UTF-8) into one :class:`~instructor_core.errors.ModelLoadError` naming ``model`` as the
    caller gave it; an :class:`~instructor_core.errors.InstructorError` passes as it is."""
    import pickle

    from safetensors import SafetensorError

    try:
        yield
    except InstructorError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, SafetensorError, pickle.UnpicklingError) as exc:
        text = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise ModelLoadError(f"cannot load the model at {os.fspath(model)}: {text}") from exc


def _config_refused(path: Path, exc: ValueError, trust_remote_code: bool) -> ModelFolderError:
    """One line for transformers' ValueError on ``path/config.json``, naming its ``model_type``: a model that
    needs its own code (which no CLI command runs), or a ``model_type`` this transformers lacks."""
    import transformers

    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = None
    config = config if isinstance(config, dict) else {}
    model_type = short_repr(config.get("model_type"))
    where = f"{path / 'config.json'}: model_type {model_type}"
    if not trust_remote_code and ("trust_remote_code" in str(exc) or config.get("auto_map")):
        return ModelFolderError(
            f"{where} needs the folder's own code (its config.json auto_map), which instructor does not run; "
            f"use a model that transformers {transformers.__version__} supports without it"
        )
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ModelFolderError(f"{where}: transformers {transformers.__version__} cannot read it ({first})")


def load_tokenizer(path: Path, do_lower_case: bool, options: LoadOptions) -> PreTrainedTokenizerBase:
    """Load the tokenizer (``options.trust_remote_code`` as given); ``do_lower_case`` adds a lowercase
    step to its normalizer (as sentence-transformers does), so the caller's text is never rewritten."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=options.trust_remote_code)
    # the tokenizer's own padding side (left for Qwen3-style decoders), as sentence-transformers pads
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
