"""How a lane runs the decoder stack: the eager backend or the fast one.

- "eager": a DynamicCache that grows each step, every step at its own shape (the reference).
- "static": a StaticCache preallocated for the run (rounded up to CACHE_BUCKET) and fixed-shape
  steps: a step of L nodes is padded to the next size in STEP_BUCKETS. Padded rows sit after the
  real ones, see the prefix and themselves only, and no real row sees them, so real rows compute
  exactly what an eager step computes; their cache slots are overwritten by the compaction.
- "compiled": "static" with each (model, step bucket, cache length) forward captured once by
  `torch.compile` (CUDA graphs through mode="reduce-overhead" on CUDA) and reused across runs.

`choose_backend("auto", device)` picks "compiled" on CUDA and "eager" on CPU, where compiling was
measured not to pay (see README, fast path). Both lanes of a race always use the same backend.
"""
from __future__ import annotations

import contextlib
import os
import threading

import torch

from .backbone import Backbone, forward_hidden, new_cache
from .cache import keep_slots, new_static_cache

BACKENDS = ("eager", "static", "compiled")
STEP_BUCKETS = (1, 4, 8, 16, 32, 64)
CACHE_BUCKET = 256


def choose_backend(choice: str | None, device: torch.device) -> str:
    """Resolve a user's choice ("auto", None or one of BACKENDS) for `device`. "auto" compiles on
    CUDA unless compiling is not allowed there (ZeroGPU Spaces), and stays eager on CPU."""
    if choice in (None, "", "auto"):
        zero_gpu = os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "true")
        return "compiled" if device.type == "cuda" and not zero_gpu else "eager"
    if choice not in BACKENDS:
        raise ValueError(f"backend must be 'auto' or one of {BACKENDS}, got {choice!r}")
    return choice


def step_bucket(size: int) -> int:
    """The fixed step shape that holds `size` nodes."""
    for bucket in STEP_BUCKETS:
        if size <= bucket:
            return bucket
    raise ValueError(f"a step of {size} nodes exceeds the largest bucket {STEP_BUCKETS[-1]}")


def attention_backends(device: torch.device):
    """On CUDA, SDPA without its cuDNN backend: with a custom mask cuDNN builds a new execution plan
    for every new key length (measured 3.6 ms per call on an H200), i.e. every eager step. No-op on CPU."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def make_decoder(backbone: Backbone, backend: str, max_len: int, step_size: int):
    """A decoder for one run of at most `max_len` positions whose steps hold at most `step_size` nodes."""
    if backend == "eager":
        return EagerDecoder(backbone)
    if backend in ("static", "compiled"):
        return StaticDecoder(backbone, max_len, step_size, compiled=backend == "compiled")
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


class EagerDecoder:
    """DynamicCache; a step's mask covers exactly the cached prefix plus the step."""

    def __init__(self, backbone: Backbone):
        self.backbone, self.cache = backbone, new_cache(backbone.model)

    def prefill(self, ids: list[int]) -> torch.Tensor:
        """Run the prompt from position 0; returns its hidden states (q, d)."""
        dev = self.backbone.device
        with attention_backends(dev):
            return forward_hidden(self.backbone.model, torch.tensor([ids], device=dev),
                                  torch.arange(len(ids), device=dev)[None], self.cache)[0]

    def step(self, tokens: torch.Tensor, positions: torch.Tensor, pos: int,
             tree_bias: torch.Tensor | None = None) -> torch.Tensor:
        """tokens, positions (L,) after `pos` cached positions; tree_bias (L, L) additive, None = one
        token. Returns hidden states (L, d)."""
        mask = None
        if tree_bias is not None:
            prefix = torch.zeros(tree_bias.shape[0], pos, dtype=tree_bias.dtype, device=tree_bias.device)
            mask = torch.cat([prefix, tree_bias], dim=1)[None, None]  # (1, 1, L, pos + L)
        with attention_backends(tokens.device):
            return forward_hidden(self.backbone.model, tokens[None], positions[None], self.cache, mask)[0]

    def keep(self, start: int, slots: torch.Tensor | int) -> None:
        keep_slots(self.cache, start, slots)

    def close(self) -> None:
        self.cache = None


class StaticDecoder:
    """StaticCache sized to the run; steps padded to one bucket; optionally compiled."""

    def __init__(self, backbone: Backbone, max_len: int, step_size: int, compiled: bool):
        self.backbone = backbone
        self.bucket = step_bucket(step_size)
        self.length = -(-(max_len + self.bucket) // CACHE_BUCKET) * CACHE_BUCKET
        dev, dtype = backbone.device, backbone.dtype
        self.minus_inf = torch.finfo(dtype).min
        self.cache = _CACHES.take(backbone, self.length)
        self.mask = torch.empty(1, 1, self.bucket, self.length, dtype=dtype, device=dev)  # reused every step
        self.pad_tokens = torch.zeros(self.bucket, dtype=torch.long, device=dev)
        self.pad_positions = torch.zeros(self.bucket, dtype=torch.long, device=dev)
        self.one_token_bias = torch.zeros(1, 1, dtype=dtype, device=dev)
        self.forward = _compiled_forward(backbone, self.cache, self.bucket) if compiled else self._eager_forward

    def _eager_forward(self, ids, positions, mask):
        return forward_hidden(self.backbone.model, ids, positions, self.cache, mask)

    def prefill(self, ids: list[int]) -> torch.Tensor:
        """Run the prompt eagerly (its length varies) into the static cache; hidden states (q, d)."""
        dev, q = self.backbone.device, len(ids)
        causal = torch.full((q, self.length), self.minus_inf, dtype=self.backbone.dtype, device=dev)
        causal[:, :q] = torch.triu(causal[:, :q], diagonal=1)
        with attention_backends(dev):
            return forward_hidden(self.backbone.model, torch.tensor([ids], device=dev),
                                  torch.arange(q, device=dev)[None], self.cache, causal[None, None])[0]

    def step(self, tokens: torch.Tensor, positions: torch.Tensor, pos: int,
             tree_bias: torch.Tensor | None = None) -> torch.Tensor:
        """As EagerDecoder.step; the forward runs at the bucket's fixed shape."""
        n, b = tokens.shape[0], self.bucket
        bias = self.one_token_bias if tree_bias is None else tree_bias  # (n, n)
        mask = self.mask[0, 0]  # (b, length)
        mask.fill_(self.minus_inf)
        mask[:, :pos] = 0
        mask[:n, pos : pos + n] = bias
        pad = torch.arange(n, b, device=mask.device)
        mask[pad, pos + pad] = 0  # padded rows see the prefix and themselves
        self.pad_tokens[:n] = tokens
        self.pad_positions[:n] = positions
        self.pad_positions[n:] = pos
        with attention_backends(mask.device):
            hidden = self.forward(self.pad_tokens[None], self.pad_positions[None], self.mask)
        return hidden[0, :n].clone()  # a captured graph reuses its output buffer on the next call

    def keep(self, start: int, slots: torch.Tensor | int) -> None:
        keep_slots(self.cache, start, slots)

    def close(self) -> None:
        if self.cache is not None:
            _CACHES.give_back(self.backbone, self.length, self.cache)
            self.cache = None


class _CachePool:
    """Static caches reused across runs (a captured graph is bound to its cache's addresses).
    A cache is handed to one run at a time; two lanes racing hold two."""

    def __init__(self):
        self.lock, self.free = threading.Lock(), {}

    def take(self, backbone: Backbone, length: int):
        key = (id(backbone.model), length)
        with self.lock:
            if self.free.get(key):
                cache = self.free[key].pop()
                keep_slots(cache, 0, torch.empty(0, dtype=torch.long, device=backbone.device))  # empty it
                return cache
        return new_static_cache(backbone.model, length, backbone.dtype, backbone.device)

    def give_back(self, backbone: Backbone, length: int, cache) -> None:
        with self.lock:
            self.free.setdefault((id(backbone.model), length), []).append(cache)


_CACHES = _CachePool()
_COMPILED: dict[tuple[int, int], object] = {}


def _compiled_forward(backbone: Backbone, cache, bucket: int):
    """One compiled forward per (model, cache object, bucket), made on first use and kept."""
    key = (id(backbone.model), id(cache), bucket)
    if key not in _COMPILED:
        import torch._dynamo

        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
        mode = "reduce-overhead" if backbone.device.type == "cuda" else None
        model = backbone.model

        def forward(ids, positions, mask):
            return forward_hidden(model, ids, positions, cache, mask)

        _COMPILED[key] = torch.compile(forward, mode=mode, dynamic=False)
    return _COMPILED[key]
