"""Measured speed-up against tree width: short greedy decodes of the same prompt on the same engine."""
from __future__ import annotations

from dataclasses import replace
from typing import Iterator

from .race import Lane

WIDTHS = (1, 4, 8, 16, 32, 64)


def _drain(gen) -> Lane:
    lane = Lane("x")
    try:
        for step in gen:
            lane.add(step.to_dict() if hasattr(step, "to_dict") else step)
    finally:
        gen.close()
    return lane


def sweep(engine, plan, widths=WIDTHS, tokens: int = 32) -> Iterator[list[dict]]:
    """Yield the growing list of {width, tree_size, speedup, tokens_per_step, ms_per_token} (greedy)."""
    from medusa_engine.decode import DecodeConfig

    config = DecodeConfig(mode="greedy", max_new_tokens=tokens, top_k=plan.config.top_k)
    plan = replace(plan, config=config)
    base = _drain(engine.vanilla(plan))
    results = []
    for w in widths:
        tree = engine.tree(replace(plan.settings, tree_shape="calibrated"), width=w)
        lane = _drain(engine.medusa(plan, tree))
        results.append({"width": w, "tree_size": tree.size, "tokens_per_step": lane.tokens_per_step,
                        "ms_per_token": lane.ms_per_token,
                        "speedup": base.ms_per_token / lane.ms_per_token if lane.ms_per_token else 0.0,
                        "vanilla_ms_per_token": base.ms_per_token})
        yield list(results)
