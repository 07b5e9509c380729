"""Inference backends for the transformer part of an encoder.

``"torch"`` (the default) runs the Hugging Face model in PyTorch and is exact. ``"onnx"`` runs an
ONNX export of the same weights in ONNX Runtime (float32, equal to torch to float precision);
``"onnx-int8"`` additionally quantizes the weight matrices to int8 (dynamic quantization: int8
weights per output channel, activations quantized per tensor at run time), the fast CPU path. Only
the transformer moves: tokenization, instruction masking, pooling, Dense layers and normalization
stay in torch with the same semantics. ONNX backends need the ``onnx`` extra:
``pip install -e ".[onnx]"`` from a checkout.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["BACKENDS", "Backend"]

Backend = Literal["torch", "onnx", "onnx-int8"]
BACKENDS: tuple[str, ...] = ("torch", "onnx", "onnx-int8")
