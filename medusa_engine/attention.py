"""The attention function the backbone runs with: transformers' SDPA, plus grouped-query sharing on
masked CPU steps. The only place that touches transformers' attention interface.

With an explicit mask (every tree step) transformers' SDPA copies each key/value head once per query
head it serves (SmolLM2-135M: 3 kv heads for 9 query heads), the whole cache, in every layer of every
step. On a CPU, SDPA's own `enable_gqa` reads the shared heads in place and gives the same result:
measured 12 ms of a 130 ms 8-node verify at 256 cached positions (1 thread), growing with the context.
Unmasked calls (one-token steps, prefill) and other devices, where a masked `enable_gqa` falls back to
the math kernel, keep transformers' own path.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

NAME = "medusa_sdpa"


def masked_gqa_sdpa(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                    attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                    is_causal: bool | None = None, **kwargs) -> tuple[torch.Tensor, None]:
    """query (b, heads, q, hd), key/value (b, kv_heads, kv, hd) -> (b, q, heads, hd), as transformers' SDPA."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    plain = (attention_mask is None or query.device.type != "cpu" or getattr(module, "num_key_value_groups", 1) == 1
             or kwargs.get("position_bias") is not None or kwargs.get("softcap") is not None)
    if plain:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=dropout,
                                         scale=scaling, enable_gqa=True)
    return out.transpose(1, 2).contiguous(), None


def register() -> str:
    """Make NAME a valid `attn_implementation` (attention and mask functions); returns NAME."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, masked_gqa_sdpa)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    return NAME
