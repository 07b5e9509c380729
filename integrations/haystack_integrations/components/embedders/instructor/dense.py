"""What the dense Instructor embedders share: loading settings, the shared encoder, serialization."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from haystack import default_to_dict
from haystack.utils import ComponentDevice, Secret

from instructor_core import InstructorEncoder, LoadOptions, RemoteEncoder
from instructor_core.errors import InputError, InputTypeError
from instructor_core.model.backends import Backend
from instructor_core.model.quantization import Precision, check_precision
from instructor_core.validation import check_instruction, check_positive_int

from .loading import shared_encoder

__all__ = ["DEFAULT_API_KEY", "DEFAULT_TOKEN", "DenseSettings"]

#: The token the embedders read by default, as Haystack's sentence-transformers embedders do.
DEFAULT_TOKEN = Secret.from_env_var(["HF_API_TOKEN", "HF_TOKEN"], strict=False)
#: The key of an ``instructor serve`` (``server_url=``), read from the environment by default.
DEFAULT_API_KEY = Secret.from_env_var("INSTRUCTOR_API_KEY", strict=False)


class DenseSettings:
    """The settings of a dense embedder, checked once at construction; the components derive from it.

    The loading options are the fields of :class:`~instructor_core.LoadOptions` (``device`` as
    Haystack's ``ComponentDevice``); ``truncate_dim`` applies when encoding, so a model loaded once
    serves embedders with different truncations.
    """

    _name = "InstructorEmbedder"
    _encoder: InstructorEncoder | RemoteEncoder | None
    server_url: str | None = None
    api_key: Secret | None = None

    def _setup(
        self,
        *,
        model: str | os.PathLike[str] | None,
        encoder: InstructorEncoder | None,
        instruction: str | None,
        prompt_name: str | None,
        device: ComponentDevice | None,
        token: Secret | None,
        batch_size: int,
        progress_bar: bool,
        normalize_embeddings: bool,
        truncate_dim: int | None,
        precision: Precision,
        quantization_ranges: list[list[float]] | None,
        options: LoadOptions,
        server_url: str | None = None,
        api_key: Secret | None = None,
    ) -> None:
        where = self._name
        if encoder is not None and not isinstance(encoder, InstructorEncoder):
            raise InputTypeError(f"{where}: encoder must be an InstructorEncoder, got {type(encoder).__name__}")
        if server_url is not None:
            _check_server(where, server_url, model, encoder, options)
        elif (model is None) == (encoder is None):
            raise InputError(
                f"{where}: pass model (a hub id or a folder, e.g. 'hkunlp/instructor-large') or encoder "
                "(an InstructorEncoder already loaded), not both"
                if model is not None
                else f"{where}: pass model (a hub id or a folder, e.g. 'hkunlp/instructor-large') or encoder"
            )
        if encoder is not None:
            options.for_encoder(where)
        if model is not None and not isinstance(model, (str, os.PathLike)):
            raise InputTypeError(f"{where}: model must be a hub id or a folder path, got {type(model).__name__}")
        if instruction is not None:
            check_instruction(instruction, f"{where}: instruction")
            if prompt_name is not None:
                raise InputError(f"{where}: pass instruction or prompt_name, not both")
        if prompt_name is not None and not isinstance(prompt_name, str):
            raise InputTypeError(f"{where}: prompt_name must be a str, got {type(prompt_name).__name__}")
        if token is not None and not isinstance(token, Secret):
            raise InputTypeError(
                f"{where}: token must be a haystack Secret (Secret.from_env_var('HF_TOKEN') or "
                f"Secret.from_token(...)), got {type(token).__name__}"
            )
        check_positive_int(batch_size, f"{where}: batch_size")
        if truncate_dim is not None:
            check_positive_int(truncate_dim, f"{where}: truncate_dim")
        check_precision(precision)
        self.model = None if model is None else os.fspath(model)
        self.instruction = instruction
        self.prompt_name = prompt_name
        self.device = device
        self.token = token
        self.batch_size = batch_size
        self.progress_bar = progress_bar
        self.normalize_embeddings = normalize_embeddings
        self.truncate_dim = truncate_dim
        self.precision: Precision = precision
        self.quantization_ranges = quantization_ranges
        self._calibration = _ranges(quantization_ranges, where)
        self.options = options
        self._encoder = encoder
        self.server_url = server_url
        self.api_key = api_key

    @staticmethod
    def _load_options(
        *,
        device: ComponentDevice | None,
        dtype: str | None,
        max_length: int | None,
        backend: Backend,
        backend_cache_dir: str | None,
        revision: str | None,
        trust_remote_code: bool,
        cache_dir: str | None,
        instructor: bool | None,
        prompts: Mapping[str, str] | None,
        default_prompt_name: str | None,
        attn_implementation: str | None,
    ) -> LoadOptions:
        """The core's options from the component's parameters (``truncate_dim`` aside: it applies when encoding)."""
        if device is not None and not isinstance(device, ComponentDevice):
            raise InputTypeError(
                "device must be a haystack ComponentDevice (ComponentDevice.from_str('cpu')), "
                f"got {type(device).__name__}"
            )
        return LoadOptions(
            device=None if device is None else device.to_torch_str(),
            dtype=dtype,  # type: ignore[arg-type]  # LoadOptions checks the value and names it
            max_length=max_length,
            backend=backend,
            backend_cache_dir=backend_cache_dir,
            revision=revision,
            trust_remote_code=trust_remote_code,
            cache_dir=cache_dir,
            instructor=instructor,
            prompts=None if prompts is None else tuple(dict(prompts).items()),
            default_prompt_name=default_prompt_name,
            attn_implementation=attn_implementation,
        )

    # ------------------------------------------------------------------ loading
    def warm_up(self) -> None:
        """Load the model (once per process for a model and options; see :func:`.shared_encoder`)."""
        if self._encoder is None and self.server_url is not None:
            key = None if self.api_key is None else self.api_key.resolve_value()
            self._encoder = RemoteEncoder(self.server_url, api_key=key)
            if self.truncate_dim is not None:
                self._encoder.check_truncate_dim(self.truncate_dim)
        if self._encoder is None:
            assert self.model is not None  # _setup: model, encoder or server_url
            token = None if self.token is None else self.token.resolve_value()
            self._encoder = shared_encoder(self.model, self.options, token)
            if self.truncate_dim is not None:
                self._encoder.check_truncate_dim(self.truncate_dim)

    @property
    def encoder(self) -> InstructorEncoder | RemoteEncoder:
        """The encoder in use (loaded on first use)."""
        self.warm_up()
        assert self._encoder is not None
        return self._encoder

    def _encode(self, pairs: list[tuple[str, str]]) -> list[list[float]]:
        """Vectors of ``(instruction, text)`` pairs, in order, as lists (the instruction left out of
        pooling where the model says so)."""
        vectors = self.encoder.encode(
            pairs,
            batch_size=self.batch_size,
            normalize=self.normalize_embeddings,
            show_progress=self.progress_bar,
            truncate_dim=self.truncate_dim,
            precision=self.precision,
            calibration_embeddings=self._calibration,
        )
        return [row.tolist() for row in vectors]

    def _instruction(self, slot: str) -> str:
        """The instruction in effect: ``instruction``, else the prompt ``prompt_name``, else the
        encoder's ``slot`` ("query" or "document")."""
        if self.instruction is not None:
            return self.instruction
        from instructor_core.model.prompts import resolve_prompt

        return resolve_prompt(self.encoder.prompts, self.prompt_name or slot)

    # ------------------------------------------------------------------ serialization
    def _init_parameters(self) -> dict[str, Any]:
        if self.model is None and self.server_url is None:
            raise InputError(
                f"{self._name} built from encoder= cannot be saved: pass model= instead (embedders of the same "
                "model and options share one loaded model in a process)"
            )
        opts = self.options
        return {
            "model": self.model,
            "instruction": self.instruction,
            "prompt_name": self.prompt_name,
            "device": self.device,
            "token": self.token,
            "batch_size": self.batch_size,
            "progress_bar": self.progress_bar,
            "normalize_embeddings": self.normalize_embeddings,
            "truncate_dim": self.truncate_dim,
            "precision": self.precision,
            "quantization_ranges": self.quantization_ranges,
            "dtype": opts.dtype,
            "max_length": opts.max_length,
            "backend": opts.backend,
            "backend_cache_dir": opts.backend_cache_dir,
            "revision": opts.revision,
            "trust_remote_code": opts.trust_remote_code,
            "cache_dir": opts.cache_dir,
            "instructor": opts.instructor,
            "prompts": None if opts.prompts is None else opts.prompt_dict(),
            "default_prompt_name": opts.default_prompt_name,
            "attn_implementation": opts.attn_implementation,
            "server_url": self.server_url,
            "api_key": self.api_key,
        }

    def to_dict(self) -> dict[str, Any]:
        """The component as a dictionary (what ``Pipeline.dumps`` writes); a token given as a value
        (``Secret.from_token``) is refused by Haystack, an environment variable's name is kept.

        Raises:
            InputError: The component was built from ``encoder=`` (no model to name).
        """
        return default_to_dict(self, **self._init_parameters())

    def _get_telemetry_data(self) -> dict[str, Any]:
        """What Haystack's usage telemetry (when enabled) reports for this component: the model only."""
        return {"model": self.model}


def _check_server(where: str, url: object, model: object, encoder: object, options: LoadOptions) -> None:
    """``server_url`` alone (no model, encoder or loading option: the server loaded its model), an http(s) URL."""
    if model is not None or encoder is not None:
        raise InputError(f"{where}: pass server_url (a running instructor serve), model or encoder: one of them")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise InputError(f"{where}: server_url must be an http:// or https:// URL, got {url!r}")
    options.for_encoder(f"{where}(server_url=...)")


def _ranges(ranges: list[list[float]] | None, where: str) -> np.ndarray | None:
    """``quantization_ranges`` (``[[min, ...], [max, ...]]``) as the two calibration rows the core's
    quantization reads its ranges from."""
    if ranges is None:
        return None
    try:
        array = np.asarray(ranges, dtype=np.float32)
    except (TypeError, ValueError):
        raise InputTypeError(f"{where}: quantization_ranges must be two lists of floats (minimums, maximums)") from None
    if array.ndim != 2 or array.shape[0] != 2:
        raise InputError(
            f"{where}: quantization_ranges must have shape (2, dimension): minimums, then maximums; got {array.shape}"
        )
    return array
