"""GPU check: one table of decode timings for the default model and a 7B-shaped random-weight model.

Runs offline on a CUDA machine with torch and transformers installed (carry the `gguf` wheel and the
default model's GGUF file to time the real model; without them it times random weights of the same
shape and says so). For each model and backend (eager, compiled): a one-token step and 16/64-node
tree verifies (median ms, ratio), vanilla tokens/s over a decode; for the real model also Medusa with
the shipped heads on MT-Bench prompts (tokens/step, speed-up, identical to vanilla) and HF generate.

    python scripts/gpu_check.py [--model FILE.gguf|DIR] [--skip-7b] [--json OUT.json]
    python scripts/gpu_check.py --device cpu --tiny      # a seconds-long smoke run of the same code
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medusa_engine.backbone import Backbone, BackboneError, load_backbone  # noqa: E402
from medusa_engine.decode import DecodeConfig, vanilla_steps  # noqa: E402
from medusa_engine.tree import grow  # noqa: E402
from medusa_engine.tree_cost import measure  # noqa: E402

SHAPES = {  # LlamaConfig fields
    "smollm2-135m": dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                         rope_theta=100000.0, tie_word_embeddings=True),
    "llama-7b": dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                     num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096),
    "tiny": dict(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024),
}
HIT_RATES = [[0.5 * 0.6**k * 0.55**r for r in range(10)] for k in range(4)]


class _NoTokenizer:
    eos_token_id = -1  # no token ends a random model's run

    def decode(self, ids, skip_special_tokens=False):
        return ""


def random_backbone(shape: str, device: torch.device, dtype: torch.dtype) -> Backbone:
    """Random weights of a named shape, built directly on `device` in `dtype` (timing only)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**SHAPES[shape], attn_implementation="sdpa")
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config).eval()
    finally:
        torch.set_default_dtype(default)
    for p in model.parameters():
        p.requires_grad_(False)
    model.generation_config.eos_token_id = None
    return Backbone(model=model, tokenizer=_NoTokenizer(), name=f"random {shape}", source="random",
                    device=device, dtype=dtype)


def vanilla_rate(backbone: Backbone, backend: str, tokens: int) -> float:
    """Decode tokens/s of our vanilla lane (prefill excluded), after a warm-up run."""
    ids = torch.randint(3, backbone.vocab_size, (64,)).tolist()
    config = DecodeConfig(max_new_tokens=tokens, backend=backend)
    for _ in vanilla_steps(backbone, ids, DecodeConfig(max_new_tokens=4, backend=backend)):
        pass
    ms = sum(s.timing.total_ms for s in vanilla_steps(backbone, ids, config) if s.kind == "decode")
    return tokens / ms * 1e3


def check_model(backbone: Backbone, backends: list[str], tokens: int, reps: int) -> list[dict]:
    rows = []
    trees = {"tree 16": grow(HIT_RATES, 16), "tree 64": grow(HIT_RATES, 64)}
    for backend in backends:
        t0 = time.perf_counter()
        cost = measure(backbone, trees, prefix_len=256, reps=reps, backend=backend)
        rows.append({"model": backbone.name, "backend": backend, "one_token_ms": cost["1-token step"]["ms"],
                     "tree16_ratio": cost["tree 16"]["ratio"], "tree64_ratio": cost["tree 64"]["ratio"],
                     "vanilla_tok_s": vanilla_rate(backbone, backend, tokens),
                     "wall_s": time.perf_counter() - t0})
    return rows


def medusa_rows(backbone: Backbone, backends: list[str], limit: int, tokens: int) -> list[dict]:
    """Both lanes + HF generate on MT-Bench prompts with the shipped heads (real model only)."""
    from medusa_engine.bench import DEFAULT_PROMPTS, load_prompts, run_bench
    from medusa_engine.bundle import load_head_set

    head_set = load_head_set(None, backbone)
    prompts = load_prompts(DEFAULT_PROMPTS, limit)
    rows = []
    for backend in backends:
        config = DecodeConfig(max_new_tokens=tokens, backend=backend)
        for size in (16, 64):
            tree = head_set.tree(size)
            result = run_bench(backbone, head_set.heads, tree, prompts, config)
            o = result["overall"]
            rows.append({"backend": backend, "tree": size, "tokens_per_step": o["tokens_per_step"],
                         "speedup": o["speedup"], "overhead": o["overhead"],
                         "vanilla_tok_s": o["tokens_per_s"]["vanilla"], "medusa_tok_s": o["tokens_per_s"]["medusa"],
                         "hf_tok_s": o["tokens_per_s"].get("hf"), "identical": o["identical"]["fraction"]})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="GGUF file or model dir (default: the embedded default model)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--backends", nargs="+", default=["eager", "compiled"])
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--limit", type=int, default=8, help="MT-Bench prompts for the Medusa rows")
    ap.add_argument("--skip-7b", action="store_true")
    ap.add_argument("--tiny", action="store_true", help="smoke run: tiny random model only")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device here (use --device cpu --tiny for a smoke run)", file=sys.stderr)
        return 2
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "dtype": args.dtype, "rows": [], "medusa": []}
    if args.tiny:
        report["default_model"] = "tiny random model (smoke run)"
        models = [random_backbone("tiny", device, dtype)]
    else:
        try:
            real = load_backbone(args.model, device=device, dtype=dtype)
            report["default_model"] = f"real weights: {real.name} ({real.source})"
        except BackboneError as err:
            real = random_backbone("smollm2-135m", device, dtype)
            report["default_model"] = f"RANDOM weights of SmolLM2-135M's shape (real model not at hand: {err})"
        models = [real] + ([] if args.skip_7b else [random_backbone("llama-7b", device, dtype)])
    print(f"device: {report['device']} | torch {report['torch']} | {args.dtype}\ndefault model: {report['default_model']}")
    for backbone in models:
        report["rows"] += check_model(backbone, args.backends, args.tokens, args.reps)
        if backbone.source != "random":
            report["medusa"] += medusa_rows(backbone, args.backends, args.limit, args.tokens)
        del backbone
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print(f"\n{'model':<44}{'backend':>9}{'1-tok ms':>9}{'v16/1':>7}{'v64/1':>7}{'van tok/s':>10}{'wall s':>8}")
    for r in report["rows"]:
        print(f"{r['model'][:43]:<44}{r['backend']:>9}{r['one_token_ms']:>9.2f}{r['tree16_ratio']:>7.2f}"
              f"{r['tree64_ratio']:>7.2f}{r['vanilla_tok_s']:>10.1f}{r['wall_s']:>8.0f}")
    if report["medusa"]:
        print(f"\n{'backend':>9}{'tree':>5}{'tok/step':>9}{'overhead':>9}{'speedup':>8}{'van tok/s':>10}"
              f"{'med tok/s':>10}{'hf tok/s':>9}{'identical':>10}")
        for r in report["medusa"]:
            print(f"{r['backend']:>9}{r['tree']:>5}{r['tokens_per_step']:>9.2f}{r['overhead']:>9.2f}{r['speedup']:>8.2f}"
                  f"{r['vanilla_tok_s']:>10.1f}{r['medusa_tok_s']:>10.1f}{(r['hf_tok_s'] or 0):>9.1f}"
                  f"{r['identical']:>10.0%}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
