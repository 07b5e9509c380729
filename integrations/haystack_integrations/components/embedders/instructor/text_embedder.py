"""InstructorTextEmbedder: a query's vector under the query instruction, for an embedding retriever."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

from haystack import component, default_from_dict
from haystack.utils import ComponentDevice, Secret

from instructor_core import InstructorEncoder
from instructor_core.errors import InputError, InputTypeError
from instructor_core.model.backends import Backend
from instructor_core.model.quantization import Precision

from .dense import DEFAULT_API_KEY, DEFAULT_TOKEN, DenseSettings

__all__ = ["InstructorTextEmbedder"]


@component
class InstructorTextEmbedder(DenseSettings):
    """Embeds a string (a query) with the query instruction; the instruction stays out of pooling.

    Follows Haystack's ``SentenceTransformersTextEmbedder`` (``run(text) -> {"embedding": [...]}``,
    ``run_async``, ``warm_up``, ``to_dict``/``from_dict``), with the instruction in place of ``prefix``:
    INSTRUCTOR checkpoints leave the instruction's tokens out of the mean, which a ``prefix`` cannot.

    Usage example:

    ```python
    from haystack_integrations.components.embedders.instructor import InstructorTextEmbedder

    embedder = InstructorTextEmbedder(
        model="hkunlp/instructor-large",
        instruction="Represent the scientific claim for retrieving supporting abstracts: ",
    )
    embedder.run("Vitamin D lowers the risk of fractures.")["embedding"]  # [0.0123, -0.0456, ...]
    ```

    Args:
        model: A hub id ("hkunlp/instructor-large") or a local folder; or leave it None and pass
            ``encoder``. Embedders of the same model and loading options share one loaded model in a
            process (also after a pipeline is loaded from YAML).
        encoder: An :class:`~instructor_core.InstructorEncoder` already loaded, shared as it is (not
            saved by ``to_dict``: a component built this way cannot be serialized).
        instruction: The query instruction; None takes the model's own (its ``query`` prompt, or the
            INSTRUCTOR retrieval instruction), "" means none.
        prompt_name: One of the model's named prompts (``encoder.prompts``) in place of ``instruction``.
        device: Where the model runs (Haystack's ``ComponentDevice``); None: the best available.
        token: A Hugging Face token for gated or private models; by default ``HF_API_TOKEN`` or
            ``HF_TOKEN`` where set.
        batch_size: Texts per forward pass.
        progress_bar: Show a progress bar (off by default: one query is one batch).
        normalize_embeddings: L2-normalize the vector (on by default, as the core).
        truncate_dim: Keep the first N dimensions (Matryoshka models), then normalize.
        precision: "float32", "int8", "uint8", "binary" or "ubinary" (quantized values as numbers).
        quantization_ranges: ``[[min, ...], [max, ...]]`` per dimension, needed for "int8" and "uint8"
            (one text cannot calibrate its own range).
        dtype: The weights' dtype: "float32" (None, exact), "bfloat16" or "float16".
        max_length: Token limit for instruction + text; None: the model's.
        backend: "torch" (exact), "onnx" or "onnx-int8" (the fast CPU path; the ``onnx`` extra).
        backend_cache_dir: Where ONNX exports are cached.
        revision: Hub revision (branch, tag or commit).
        trust_remote_code: Allow model code from the folder.
        cache_dir: Where hub downloads are cached (sentence-transformers' ``cache_folder``).
        instructor: Whether the model is an INSTRUCTOR checkpoint; None detects it.
        prompts: Named prompts added to (or overriding) the folder's.
        default_prompt_name: The prompt a plain encode uses (see :class:`~instructor_core.LoadOptions`).
        attn_implementation: The transformer's attention implementation ("eager", "sdpa", ...).
        server_url: The URL of a running ``instructor serve``: embed there instead of loading a model
            (no ``model``, ``encoder`` or loading option with it); the instruction travels with each request.
        api_key: The server's key (default: the ``INSTRUCTOR_API_KEY`` environment variable).
    """

    _name = "InstructorTextEmbedder"

    def __init__(
        self,
        *,
        model: str | os.PathLike[str] | None = None,
        encoder: InstructorEncoder | None = None,
        instruction: str | None = None,
        prompt_name: str | None = None,
        device: ComponentDevice | None = None,
        token: Secret | None = DEFAULT_TOKEN,
        batch_size: int = 32,
        progress_bar: bool = False,
        normalize_embeddings: bool = True,
        truncate_dim: int | None = None,
        precision: Precision = "float32",
        quantization_ranges: list[list[float]] | None = None,
        dtype: str | None = None,
        max_length: int | None = None,
        backend: Backend = "torch",
        backend_cache_dir: str | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
        cache_dir: str | None = None,
        instructor: bool | None = None,
        prompts: Mapping[str, str] | None = None,
        default_prompt_name: str | None = None,
        attn_implementation: str | None = None,
        server_url: str | None = None,
        api_key: Secret | None = DEFAULT_API_KEY,
    ) -> None:
        options = self._load_options(
            device=device, dtype=dtype, max_length=max_length, backend=backend, backend_cache_dir=backend_cache_dir,
            revision=revision, trust_remote_code=trust_remote_code, cache_dir=cache_dir, instructor=instructor,
            prompts=prompts, default_prompt_name=default_prompt_name, attn_implementation=attn_implementation,
        )  # fmt: skip
        self._setup(
            model=model, encoder=encoder, instruction=instruction, prompt_name=prompt_name, device=device,
            token=token, batch_size=batch_size, progress_bar=progress_bar, normalize_embeddings=normalize_embeddings,
            truncate_dim=truncate_dim, precision=precision, quantization_ranges=quantization_ranges, options=options,
            server_url=server_url, api_key=api_key,
        )  # fmt: skip
        if precision in ("int8", "uint8") and quantization_ranges is None:
            raise InputError(
                f"InstructorTextEmbedder: precision {precision!r} needs quantization_ranges (minimums and maximums "
                "per dimension, from a sample of embeddings): one text cannot calibrate its own range"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstructorTextEmbedder:
        """The component ``to_dict`` described."""
        return default_from_dict(cls, data)

    @component.output_types(embedding=list[float])
    def run(self, text: str) -> dict[str, Any]:
        """Embed one string under the query instruction.

        Args:
            text: The query.

        Returns:
            ``{"embedding": [float, ...]}``.

        Raises:
            TypeError: ``text`` is not a str (a list of Documents goes to InstructorDocumentEmbedder).
        """
        if not isinstance(text, str):
            raise InputTypeError(
                f"InstructorTextEmbedder.run: text must be a str, got {type(text).__name__}; "
                "embed Documents with InstructorDocumentEmbedder"
            )
        (embedding,) = self._encode([(self._instruction("query"), text)])
        return {"embedding": embedding}

    @component.output_types(embedding=list[float])
    async def run_async(self, text: str) -> dict[str, Any]:
        """:meth:`run` in a worker thread, so the event loop keeps running while the model works."""
        return await asyncio.to_thread(self.run, text)
