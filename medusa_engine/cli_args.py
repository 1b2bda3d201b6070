"""Command-line options shared by several subcommands."""
from __future__ import annotations

import argparse


def add_decode_args(p: argparse.ArgumentParser, max_new_tokens: int = 256) -> None:
    """The model, heads, tree and decoding options shared by `generate` and `bench`."""
    p.add_argument("--model", default=None, help="hub id, local dir or .gguf (default: embedded SmolLM2-135M-Instruct)")
    p.add_argument("--heads", default=None, help="heads dir or hub id; 'untrained' for zero-init heads (default: shipped)")
    p.add_argument("--tree", default=None, help="'chain', a size N in 1..64 (root included), or a .json list of paths")
    p.add_argument("--mode", choices=["greedy", "typical"], default="greedy")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--epsilon", type=float, default=0.09)
    p.add_argument("--alpha", type=float, default=None, help="default sqrt(epsilon)")
    p.add_argument("--max-new-tokens", type=int, default=max_new_tokens)
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None, help="float32 | bfloat16 | float16 (default: float32 on CPU, bfloat16 on GPU)")
    add_backend_arg(p)


def add_backend_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=["auto", "eager", "static", "compiled"], default="auto",
                   help="decoder backend: eager (DynamicCache), static (preallocated cache, fixed shapes), "
                        "compiled (static + torch.compile); auto: compiled on CUDA, eager on CPU")
