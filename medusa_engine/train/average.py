"""Weight averaging of head sets ("model soup"): the element-wise mean of the weights of sets that share a
design and read the same backbone, e.g. the sets of successive sittings trained on different data."""
from __future__ import annotations

from dataclasses import replace

import torch

from ..heads import HeadsError, MedusaHeads


def average_heads(sets: list[MedusaHeads]) -> MedusaHeads:
    """A new set whose every weight is the mean of the `sets`' weights (computed in float32). The sets
    must share their configuration (heads, layers, sizes, lm_head design, token input); draft
    vocabularies may differ and are dropped: give the result its own with set_draft_vocab()."""
    if len(sets) < 2:
        raise HeadsError(f"averaging needs at least two head sets, got {len(sets)}")
    first = replace(sets[0].config, draft_vocab=0)
    for heads in sets[1:]:
        if replace(heads.config, draft_vocab=0) != first:
            raise HeadsError(f"head sets of different designs cannot be averaged: {first} vs "
                             f"{replace(heads.config, draft_vocab=0)}")
    states = [heads.state_dict() for heads in sets]
    out = MedusaHeads(first)
    out.load_state_dict({k: torch.stack([s[k].float() for s in states]).mean(0) for k in states[0]})
    return out.eval()
