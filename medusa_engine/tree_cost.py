"""What a tree costs: the time of one tree-verify forward (with lm_head) against a one-token step,
at a fixed prefix length, medians over repetitions, on a given decoder backend. The answer decides
the best tree width on a device."""
from __future__ import annotations

import statistics

import torch

from .backbone import Backbone
from .decode import clock
from .decoder import make_decoder
from .tree import TreeSpec


@torch.inference_mode()
def measure(backbone: Backbone, trees: dict[str, TreeSpec], prefix_len: int = 256, reps: int = 12,
            backend: str = "eager") -> dict:
    """Median ms of a forward over each tree (and of a plain one-token step), and its ratio to the latter.
    The first two calls of each shape are warm-up (and compile, on the compiled backend)."""
    dev = backbone.device
    lm_head = backbone.model.get_output_embeddings()
    prefix = torch.randint(3, backbone.vocab_size, (prefix_len,)).tolist()
    minus_inf = torch.finfo(backbone.dtype).min
    empty = torch.empty(0, dtype=torch.long, device=dev)

    def median_ms(tree: TreeSpec | None) -> float:
        size = tree.size if tree is not None else 1
        decoder = make_decoder(backbone, backend, prefix_len + size, size)
        try:
            decoder.prefill(prefix)
            tokens = torch.randint(3, backbone.vocab_size, (size,), device=dev)
            if tree is None:
                positions, bias = torch.tensor([prefix_len], device=dev), None
            else:
                buf = tree.buffers(10, dev)
                positions = prefix_len + buf.depths
                bias = torch.zeros(size, size, dtype=backbone.dtype, device=dev).masked_fill(~buf.mask, minus_inf)
            times = []
            for _ in range(reps + 2):
                t0 = clock(dev)
                lm_head(decoder.step(tokens, positions, prefix_len, bias))
                times.append((clock(dev) - t0) * 1e3)
                decoder.keep(prefix_len, empty)  # rewind to the prefix
            return statistics.median(times[2:])
        finally:
            decoder.close()

    base = median_ms(None)
    results = {"1-token step": {"nodes": 1, "ms": base, "ratio": 1.0}}
    for name, tree in trees.items():
        ms = median_ms(tree)
        results[name] = {"nodes": tree.size, "ms": ms, "ratio": ms / base}
    return results
