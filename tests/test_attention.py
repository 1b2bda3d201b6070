import pytest
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from medusa_engine.attention import masked_gqa_sdpa


class _Attn(torch.nn.Module):
    num_key_value_groups = 3
    is_causal = True


@pytest.mark.parametrize("masked", [True, False])
def test_grouped_query_sharing_equals_transformers_sdpa(masked):
    """A tree-shaped additive mask over 9 query heads sharing 3 kv heads: same output as transformers'
    own SDPA path (which copies each kv head 3x), and unmasked calls take that path unchanged."""
    torch.manual_seed(0)
    q, kv = 5, 12
    query, key, value = torch.randn(1, 9, q, 8), torch.randn(1, 3, kv, 8), torch.randn(1, 3, kv, 8)
    mask = None
    if masked:
        allowed = torch.ones(q, kv, dtype=torch.bool)
        allowed[:, kv - q :] = torch.tensor([[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 0, 1, 0, 0],
                                             [1, 1, 0, 1, 0], [1, 0, 1, 0, 1]], dtype=torch.bool)
        mask = torch.zeros(q, kv).masked_fill(~allowed, torch.finfo(torch.float32).min)[None, None]
    ours, _ = masked_gqa_sdpa(_Attn(), query, key, value, mask, scaling=8**-0.5)
    theirs, _ = sdpa_attention_forward(_Attn(), query, key, value, mask, scaling=8**-0.5)
    assert ours.shape == (1, q, 9, 8)
    torch.testing.assert_close(ours, theirs)


def test_the_backbone_runs_with_it(tiny):
    from medusa_engine.attention import NAME

    assert tiny.model.config._attn_implementation == NAME
