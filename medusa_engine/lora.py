"""LoRA adapters for MEDUSA-2: a small, shippable delta on the backbone's linear layers.

Training wraps target Linear layers (`add_lora`); the teacher is the same network with the adapters
switched off (`lora_enabled(model, False)`). Shipping saves only the adapter matrices; loading merges
them into the plain weights (W += alpha/r * B @ A), so the tuned backbone runs at the original cost.
"""
from __future__ import annotations

import hashlib
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

DELTA_FILE = "backbone_delta.safetensors"
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base, self.scale, self.enabled = base, alpha / rank, True
        self.lora_A = nn.Parameter(torch.randn(rank, base.in_features) / base.in_features**0.5)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))  # zero: starts as the base model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        return out + self.scale * (x @ self.lora_A.T @ self.lora_B.T) if self.enabled else out


def delta_digest(heads_dir: str | Path) -> str:
    """sha256 (first 16 hex digits) of a set's backbone delta file. Caches of a tuned backbone's outputs
    are named by it, not by the set's folder name, which a retrained set may reuse."""
    with open(Path(heads_dir) / DELTA_FILE, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()[:16]


def add_lora(model: nn.Module, rank: int = 8, alpha: float = 16.0, targets=TARGETS) -> list[str]:
    """Wrap every Linear whose name ends with a target; returns the wrapped module names."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.split(".")[-1] in targets]
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRALinear(getattr(parent, child), rank, alpha))
    return names


@contextmanager
def lora_enabled(model: nn.Module, enabled: bool):
    mods = [m for m in model.modules() if isinstance(m, LoRALinear)]
    before = [m.enabled for m in mods]
    for m in mods:
        m.enabled = enabled
    try:
        yield
    finally:
        for m, b in zip(mods, before):
            m.enabled = b


def lora_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {f"{n}.{p}": getattr(m, p).detach().float().contiguous()
            for n, m in model.named_modules() if isinstance(m, LoRALinear) for p in ("lora_A", "lora_B")}


def load_lora(model: nn.Module, delta: dict[str, torch.Tensor]) -> int:
    """Set a wrapped model's adapters from a saved delta (an earlier sitting's); returns layers set.
    Every adapter must be in `delta` with its shape: a partial or misfit delta is an error."""
    params = {n: p for n, p in model.named_parameters() if n.endswith((".lora_A", ".lora_B"))}
    if set(delta) != set(lora_state(model)):
        raise ValueError("the backbone delta does not name this model's adapters (other layers or model)")
    with torch.no_grad():
        for key, param in params.items():
            if delta[key].shape != param.shape:
                raise ValueError(f"backbone delta {key} is {tuple(delta[key].shape)}, the adapter "
                                 f"{tuple(param.shape)} (another LoRA rank?)")
            param.copy_(delta[key])
    return len(params) // 2


def merge_delta(model: nn.Module, delta: dict[str, torch.Tensor], alpha: float) -> int:
    """Add alpha/r * B @ A into each named Linear of a plain (unwrapped) model; returns layers merged."""
    merged = 0
    with torch.no_grad():
        for key in [k for k in delta if k.endswith(".lora_A")]:
            name = key[: -len(".lora_A")]
            a, b = delta[key], delta[f"{name}.lora_B"]
            layer = model.get_submodule(name)
            if not isinstance(layer, nn.Linear) or layer.weight.shape != (b.shape[0], a.shape[1]):
                raise ValueError(f"backbone delta does not fit layer {name}")
            layer.weight += (alpha / a.shape[0]) * (b.float() @ a.float()).to(layer.weight.dtype)
            merged += 1
    return merged
