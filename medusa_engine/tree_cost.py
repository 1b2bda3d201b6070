"""What a tree costs: the time of one tree-verify forward (with lm_head) against a one-token step,
at a fixed prefix length, medians over repetitions. The answer decides the best tree width on a device."""
from __future__ import annotations

import statistics
import time

import torch

from .backbone import Backbone, forward_hidden, new_cache
from .cache import keep_slots
from .tree import TreeSpec


@torch.inference_mode()
def measure(backbone: Backbone, trees: dict[str, TreeSpec], prefix_len: int = 256, reps: int = 12) -> dict:
    """Median ms of a forward over each tree (and of a plain one-token step), and its ratio to the latter."""
    dev, model = backbone.device, backbone.model
    lm_head = model.get_output_embeddings()
    prefix = torch.randint(3, backbone.vocab_size, (1, prefix_len), device=dev)
    cache = new_cache(model)
    forward_hidden(model, prefix, torch.arange(prefix_len, device=dev)[None], cache)
    minus_inf = torch.finfo(backbone.dtype).min

    def timed(tokens, positions, mask) -> float:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        lm_head(forward_hidden(model, tokens, positions, cache, mask))
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        ms = (time.perf_counter() - t0) * 1e3
        keep_slots(cache, prefix_len, torch.empty(0, dtype=torch.long, device=dev))  # rewind to the prefix
        return ms

    results = {}
    one = torch.randint(3, backbone.vocab_size, (1, 1), device=dev)
    base = [timed(one, torch.tensor([[prefix_len]], device=dev), None) for _ in range(reps + 2)][2:]
    results["1-token step"] = {"ms": statistics.median(base), "ratio": 1.0}
    for name, tree in trees.items():
        buf = tree.buffers(10, dev)
        bias = torch.zeros(tree.size, prefix_len + tree.size, dtype=backbone.dtype, device=dev)
        bias[:, prefix_len:].masked_fill_(~buf.mask, minus_inf)
        tokens = torch.randint(3, backbone.vocab_size, (1, tree.size), device=dev)
        times = [timed(tokens, (prefix_len + buf.depths)[None], bias[None, None]) for _ in range(reps + 2)][2:]
        results[name] = {"nodes": tree.size, "ms": statistics.median(times),
                         "ratio": statistics.median(times) / results["1-token step"]["ms"]}
    return results
