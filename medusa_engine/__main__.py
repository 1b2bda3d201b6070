"""Command line: python -m medusa_engine generate | bench | train | calibrate  (see --help)."""
from __future__ import annotations

import argparse
import json
import sys

from .backbone import BackboneError
from .cli_args import add_backend_arg, add_decode_args
from .decode import DecodeError
from .heads import HeadsError
from .tree import TreeError


def _cmd_generate(args: argparse.Namespace) -> int:
    from .run import generate

    summary = generate(args.prompt, model=args.model, heads=args.heads, tree=args.tree, vanilla=args.vanilla,
                       mode=args.mode, temperature=args.temperature, epsilon=args.epsilon, alpha=args.alpha,
                       max_new_tokens=args.max_new_tokens, backend=args.backend, device=args.device, dtype=args.dtype,
                       system=args.system,
                       on_text=None if args.json else lambda t: print(t, end="", flush=True))
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(f"\n\n[{summary.lane}] {summary.tokens} tokens in {summary.steps} steps "
              f"({summary.tokens_per_step:.2f} tokens/step, {summary.ms_per_token:.1f} ms/token, "
              f"stop: {summary.stop_reason})", file=sys.stderr)
    return 0


def _cmd_tree_cost(args: argparse.Namespace) -> int:
    import torch

    from .backbone import load_backbone
    from .bundle import load_head_set
    from .decoder import choose_backend
    from .tree_cost import measure

    if args.threads:
        torch.set_num_threads(args.threads)
    backbone = load_backbone(args.model, device=args.device, dtype=args.dtype)
    head_set = load_head_set(args.heads, backbone)
    trees = {f"tree {n}": head_set.tree(n) for n in args.sizes}
    backend = choose_backend(args.backend, backbone.device)
    results = measure(backbone, trees, prefix_len=args.prefix, reps=args.reps, backend=backend)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{backbone.name} on {backbone.device} ({str(backbone.dtype)[6:]}, {torch.get_num_threads()} threads, "
              f"{backend} backend, {backbone.matmuls} matmuls), "
              f"prefix {args.prefix} tokens, median of {args.reps}")
        for name, r in results.items():
            print(f"  {name:>14}: {r['ms']:8.1f} ms  x{r['ratio']:.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medusa_engine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="decode one prompt with Medusa (or vanilla)")
    gen.add_argument("--prompt", required=True)
    gen.add_argument("--system", default=None, help="system prompt (default: the chat template's own)")
    gen.add_argument("--vanilla", action="store_true", help="plain one-token-per-step decoding")
    gen.add_argument("--json", action="store_true", help="print the run summary (token ids, text) as JSON")
    add_decode_args(gen)
    gen.set_defaults(func=_cmd_generate)
    cost = sub.add_parser("tree-cost", help="time a tree-verify forward against a one-token step")
    cost.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 16, 32, 64])
    cost.add_argument("--prefix", type=int, default=256)
    cost.add_argument("--reps", type=int, default=12)
    cost.add_argument("--threads", type=int, default=None)
    cost.add_argument("--json", action="store_true")
    for flag in ("--model", "--heads", "--device", "--dtype"):
        cost.add_argument(flag, default=None)
    add_backend_arg(cost)
    cost.set_defaults(func=_cmd_tree_cost)
    from .bench import add_parser as add_bench_parser
    from .train.cli import add_parsers as add_train_parsers

    add_bench_parser(sub)
    add_train_parsers(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (BackboneError, HeadsError, TreeError, DecodeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
