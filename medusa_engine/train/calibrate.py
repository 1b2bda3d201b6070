"""Calibration: rank-specific hit rates of trained heads on held-out data, the greedy optimal tree
growth order (every prefix a valid tree, so width N = the first N-1 paths), and the simulated
tokens/step (teacher-forced on held-out greedy responses) of each tree size."""
from __future__ import annotations

import numpy as np
import torch

from ..heads import MedusaHeads
from ..tree import TreeSpec, chain, growth_order
from .features import FeatureStore
from .medusa1 import build_rows, evaluate, previous_tokens

TREE_SIZES = (1, 2, 3, 4, 5, 6, 8, 12, 16, 24, 32, 48, 64)


@torch.no_grad()
def simulate_tokens_per_step(heads: MedusaHeads, lm_weight: torch.Tensor, examples: list[dict],
                             store: FeatureStore, trees: dict[str, TreeSpec], top_k: int = 10,
                             embed_weight: torch.Tensor | None = None) -> dict[str, float]:
    """Greedy Medusa replayed on recorded greedy responses: at each step the root is right by
    construction, and a tree path is accepted if head d's rank-r token equals the response d tokens
    later. Token-input heads read the response's own previous token: a node is only accepted after its
    parent was, and its parent's token is then the response's (heads.py), so this is exact for them too.
    Returns tokens/step per tree name."""
    matrix = store.matrix()
    steps = {name: 0 for name in trees}
    tokens = {name: 0 for name in trees}
    for ex in examples:
        if ex["id"] not in store.index or ex.get("sampled"):
            continue
        offset, n = store.index[ex["id"]]
        h = torch.from_numpy(np.array(matrix[offset : offset + n], dtype=np.float32))
        resp = torch.tensor(ex["response_ids"])
        prev = heads.previous_embeddings(previous_tokens(resp[:n], heads.num_heads), embed_weight)  # (K, n, d) or None
        top = heads.top_tokens(heads.hidden(h, prev), lm_weight.float(), top_k)  # (K, n, k)
        match = torch.zeros(n, heads.num_heads, top_k, dtype=torch.bool)  # match[i, d, r]: head d+1 rank r right at i
        for d in range(heads.num_heads):
            if n > d + 1:
                match[: n - d - 1, d] = top[d, : n - d - 1] == resp[d + 1 :, None]
        match = match.numpy()
        for name, tree in trees.items():
            i = 0
            while i < n:
                best = 0
                for path in tree.paths:
                    if len(path) > best and all(match[i, d, r] for d, r in enumerate(path)):
                        best = len(path)
                emitted = min(1 + best, n - i)
                steps[name] += 1
                tokens[name] += emitted
                i += emitted
    return {name: tokens[name] / max(steps[name], 1) for name in trees}


def calibrate(heads: MedusaHeads, lm_weight: torch.Tensor, heldout: list[dict], store: FeatureStore,
              top_k: int = 10, sizes: tuple[int, ...] = TREE_SIZES, embed_weight: torch.Tensor | None = None) -> dict:
    """Hit rates, accuracies, growth order (63 paths) and simulated tokens/step per tree size
    (`embed_weight`: the backbone's input embeddings, for token-input heads)."""
    greedy = [ex for ex in heldout if not ex.get("sampled")]
    metrics = evaluate(heads, build_rows(greedy, store, heads.num_heads), lm_weight, ranks=top_k, max_rows=None,
                       embed_weight=embed_weight)  # every held-out position: the trees rest on these rates
    order = growth_order(metrics["hit_rates"], 63)
    trees = {str(s): TreeSpec.from_paths(order[: s - 1]) for s in sizes}
    trees["chain"] = chain(heads.num_heads)
    tau = simulate_tokens_per_step(heads, lm_weight, greedy, store, trees, top_k, embed_weight)
    return {"hit_rates": metrics["hit_rates"], "top1": metrics["top1"], "top5": metrics["top5"],
            "heldout_rows": metrics["rows"], "heldout_examples": len(greedy), "draft_vocab": heads.config.draft_vocab,
            "growth_order": [list(p) for p in order], "simulated_tokens_per_step": tau}


def choose_default_size(calib: dict, cost_ratio: dict[int, float], device: str) -> tuple[int, str]:
    """The tree size with the best expected speed-up: simulated tokens/step over the measured cost of
    its verify forward (relative to a one-token step) on `device`."""
    tau = calib["simulated_tokens_per_step"]
    scores = {s: tau[str(s)] / r for s, r in cost_ratio.items() if str(s) in tau}
    best = max(scores, key=scores.get)
    return best, (f"best simulated tokens/step / measured verify cost on {device}: "
                  + ", ".join(f"{s}: {tau[str(s)]:.2f}/{cost_ratio[s]:.2f}" for s in sorted(scores)))
