"""Quantized embeddings, as sentence-transformers makes them (``encode(..., precision=...)``).

- ``int8`` / ``uint8``: each dimension cut into 256 buckets between its minimum and maximum over the
  calibration embeddings (the embeddings themselves where none are given); ``int8`` is ``uint8 - 128``.
- ``binary`` / ``ubinary``: one bit a dimension (``> 0``), packed 8 to a byte; ``binary`` is
  ``ubinary - 128`` as int8.

On the same float embeddings the results equal ``sentence_transformers.quantization.quantize_embeddings``
value for value (the same float32 ranges, ``floor``, ``clip`` and ``packbits``). An encode with
``precision=...`` quantizes this package's float vectors, which agree with sentence-transformers' to
about 1e-7, not bit for bit (other kernels and batch shapes): a value on a bucket's edge (or a sign
at 0) may land one bucket (one bit) over. The documented tolerance: at most one bucket or bit, on at
most 0.1% of the values (all-MiniLM-L6-v2, 200 texts: 10 of 76,800 int8 values, 0 bits).
"""

from __future__ import annotations

from typing import Literal, cast

import numpy as np

from instructor_core.errors import InstructorError

__all__ = ["PRECISIONS", "Precision", "PrecisionError", "quantize_embeddings"]

Precision = Literal["float32", "int8", "uint8", "binary", "ubinary"]
PRECISIONS: tuple[str, ...] = ("float32", "int8", "uint8", "binary", "ubinary")


class PrecisionError(InstructorError, ValueError):
    """A precision this package does not make, or int8 ranges that cannot be computed."""


def check_precision(precision: object) -> Precision:
    """``precision`` if it is one of :data:`PRECISIONS`.

    Raises:
        PrecisionError: Naming it and the known ones.
    """
    if precision not in PRECISIONS:
        raise PrecisionError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return cast(Precision, precision)


def _ranges(embeddings: np.ndarray, precision: str, calibration: np.ndarray | None) -> np.ndarray:
    if calibration is None:
        if embeddings.ndim == 1 or embeddings.shape[0] == 1:
            raise PrecisionError(
                f"cannot compute {precision} ranges from a single embedding: pass calibration_embeddings "
                "(a representative set of embeddings) or ranges"
            )
        calibration = embeddings
    return np.vstack((np.min(calibration, axis=0), np.max(calibration, axis=0)))


def quantize_embeddings(
    embeddings: np.ndarray,
    precision: Precision,
    *,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
) -> np.ndarray:
    """Quantize float ``(n, dim)`` embeddings to ``precision``.

    Args:
        embeddings: Float embeddings.
        precision: "float32", "int8", "uint8", "binary" or "ubinary".
        ranges: ``(2, dim)`` per-dimension minimum and maximum for int8/uint8; None computes them.
        calibration_embeddings: Embeddings to compute the int8/uint8 ranges from (sentence-transformers
            recommends a representative set); None uses ``embeddings`` themselves.

    Returns:
        float32 ``(n, dim)``; int8/uint8 ``(n, dim)``; binary (int8) / ubinary (uint8) ``(n, ceil(dim / 8))``.

    Raises:
        PrecisionError: An unknown precision, or int8 ranges from a single embedding without calibration.
    """
    precision = check_precision(precision)
    array = np.asarray(embeddings)
    if array.dtype in (np.int8, np.uint8):
        raise PrecisionError("embeddings to quantize must be floats, not int8 or uint8")
    if array.ndim == 2 and array.shape[0] == 0:
        width = array.shape[1] if precision.endswith("int8") else (array.shape[1] + 7) // 8
        return np.zeros((0, width), dtype=np.uint8 if precision.startswith("u") else np.int8)
    if precision == "float32":
        return array.astype(np.float32)
    if precision.endswith("int8"):
        limits = _ranges(array, precision, calibration_embeddings) if ranges is None else np.asarray(ranges)
        limits = limits.astype(np.float32, copy=False)
        starts = limits[0, :]
        steps = (limits[1, :] - starts) / 255
        steps = np.where(steps == 0, 1, steps)
        buckets = np.clip(np.floor((array - starts) / steps), 0, 255)
        return buckets.astype(np.uint8) if precision == "uint8" else (buckets - 128).astype(np.int8)
    packed = np.packbits(array > 0, axis=-1)
    return packed if precision == "ubinary" else (packed - 128).astype(np.int8)
