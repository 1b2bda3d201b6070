"""Command line: python -m medusa_engine generate | bench | train | calibrate  (see --help)."""
from __future__ import annotations

import argparse
import json
import sys

from .backbone import BackboneError
from .decode import DecodeError
from .heads import HeadsError
from .tree import TreeError


def _add_decode_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="hub id, local dir or .gguf (default: embedded SmolLM2-135M-Instruct)")
    p.add_argument("--heads", default=None, help="heads dir or hub id; 'untrained' for zero-init heads (default: shipped)")
    p.add_argument("--tree", default=None, help="'chain', a size N in 1..64 (root included), or a .json list of paths")
    p.add_argument("--mode", choices=["greedy", "typical"], default="greedy")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--epsilon", type=float, default=0.09)
    p.add_argument("--alpha", type=float, default=None, help="default sqrt(epsilon)")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None, help="float32 | bfloat16 | float16 (default: float32 on CPU, bfloat16 on GPU)")


def _cmd_generate(args: argparse.Namespace) -> int:
    from .run import generate

    summary = generate(args.prompt, model=args.model, heads=args.heads, tree=args.tree, vanilla=args.vanilla,
                       mode=args.mode, temperature=args.temperature, epsilon=args.epsilon, alpha=args.alpha,
                       max_new_tokens=args.max_new_tokens, device=args.device, dtype=args.dtype, system=args.system,
                       on_text=None if args.json else lambda t: print(t, end="", flush=True))
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(f"\n\n[{summary.lane}] {summary.tokens} tokens in {summary.steps} steps "
              f"({summary.tokens_per_step:.2f} tokens/step, {summary.ms_per_token:.1f} ms/token, "
              f"stop: {summary.stop_reason})", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medusa_engine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="decode one prompt with Medusa (or vanilla)")
    gen.add_argument("--prompt", required=True)
    gen.add_argument("--system", default=None, help="system prompt (default: the chat template's own)")
    gen.add_argument("--vanilla", action="store_true", help="plain one-token-per-step decoding")
    gen.add_argument("--json", action="store_true", help="print the run summary (token ids, text) as JSON")
    _add_decode_args(gen)
    gen.set_defaults(func=_cmd_generate)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (BackboneError, HeadsError, TreeError, DecodeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
