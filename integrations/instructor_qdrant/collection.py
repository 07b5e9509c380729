"""Create or check a Qdrant collection for an InstructorEncoder.

A collection made here is cosine, of the encoder's dimension, with one unnamed vector (the document
instruction's view) or several named vectors, one per instruction (``vectors={"doc": ..., "summary":
...}``). The model name and instructions go into the collection's ``metadata`` (qdrant-client >= 1.16
with a server >= 1.16, or local mode), so a later search can be told only the collection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qdrant_client import models

from instructor_core.ingest.store_ops import check_layout, check_quantization, layout_for
from instructor_core.ingest.stores import CollectionLayout, CollectionMismatchError, Quantization

from .quantization import client_quantization_config

__all__ = [
    "CollectionLayout",
    "CollectionMismatchError",
    "aensure_collection",
    "aread_layout",
    "check_layout",
    "check_vector_params",
    "ensure_collection",
    "layout_from_metadata",
    "read_layout",
]


def _layout_from_info(info: Any) -> CollectionLayout | None:
    return layout_from_metadata(getattr(info.config, "metadata", None))


def layout_from_metadata(metadata: Mapping[str, Any] | None) -> CollectionLayout | None:
    """The layout in collection metadata written by :meth:`CollectionLayout.to_metadata`, or None."""
    return CollectionLayout.from_metadata(metadata)


def read_layout(client: Any, name: str) -> CollectionLayout | None:
    """The layout stored in a collection's metadata, or None if it has none (not made here)."""
    return _layout_from_info(client.get_collection(name))


def ensure_collection(
    client: Any,
    name: str,
    encoder: Any,
    *,
    vectors: Mapping[str, str] | None = None,
    model: str | None = None,
    on_disk: bool = False,
    allow_model_change: bool = False,
    quantization: Quantization | None = None,
) -> CollectionLayout:
    """Create a cosine collection for ``encoder``, or check that an existing one fits it.

    Args:
        client: A ``QdrantClient`` (``":memory:"``, ``path=`` or ``url=``).
        name: Collection name.
        encoder: An InstructorEncoder (its ``dimension`` and ``instructions`` are used).
        vectors: Named vectors ``{name: document instruction}`` so one point holds several
            instruction views; None for one unnamed vector with the encoder's document instruction.
        model: The model's name or path, stored in the collection metadata for later searches.
        on_disk: Keep the vectors on disk (new collections only).
        allow_model_change: Accept an encoder whose model fingerprint (or model name) differs from
            the one the collection records, on purpose.
        quantization: Keep a new collection's vectors quantized too, ``"int8"`` (scalar) or
            ``"binary"``, rescored on the float vectors at search (see
            :mod:`instructor_qdrant.quantization`); None: ``"none"`` for a new collection, whatever
            an existing one has. Another than an existing collection's is refused.

    Returns:
        The collection's layout.

    Raises:
        CollectionMismatchError: The existing collection has another dimension, distance, vector
            names, model, instructions or quantization. Raised before anything is written.
        ModelMismatchError: The encoder's model fingerprint differs from the collection's
            (``instructor_core.ingest.stores``; a ``ValueError`` too).
    """
    wanted = layout_for(encoder, model, vectors, quantization or "none")
    if not client.collection_exists(name):
        client.create_collection(name, **create_args(wanted, on_disk))
        return wanted
    return _check_existing(name, client.get_collection(name), wanted, allow_model_change, quantization)


def create_args(wanted: CollectionLayout, on_disk: bool) -> dict[str, Any]:
    """``create_collection``'s arguments for a layout: vectors, quantization, metadata."""
    return {
        "vectors_config": vectors_config(wanted, on_disk),
        "quantization_config": client_quantization_config(wanted.quantization),
        "metadata": wanted.to_metadata(),
    }


def vectors_config(wanted: CollectionLayout, on_disk: bool) -> Any:
    params = models.VectorParams(size=wanted.dimension, distance=models.Distance.COSINE, on_disk=on_disk or None)
    return {key: params for key in wanted.vectors} if wanted.vectors else params


def check_vector_params(name: str, existing: Any, wanted: CollectionLayout) -> None:
    """Refuse a server collection whose vectors (``info.config.params.vectors``) cannot hold
    ``wanted``'s: other names, dimension or distance."""
    named, dimension = dict(wanted.vectors), wanted.dimension
    if isinstance(existing, Mapping):
        have = dict(existing)
        if not named:
            raise CollectionMismatchError(
                f"collection {name!r} has named vectors {sorted(have)}; pass vectors={{name: instruction}}"
            )
        if set(have) != set(named):
            raise CollectionMismatchError(f"collection {name!r} has vectors {sorted(have)}, asked for {sorted(named)}")
    else:
        if named:
            raise CollectionMismatchError(f"collection {name!r} has one unnamed vector, asked for {sorted(named)}")
        have = {"": existing}
    for key, params in have.items():
        label = f"vector {key!r} of collection {name!r}" if key else f"collection {name!r}"
        if params.size != dimension:
            raise CollectionMismatchError(
                f"{label} holds {params.size}-dimensional vectors, the encoder makes {dimension}-dimensional "
                "ones; nothing was written. Use another collection or the model it was made with."
            )
        if params.distance != models.Distance.COSINE:
            raise CollectionMismatchError(
                f"{label} uses {params.distance.value} distance; instructor collections are Cosine"
            )


def _check_existing(
    name: str, info: Any, wanted: CollectionLayout, allow_model_change: bool, quantization: Quantization | None = None
) -> CollectionLayout:
    """The existing collection's layout if it fits ``wanted``; else CollectionMismatchError."""
    check_vector_params(name, info.config.params.vectors, wanted)
    stored = _layout_from_info(info)
    if stored is not None:
        check_quantization(name, stored, quantization)
        return check_layout(name, stored, wanted, allow_model_change=allow_model_change)
    return wanted


async def aread_layout(client: Any, name: str) -> CollectionLayout | None:
    """:func:`read_layout` for an ``AsyncQdrantClient``."""
    return _layout_from_info(await client.get_collection(name))


async def aensure_collection(
    client: Any,
    name: str,
    encoder: Any,
    *,
    vectors: Mapping[str, str] | None = None,
    model: str | None = None,
    on_disk: bool = False,
    allow_model_change: bool = False,
    quantization: Quantization | None = None,
) -> CollectionLayout:
    """:func:`ensure_collection` for an ``AsyncQdrantClient`` (same checks, same errors)."""
    wanted = layout_for(encoder, model, vectors, quantization or "none")
    if not await client.collection_exists(name):
        await client.create_collection(name, **create_args(wanted, on_disk))
        return wanted
    return _check_existing(name, await client.get_collection(name), wanted, allow_model_change, quantization)
