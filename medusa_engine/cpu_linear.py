"""CPU matmuls with each weight laid out once for decoding's few-row calls.

On x86 CPUs, PyTorch's float32 `F.linear` re-lays-out the weight for a GEMM on every call of 2-64 rows,
and its one-row matrix-vector product streams the weight slower than memory allows. `pack_linears`
gives every nn.Linear a copy of its weight laid out for inference calls (outside autograd):

- "row kernel" (x86 with AVX2 + FMA and a C++ compiler): 16-column panels read by cpu_rows.cpp, built
  once per machine with torch's extension builder (about 15 s; cached under TORCH_EXTENSIONS_DIR or
  ~/.cache/torch_extensions). Each row's result is bit-for-bit the same whatever the number of rows, so a
  tree verify and a one-token step compute each row identically. Measured on the project's 2-core CPU
  (all 211 linears of SmolLM2-135M, random weights from memory, 1 thread, medians): 1 row 27 ms, 5 rows
  30, 9 rows 43, 17 rows 62; through oneDNN-packed weights 38 / 55 / 67 / 97, `F.linear` 37 / 85 / 100 / 122.
- "oneDNN" (where the kernel cannot be built, or MEDUSA_LENS_KERNEL=0): a oneDNN-reordered copy for
  multi-row calls and a transposed contiguous copy for one-row calls (`x @ W^T` in that layout).

Both lanes get the same layout: a vanilla step is one-row calls, a tree verify multi-row ones. Training and
any weight changed after packing keep the plain path; the copy costs the weight's memory once more
(twice for "oneDNN").

`argmax` is greedy decoding's argmax over logit rows, by cpu_argmax.cpp (built with the row kernel) on
float32 CPU tensors: torch's CPU argmax is a scalar scan (~0.12 ms per 49,152-wide row here); the kernel
was 3-4x faster for 1 and 5 rows (measured side by side), same answer.

This is the only place that touches torch's mkldnn ops and the C++ kernels.
"""
from __future__ import annotations

import functools
import logging
import os
import platform
from pathlib import Path
from types import MethodType

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

KERNEL_SOURCES = (Path(__file__).with_name("cpu_rows.cpp"), Path(__file__).with_name("cpu_argmax.cpp"))
PANEL = 16  # output columns per panel (cpu_rows.cpp's kCols)


def can_pack(model: nn.Module) -> bool:
    """True where packing applies: float32 weights on the CPU, and the row kernel or oneDNN to run them."""
    p = next(model.parameters(), None)
    return (p is not None and p.device.type == "cpu" and p.dtype == torch.float32
            and (row_kernel() is not None or torch.backends.mkldnn.is_available()))


@functools.cache
def _built_kernel():
    """Build (or load the cached build of) the C++ kernels; the row op, or None with the reason logged."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        log.info("row kernel: not an x86-64 CPU")
        return None
    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        log.info("row kernel: this CPU lacks AVX2")
        return None
    from torch.utils.cpp_extension import load

    try:
        load(name="medusa_lens_cpu_kernels", sources=[str(src) for src in KERNEL_SOURCES], is_python_module=False,
             extra_cflags=["-O3", "-mavx2", "-mfma"])
    except Exception as err:  # no compiler, no ninja, headers missing: fall back to oneDNN
        log.warning("row kernel: cannot build %s (%s: %s); using oneDNN matmuls",
                    " + ".join(src.name for src in KERNEL_SOURCES),
                    err.__class__.__name__, (str(err).strip().splitlines() or [""])[-1])
        return None
    return torch.ops.medusa_lens.rows_matmul


def row_kernel():
    """The row kernel op (x (M, K), panels) -> (M, N padded to 16), or None where it is unavailable or
    switched off (MEDUSA_LENS_KERNEL=0)."""
    if os.environ.get("MEDUSA_LENS_KERNEL", "1") == "0":
        return None
    return _built_kernel()


def argmax(x: torch.Tensor) -> torch.Tensor:
    """`x.argmax(dim=-1)`; by the C++ kernel for float32 CPU tensors outside autograd where it is built."""
    if (x.device.type != "cpu" or x.dtype != torch.float32 or not x.shape or x.shape[-1] == 0
            or x.requires_grad or row_kernel() is None):
        return x.argmax(dim=-1)
    return torch.ops.medusa_lens.rows_argmax(x.reshape(-1, x.shape[-1]).contiguous()).reshape(x.shape[:-1])


def to_panels(weight: torch.Tensor) -> torch.Tensor:
    """(N, K) -> (ceil(N/16), K, 16) panels, zero-padded past N."""
    n, k = weight.shape
    padded = F.pad(weight, (0, 0, 0, -n % PANEL))  # (N', K)
    return padded.reshape(-1, PANEL, k).transpose(1, 2).contiguous()


def pack_linears(model: nn.Module) -> int:
    """Pack the weight of every nn.Linear in `model` (see module doc); returns how many were packed.
    Packing twice is harmless (the second call repacks)."""
    kernel = row_kernel()
    if kernel is None and not torch.backends.mkldnn.is_available():
        raise RuntimeError("packed matmuls need the row kernel or a torch built with oneDNN")
    count = 0
    for module in model.modules():
        if isinstance(module, nn.Linear):
            weight = module.weight.detach()
            if kernel is not None:
                module._packed = ("row kernel", to_panels(weight), module.weight._version)
            else:
                module._packed = ("oneDNN", (torch.ops.mkldnn._reorder_linear_weight(weight, None),
                                             weight.t().contiguous()), module.weight._version)
            module.forward = MethodType(_packed_forward, module)
            count += 1
    return count


def is_packed(module: nn.Module) -> bool:
    return hasattr(module, "_packed")


def matmul_path(model: nn.Module) -> str:
    """How `model`'s linears run at inference: "row kernel", "oneDNN" or "plain"."""
    for module in model.modules():
        if is_packed(module):
            return module._packed[0]
    return "plain"


def _packed_forward(self: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    kind, layout, version = self._packed
    if torch.is_grad_enabled() or self.weight._version != version or x.dtype != torch.float32:
        return F.linear(x, self.weight, self.bias)
    bias = None if self.bias is None else self.bias.detach()
    if kind == "row kernel":
        rows = x.reshape(-1, x.shape[-1]).contiguous()  # (M, K)
        out = torch.ops.medusa_lens.rows_matmul(rows, layout)[:, :self.out_features]  # (M, N)
        out = out.reshape(*x.shape[:-1], self.out_features)
    elif x.numel() == x.shape[-1]:  # one row
        out = x @ layout[1]
    else:
        return torch.ops.mkldnn._linear_pointwise(x, layout[0], bias, "none", [], "")
    return out if bias is None else out + bias
