"""CPU matmuls with each weight laid out once for its kind of call.

On x86 CPUs, PyTorch's float32 `F.linear` re-lays-out the weight for a GEMM on every call of 2-64 rows.
Measured on the project's 2-core CPU (SmolLM2-135M, 1 thread): a 4-node tree verify cost 2.1x a
one-token step through `F.linear` and 1.2x with packed weights. `pack_linears` gives every nn.Linear a
oneDNN-reordered copy of its weight for calls of more than one row outside autograd, and a transposed
contiguous copy for one-row calls: `x @ W^T` read in that layout streams the weight faster than
`F.linear`'s matrix-vector product (all linears of one token, weights from memory: 33 against 41 ms,
1 thread). Both lanes get both: a vanilla step is one-row calls, a tree verify multi-row ones.
Training and any weight changed after packing keep the plain path; each copy costs the weight's
memory once more. This is the only place that touches torch's mkldnn ops.
"""
from __future__ import annotations

from types import MethodType

import torch
import torch.nn.functional as F
from torch import nn


def can_pack(model: nn.Module) -> bool:
    """True where packing applies: float32 weights on the CPU and a torch built with oneDNN."""
    p = next(model.parameters(), None)
    return (p is not None and p.device.type == "cpu" and p.dtype == torch.float32
            and torch.backends.mkldnn.is_available())


def pack_linears(model: nn.Module) -> int:
    """Pack the weight of every nn.Linear in `model` (see module doc); returns how many were packed.
    Packing twice is harmless (the second call repacks)."""
    count = 0
    for module in model.modules():
        if isinstance(module, nn.Linear):
            weight = module.weight.detach()
            module._packed = (torch.ops.mkldnn._reorder_linear_weight(weight, None), weight.t().contiguous(),
                              module.weight._version)
            module.forward = MethodType(_packed_forward, module)
            count += 1
    return count


def is_packed(module: nn.Module) -> bool:
    return hasattr(module, "_packed")


def _packed_forward(self: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    packed, transposed, version = self._packed
    if torch.is_grad_enabled() or self.weight._version != version or x.dtype != torch.float32:
        return F.linear(x, self.weight, self.bias)
    bias = None if self.bias is None else self.bias.detach()
    if x.numel() == x.shape[-1]:  # one row
        out = x @ transposed
        return out if bias is None else out + bias
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")
