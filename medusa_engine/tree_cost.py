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
    Shapes are timed in interleaved rounds, so a machine that slows down mid-run slows all of them alike;
    the first two rounds are warm-up (and compile, on the compiled backend)."""
    dev = backbone.device
    lm_head = backbone.model.get_output_embeddings()
    prefix = torch.randint(3, backbone.vocab_size, (prefix_len,)).tolist()
    minus_inf = torch.finfo(backbone.dtype).min
    empty = torch.empty(0, dtype=torch.long, device=dev)
    shapes = {"1-token step": None} | trees
    decoders, inputs, times = {}, {}, {name: [] for name in shapes}
    try:
        for name, tree in shapes.items():
            size = tree.size if tree is not None else 1
            decoders[name] = make_decoder(backbone, backend, prefix_len + size, size)
            decoders[name].prefill(prefix)
            tokens = torch.randint(3, backbone.vocab_size, (size,), device=dev)
            if tree is None:
                inputs[name] = (tokens, torch.tensor([prefix_len], device=dev), None)
            else:
                buf = tree.buffers(10, dev)
                bias = torch.zeros(size, size, dtype=backbone.dtype, device=dev).masked_fill(~buf.mask, minus_inf)
                inputs[name] = (tokens, prefix_len + buf.depths, bias)
        for _ in range(reps + 2):
            for name, decoder in decoders.items():
                tokens, positions, bias = inputs[name]
                t0 = clock(dev)
                lm_head(decoder.step(tokens, positions, prefix_len, bias))
                times[name].append((clock(dev) - t0) * 1e3)
                decoder.keep(prefix_len, empty)  # rewind to the prefix
    finally:
        for decoder in decoders.values():
            decoder.close()
    base = statistics.median(times["1-token step"][2:])
    return {name: {"nodes": tree.size if tree is not None else 1, "ms": statistics.median(times[name][2:]),
                   "ratio": statistics.median(times[name][2:]) / base} for name, tree in shapes.items()}
