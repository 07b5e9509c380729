"""oneDNN-packed Linear layers for float32 CPU inference (the default path's main gain).

PyTorch runs a float32 ``nn.Linear`` on the CPU through the BLAS it was built with (MKL); oneDNN,
also inside every CPU build of torch, can pre-pack the weight once into its blocked layout and run
the product with its own kernels, optionally with GELU fused into the same pass (the op inductor's
CPU freezing uses), with the same float32 arithmetic (hidden states within 1e-5). For the measured
gain, see docs/performance.md.

:class:`PackedLinear` is an ``nn.Linear`` sharing the original Parameters (same state dict, same
training behaviour): with gradients enabled, on another device or dtype, it is a plain Linear. The
packed copy is rebuilt when the weight changes (its version counter moves), so a refit in place
is never served stale weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["PackedLinear", "onednn_available", "pack_linears"]


def onednn_available() -> bool:
    """Whether this torch build has the oneDNN packed-linear ops."""
    ops = getattr(torch.ops, "mkldnn", None)
    try:
        return (
            torch.backends.mkldnn.is_available()
            and hasattr(ops, "_linear_pointwise")
            and hasattr(ops, "_reorder_linear_weight")
        )
    except (AttributeError, RuntimeError):  # pragma: no cover - builds without the ops
        return False


class PackedLinear(torch.nn.Linear):
    """``activation(x @ W.T + b)`` with a oneDNN-packed weight for float32 CPU inference.

    Args:
        linear: The layer to wrap; its Parameters are shared, not copied.
        gelu: Apply exact (erf) GELU after the product, fused into the same kernel.
    """

    def __init__(self, linear: torch.nn.Linear, gelu: bool = False) -> None:
        torch.nn.Module.__init__(self)
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        self.weight = linear.weight
        self.bias = linear.bias
        self.gelu = gelu
        self._packed: torch.Tensor | None = None
        self._packed_key: tuple[int, int] | None = None

    def _packed_weight(self) -> torch.Tensor:
        key = (self.weight.data_ptr(), self.weight._version)
        if self._packed is None or self._packed_key != key:
            with torch.inference_mode():
                self._packed = torch.ops.mkldnn._reorder_linear_weight(self.weight.detach(), None)
            self._packed_key = key
        return self._packed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer (packed kernel when inference on float32 CPU tensors, else plain)."""
        fast = (
            not torch.is_grad_enabled()
            and x.device.type == "cpu"
            and x.dtype == torch.float32
            and self.weight.dtype == torch.float32
            and self.weight.device.type == "cpu"
        )
        if not fast:
            y = F.linear(x, self.weight, self.bias)
            return F.gelu(y) if self.gelu else y
        shape = x.shape
        bias = None if self.bias is None else self.bias.detach()
        y = torch.ops.mkldnn._linear_pointwise(
            x.reshape(-1, shape[-1]), self._packed_weight(), bias, "gelu" if self.gelu else "none", [None], "none"
        )
        return y.view(*shape[:-1], self.out_features)

    def __getstate__(self) -> dict:
        # The packed weight is an opaque oneDNN tensor that cannot be copied or pickled; a copy
        # (copy.deepcopy, torch.save of the module) repacks from its own weight on first use.
        state = self.__dict__.copy()
        state["_packed"] = None
        state["_packed_key"] = None
        return state

    def extra_repr(self) -> str:
        return super().extra_repr() + (", gelu=True" if self.gelu else "")


def pack_linears(model: torch.nn.Module) -> int:
    """Swap every ``nn.Linear`` in ``model`` for a :class:`PackedLinear` in place.

    Where a BERT-style block applies exact GELU right after its Linear (a module holding ``dense``
    and ``intermediate_act_fn``, as BERT, RoBERTa, MPNet and friends do), the GELU is fused and the
    separate activation becomes an identity. Returns the number of layers swapped (0 when oneDNN is
    not available, leaving the model untouched).
    """
    if not onednn_available():
        return 0
    count = 0
    for module in list(model.modules()):
        fuse_gelu = _is_exact_gelu(getattr(module, "intermediate_act_fn", None)) and isinstance(
            getattr(module, "dense", None), torch.nn.Linear
        )
        for name, child in list(module.named_children()):
            if type(child) is torch.nn.Linear:
                gelu = fuse_gelu and name == "dense"
                setattr(module, name, PackedLinear(child, gelu=gelu))
                count += 1
        dense = getattr(module, "dense", None)
        if fuse_gelu and isinstance(dense, PackedLinear) and dense.gelu:
            module.intermediate_act_fn = torch.nn.Identity()
    return count


def _is_exact_gelu(function: object) -> bool:
    """True for transformers' exact GELU (``ACT2FN["gelu"]``) and torch's default GELU."""
    if isinstance(function, torch.nn.GELU):
        return function.approximate == "none"
    if type(function).__name__ == "GELUActivation":
        act = getattr(function, "act", None)
        return act is F.gelu or (isinstance(act, torch.nn.GELU) and act.approximate == "none")
    return False
