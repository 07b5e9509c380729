"""Create or check a Qdrant collection for an InstructorEncoder.

A collection made here is cosine, of the encoder's dimension, with one unnamed vector (the document
instruction's view) or several named vectors, one per instruction (``vectors={"doc": ..., "summary":
...}``). The model name and instructions go into the collection's ``metadata`` (qdrant-client >= 1.16
with a server >= 1.16, or local mode), so a later search can be told only the collection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from qdrant_client import models

from instructor_core.stores import CollectionInfo, check_model, encoder_fingerprint

__all__ = [
    "CollectionLayout",
    "CollectionMismatchError",
    "aensure_collection",
    "aread_layout",
    "check_layout",
    "ensure_collection",
    "layout_from_metadata",
    "read_layout",
]

META_KEY = "instructor"


class CollectionMismatchError(ValueError):
    """An existing collection does not fit the encoder (dimension, distance, vector names, instructions)."""


@dataclass(frozen=True)
class CollectionLayout:
    """How a collection's vectors are made.

    Attributes:
        dimension: Vector length.
        vectors: Named vectors and the document instruction each is made with; empty for one
            unnamed vector made with ``document_instruction``.
        query_instruction: Instruction for queries.
        document_instruction: Instruction for documents (the unnamed vector).
        model: The model name or path, where known.
        fingerprint: The model's content fingerprint, where known.
        created: When the collection was created (ISO 8601, UTC), where known.
    """

    dimension: int
    vectors: Mapping[str, str] = field(default_factory=dict)
    query_instruction: str = ""
    document_instruction: str = ""
    model: str | None = None
    fingerprint: str | None = None
    created: str | None = None

    def to_metadata(self) -> dict[str, Any]:
        return {
            META_KEY: {
                "model": self.model,
                "dimension": self.dimension,
                "query_instruction": self.query_instruction,
                "document_instruction": self.document_instruction,
                "vectors": dict(self.vectors),
                "fingerprint": self.fingerprint,
                "created": self.created,
            }
        }

    def to_info(self, name: str, count: int) -> CollectionInfo:
        """The protocol's :class:`~instructor_core.stores.CollectionInfo` for collection ``name``."""
        return CollectionInfo(
            name=name,
            model=self.model,
            query_instruction=self.query_instruction,
            document_instruction=self.document_instruction,
            dimension=self.dimension,
            count=count,
            fingerprint=self.fingerprint,
            created=self.created,
            vectors=dict(self.vectors),
        )


def _layout_from_info(info: Any) -> CollectionLayout | None:
    return layout_from_metadata(getattr(info.config, "metadata", None))


def layout_from_metadata(metadata: Mapping[str, Any] | None) -> CollectionLayout | None:
    """The layout in collection metadata written by :meth:`CollectionLayout.to_metadata`, or None."""
    stored = (metadata or {}).get(META_KEY)
    if not isinstance(stored, Mapping):
        return None
    return CollectionLayout(
        dimension=int(stored.get("dimension") or 0),
        vectors=dict(stored.get("vectors") or {}),
        query_instruction=str(stored.get("query_instruction") or ""),
        document_instruction=str(stored.get("document_instruction") or ""),
        model=stored.get("model"),
        fingerprint=stored.get("fingerprint"),
        created=stored.get("created"),
    )


def read_layout(client: Any, name: str) -> CollectionLayout | None:
    """The layout stored in a collection's metadata, or None if it has none (not made here)."""
    return _layout_from_info(client.get_collection(name))


def _check_vectors(vectors: Mapping[str, str] | None) -> dict[str, str]:
    if vectors is None:
        return {}
    if not isinstance(vectors, Mapping) or not vectors:
        raise TypeError("vectors must be a non-empty mapping {vector name: document instruction}")
    for key, instruction in vectors.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"vector names must be non-empty str, got {key!r}")
        if not isinstance(instruction, str):
            raise TypeError(f"vectors[{key!r}] (the instruction) must be a str, got {type(instruction).__name__}")
    return dict(vectors)


def ensure_collection(
    client: Any,
    name: str,
    encoder: Any,
    *,
    vectors: Mapping[str, str] | None = None,
    model: str | None = None,
    on_disk: bool = False,
    allow_model_change: bool = False,
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

    Returns:
        The collection's layout.

    Raises:
        CollectionMismatchError: The existing collection has another dimension, distance, vector
            names, model or instructions. Raised before anything is written.
        ModelMismatchError: The encoder's model fingerprint differs from the collection's
            (``instructor_core.stores``; a ``ValueError`` too).
    """
    wanted = _wanted(encoder, vectors, model)
    if not client.collection_exists(name):
        client.create_collection(name, vectors_config=_vectors_config(wanted, on_disk), metadata=wanted.to_metadata())
        return wanted
    return _check_existing(name, client.get_collection(name), wanted, allow_model_change)


def _wanted(encoder: Any, vectors: Mapping[str, str] | None, model: str | None) -> CollectionLayout:
    return CollectionLayout(
        dimension=int(encoder.dimension),
        vectors=_check_vectors(vectors),
        query_instruction=encoder.instructions.query,
        document_instruction=encoder.instructions.document,
        model=model,
        fingerprint=encoder_fingerprint(encoder),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def _vectors_config(wanted: CollectionLayout, on_disk: bool) -> Any:
    params = models.VectorParams(size=wanted.dimension, distance=models.Distance.COSINE, on_disk=on_disk or None)
    return {key: params for key in wanted.vectors} if wanted.vectors else params


def _check_existing(name: str, info: Any, wanted: CollectionLayout, allow_model_change: bool) -> CollectionLayout:
    """The existing collection's layout if it fits ``wanted``; else CollectionMismatchError."""
    named, dimension = dict(wanted.vectors), wanted.dimension
    existing = info.config.params.vectors
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
    stored = _layout_from_info(info)
    if stored is not None:
        return check_layout(name, stored, wanted, allow_model_change=allow_model_change)
    return wanted


def check_layout(
    name: str, stored: CollectionLayout, wanted: CollectionLayout, *, allow_model_change: bool = False
) -> CollectionLayout:
    """The stored layout, if ``wanted`` (the encoder at hand) fits it: same dimension, vector names,
    instructions, model name and model fingerprint. Else an error naming what differs.

    Raises:
        CollectionMismatchError: Another dimension, vector names, instructions or model name.
        ModelMismatchError: Another model fingerprint (unless ``allow_model_change``).
    """
    named, dimension, model = dict(wanted.vectors), wanted.dimension, wanted.model
    if stored.dimension and stored.dimension != dimension:
        raise CollectionMismatchError(
            f"collection {name!r} holds {stored.dimension}-dimensional vectors, the encoder makes {dimension}-"
            "dimensional ones; nothing was written. Use another collection or the model it was made with."
        )
    checks: list[tuple[str, object, object]] = [
        ("query_instruction", stored.query_instruction, wanted.query_instruction)
    ]
    if named or stored.vectors:
        checks.append(("vectors", dict(stored.vectors), named))
    else:
        checks.append(("document_instruction", stored.document_instruction, wanted.document_instruction))
    if stored.model is not None and model is not None and not allow_model_change:
        checks.append(("model", stored.model, model))
    for what, old, new in checks:
        if old != new:
            raise CollectionMismatchError(
                f"collection {name!r} was made with {what}={old!r}, the encoder has {new!r}; "
                "mixing them would make its vectors incomparable. Use that one or a new collection."
            )
    check_model(name, stored.fingerprint, wanted.fingerprint, allow_model_change=allow_model_change)
    return replace(
        stored,
        dimension=dimension,
        vectors=named,
        model=stored.model or model,
        fingerprint=stored.fingerprint or wanted.fingerprint,
    )


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
) -> CollectionLayout:
    """:func:`ensure_collection` for an ``AsyncQdrantClient`` (same checks, same errors)."""
    wanted = _wanted(encoder, vectors, model)
    if not await client.collection_exists(name):
        config = _vectors_config(wanted, on_disk)
        await client.create_collection(name, vectors_config=config, metadata=wanted.to_metadata())
        return wanted
    return _check_existing(name, await client.get_collection(name), wanted, allow_model_change)
