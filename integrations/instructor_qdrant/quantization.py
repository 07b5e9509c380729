"""Quantized Qdrant collections: the dense vectors kept as int8 (scalar) or 1 bit per dimension
(binary) beside the float originals, which a search rescores.

A collection's ``CollectionLayout.quantization`` (``"none"``, ``"int8"``, ``"binary"``) picks the
configuration at creation: Qdrant's scalar int8 quantization (4x smaller, kept in RAM) or binary
quantization (32x smaller). Every search of such a collection asks Qdrant to rescore: the
quantized vectors pick ``oversampling * k`` candidates, the float vectors (on disk) rank them, so the
scores stay cosine similarities. The same settings serve the server (qdrant-client ``models``) and
the embedded Qdrant Edge store (``qdrant_edge``).

Qdrant builds the quantized vectors when it optimizes a segment: a server does that in the
background; the Edge store optimizes a quantized collection's shard once its ingest is written.
qdrant-client's local mode (``QdrantClient(path=)``, ``":memory:"``) records nothing of it and
always searches the float vectors exactly.
"""

from __future__ import annotations

from typing import Any

from instructor_core.errors import InputError
from instructor_core.ingest.stores import Quantization

__all__ = [
    "OVERSAMPLING",
    "QUANTIZATIONS",
    "QUANTIZED_FEATURES",
    "check_quantization",
    "client_quantization_config",
    "client_search_params",
    "edge_quantization_config",
    "edge_search_params",
]

#: The modes a collection may be made with.
QUANTIZATIONS: tuple[Quantization, ...] = ("none", "int8", "binary")
#: Candidates fetched with the quantized vectors per hit wanted, then rescored on the float vectors.
OVERSAMPLING: dict[str, float] = {"int8": 2.0, "binary": 3.0}
#: The layout features (``CollectionLayout.features``) a Qdrant store holds.
QUANTIZED_FEATURES = frozenset({"int8-quantized", "binary-quantized"})


def check_quantization(value: object) -> Quantization:
    """``value`` if it names a quantization mode (``"none"``, ``"int8"``, ``"binary"``).

    Raises:
        ValueError: Naming the value and the modes.
    """
    if value not in QUANTIZATIONS:
        raise InputError(f"quantization {value!r}: expected one of {', '.join(QUANTIZATIONS)}")
    return value


def client_quantization_config(quantization: Quantization) -> Any:
    """The ``quantization_config`` of a collection made with qdrant-client (None for ``"none"``)."""
    from qdrant_client import models

    if check_quantization(quantization) == "int8":
        return models.ScalarQuantization(
            scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, always_ram=True)
        )
    if quantization == "binary":
        return models.BinaryQuantization(binary=models.BinaryQuantizationConfig(always_ram=True))
    return None


def client_search_params(quantization: Quantization) -> Any:
    """qdrant-client ``search_params`` that rescore a quantized collection's candidates on the float
    vectors (None for ``"none"``)."""
    from qdrant_client import models

    if check_quantization(quantization) == "none":
        return None
    return models.SearchParams(
        quantization=models.QuantizationSearchParams(rescore=True, oversampling=OVERSAMPLING[quantization])
    )


def edge_quantization_config(edge: Any, quantization: Quantization) -> Any:
    """The ``quantization_config`` of a Qdrant Edge shard (``edge``: the ``qdrant_edge`` module)."""
    if check_quantization(quantization) == "int8":
        return edge.ScalarQuantizationConfig(type=edge.ScalarType.Int8, always_ram=True)
    if quantization == "binary":
        return edge.BinaryQuantizationConfig(always_ram=True)
    return None


def edge_search_params(edge: Any, quantization: Quantization) -> Any:
    """Qdrant Edge ``SearchParams`` that rescore on the float vectors (None for ``"none"``)."""
    if check_quantization(quantization) == "none":
        return None
    return edge.SearchParams(
        quantization=edge.QuantizationSearchParams(rescore=True, oversampling=OVERSAMPLING[quantization])
    )
