"""KV-cache surgery. The only code that touches transformers' cache internals (tested per cache type)."""
from __future__ import annotations

import torch


def cache_length(cache) -> int:
    return int(cache.get_seq_length())


def keep_slots(cache, start: int, slots: torch.Tensor | int) -> None:
    """Keep the K/V at absolute positions `slots` (ascending, all >= start) as positions
    start..start+n-1 and drop every later position: gather the accepted tree slots, then truncate.
    An int n for `slots` keeps positions start..start+n-1 where they are (no gather: an accepted path
    whose nodes come first in the tree). Works on DynamicCache (truncates the tensors) and StaticCache
    (rewinds its write counter)."""
    in_place = isinstance(slots, int)
    n = slots if in_place else slots.numel()
    for layer in cache.layers:
        if not in_place:
            for name in ("keys", "values"):
                t = getattr(layer, name)  # (B, H, S, Dh)
                t[:, :, start : start + n] = t.index_select(2, slots)  # index_select copies before the write
        if hasattr(layer, "cumulative_length"):  # StaticLayer writes at an internal counter
            layer.cumulative_length.fill_(start + n)
        else:  # DynamicLayer: the tensor length is the cache length
            layer.keys = layer.keys[:, :, : start + n]
            layer.values = layer.values[:, :, : start + n]


def new_static_cache(model: torch.nn.Module, length: int, dtype: torch.dtype, device: torch.device):
    """A StaticCache of `length` positions, allocated now (a captured graph needs its addresses fixed)."""
    from transformers import StaticCache

    config = model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    cache = StaticCache(config=config, max_cache_len=length)
    cache.early_initialization(1, config.num_key_value_heads, head_dim, dtype, device)
    return cache
