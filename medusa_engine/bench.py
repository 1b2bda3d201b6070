"""Benchmark: vanilla vs Medusa (vs HF `generate`) on MT-Bench-style prompts, in one process.

Per prompt, the two lanes' steps are interleaved (the lane with less accumulated compute time
advances one step), so machine noise hits both alike. Our lanes are timed by their steps' compute
time (prefill reported apart); HF `generate` by wall clock around the call, prefill included.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from .backbone import Backbone, encode_chat
from .decode import DecodeConfig, clock, check_fits, environment, medusa_steps, vanilla_steps
from .heads import MedusaHeads
from .cli_args import add_decode_args
from .interleave import run_interleaved
from .trace import Step
from .tree import TreeSpec

DEFAULT_PROMPTS = Path(__file__).resolve().parent.parent / "assets" / "mt_bench_question.jsonl"
DEFINITIONS = {
    "speedup": "sum of vanilla decode ms / sum of Medusa decode ms (step compute times, prefill excluded)",
    "overhead": "median Medusa step ms / median vanilla step ms",
    "tokens_per_s": "decode tokens / decode compute time (prefill excluded); hf: new tokens / generate wall time",
    "vanilla_vs_hf": "like-for-like: our vanilla tokens / (prefill + decode ms) over HF generate tokens / wall ms "
                     "(prefill included in both)",
}


class BenchError(ValueError):
    """A bad prompt file or benchmark setting; the message says which and why."""


def load_prompts(path: str | Path, limit: int | None = None, per_category: int | None = None) -> list[dict]:
    """MT-Bench JSONL: one object per line with `turns` (turns[0] is the prompt), `question_id`, `category`.
    `per_category`: the first N prompts of each category (in file order); `limit`: then the first N."""
    path = Path(path)
    for name, value in (("limit", limit), ("per_category", per_category)):
        if value is not None and value < 1:
            raise BenchError(f"{name} must be a positive integer, got {value}")
    if not path.is_file():
        raise BenchError(f"prompts file not found: {path}")
    prompts = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise BenchError(f"{path} line {n}: not valid JSON ({err.msg})") from err
        turns = item.get("turns") if isinstance(item, dict) else None
        if not isinstance(turns, list) or not turns or not isinstance(turns[0], str) or not turns[0].strip():
            raise BenchError(f"{path} line {n}: needs a non-empty 'turns' list whose first item is the prompt text")
        prompts.append({"question_id": item.get("question_id", n), "category": str(item.get("category", "none")),
                        "prompt": turns[0]})
    if not prompts:
        raise BenchError(f"{path} holds no prompts")
    if per_category is not None:
        counts: dict[str, int] = {}
        kept = []
        for p in prompts:
            counts[p["category"]] = counts.get(p["category"], 0) + 1
            if counts[p["category"]] <= per_category:
                kept.append(p)
        prompts = kept
    return prompts[:limit]


@torch.inference_mode()
def hf_generate(backbone: Backbone, prompt_ids: list[int], max_new_tokens: int) -> tuple[list[int], float]:
    """HF greedy `generate` as a reference: its new token ids and its wall time in ms (prefill included)."""
    ids = torch.tensor([prompt_ids], device=backbone.device)
    eos = list(backbone.eos_token_ids)
    t0 = clock(backbone.device)
    out = backbone.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                  do_sample=False, num_beams=1, eos_token_id=eos, pad_token_id=eos[0])
    ms = (clock(backbone.device) - t0) * 1e3
    return out[0, len(prompt_ids):].tolist(), ms


def _lane(steps: list[Step]) -> dict:
    decode = [s for s in steps if s.kind == "decode"]
    return {"ids": [t for s in decode for t in s.tokens], "steps": len(decode),
            "prefill_ms": sum(s.timing.total_ms for s in steps if s.kind == "prefill"),
            "decode_ms": sum(s.timing.total_ms for s in decode), "step_ms": [s.timing.total_ms for s in decode]}


def _first_divergence(a: list[int], b: list[int]) -> int | None:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None if len(a) == len(b) else min(len(a), len(b)))


def _spread(values: list[float]) -> dict:
    if not values:
        return {"median": None, "p25": None, "p75": None}
    p25, p50, p75 = np.percentile(values, [25, 50, 75])
    return {"median": float(p50), "p25": float(p25), "p75": float(p75)}


def _rate(tokens: int, ms: float) -> float | None:
    return tokens / ms * 1e3 if ms > 0 else None


def bench_prompt(backbone: Backbone, heads: MedusaHeads, tree: TreeSpec, prompt: dict, config: DecodeConfig,
                 hf: bool) -> dict:
    """Both lanes interleaved on one prompt, then HF generate; all raw numbers of that prompt."""
    ids = prompt["ids"]
    lanes = run_interleaved({"vanilla": vanilla_steps(backbone, ids, config),
                  "medusa": medusa_steps(backbone, heads, tree, ids, config)})
    run = {"vanilla": _lane(lanes["vanilla"]), "medusa": _lane(lanes["medusa"])}
    if hf:
        hf_ids, hf_ms = hf_generate(backbone, ids, config.max_new_tokens)
        run["hf"] = {"ids": hf_ids, "wall_ms": hf_ms}
    return run


def prompt_row(prompt: dict, run: dict, greedy: bool) -> dict:
    """The per-prompt JSON record."""
    v, m, h = run["vanilla"], run["medusa"], run.get("hf")
    div = _first_divergence(m["ids"], v["ids"]) if greedy else None
    row = {"question_id": prompt["question_id"], "category": prompt["category"], "prompt_tokens": len(prompt["ids"])}
    for name, lane in (("vanilla", v), ("medusa", m)):
        row[name] = {"tokens": len(lane["ids"]), "steps": lane["steps"],
                     "tokens_per_step": len(lane["ids"]) / max(lane["steps"], 1),
                     "prefill_ms": lane["prefill_ms"], "decode_ms": lane["decode_ms"],
                     "ms_per_token": lane["decode_ms"] / max(len(lane["ids"]), 1),
                     "median_step_ms": _spread(lane["step_ms"])["median"]}
    if h:
        row["hf"] = {"tokens": len(h["ids"]), "wall_ms": h["wall_ms"], "ms_per_token": h["wall_ms"] / max(len(h["ids"]), 1),
                     "matches_vanilla": h["ids"] == v["ids"]}
    row["speedup"] = v["decode_ms"] / m["decode_ms"] if m["decode_ms"] > 0 else None
    row["identical"] = (div is None) if greedy else None
    row["first_divergence"] = div
    return row


def aggregate(rows: list[dict], runs: list[dict]) -> dict:
    """Totals, medians and spreads over a group of prompts (rows and their raw runs, in the same order)."""
    tot = {lane: {k: sum(r[lane][k] for r in rows) for k in ("tokens", "steps", "prefill_ms", "decode_ms")}
           for lane in ("vanilla", "medusa")}
    v, m = tot["vanilla"], tot["medusa"]
    v_step, m_step = (_spread([ms for run in runs for ms in run[lane]["step_ms"]]) for lane in ("vanilla", "medusa"))
    out = {"prompts": len(rows),
           "tokens_per_step": m["tokens"] / m["steps"] if m["steps"] else None,
           "overhead": m_step["median"] / v_step["median"] if v_step["median"] else None,
           "speedup": v["decode_ms"] / m["decode_ms"] if m["decode_ms"] > 0 else None,
           "speedup_per_prompt": _spread([r["speedup"] for r in rows if r["speedup"] is not None]),
           "step_ms": {"vanilla": v_step, "medusa": m_step},
           "tokens": {"vanilla": v["tokens"], "medusa": m["tokens"]},
           "tokens_per_s": {"vanilla": _rate(v["tokens"], v["decode_ms"]), "medusa": _rate(m["tokens"], m["decode_ms"]),
                            "vanilla_with_prefill": _rate(v["tokens"], v["prefill_ms"] + v["decode_ms"]),
                            "medusa_with_prefill": _rate(m["tokens"], m["prefill_ms"] + m["decode_ms"])}}
    if all(r["identical"] is not None for r in rows):
        differ = [{"question_id": r["question_id"], "first_divergence": r["first_divergence"]}
                  for r in rows if not r["identical"]]
        out["identical"] = {"fraction": 1 - len(differ) / len(rows), "differing": differ}
    else:
        out["identical"] = None
    if all("hf" in r for r in rows):
        hf_rate = _rate(sum(r["hf"]["tokens"] for r in rows), sum(r["hf"]["wall_ms"] for r in rows))
        out["tokens_per_s"]["hf"] = hf_rate
        out["vanilla_vs_hf"] = out["tokens_per_s"]["vanilla_with_prefill"] / hf_rate if hf_rate else None
        out["hf_matches_vanilla"] = sum(r["hf"]["matches_vanilla"] for r in rows) / len(rows)
    return out


def run_bench(backbone: Backbone, heads: MedusaHeads, tree: TreeSpec, prompts: list[dict], config: DecodeConfig,
              hf: bool = True) -> dict:
    """Benchmark `prompts` (dicts with question_id, category, prompt): overall, per category and per prompt.
    HF generate runs only in greedy mode and when `hf` is set. One warm-up run of each lane comes first."""
    hf = hf and config.mode == "greedy"
    prompts = [p | {"ids": encode_chat(backbone, p["prompt"])} for p in prompts]
    for p in prompts:  # fail before any timing, not half-way
        check_fits(backbone, p["ids"], config, tree.size)
    bench_prompt(backbone, heads, tree, prompts[0], replace(config, max_new_tokens=min(4, config.max_new_tokens)), hf)
    runs = [bench_prompt(backbone, heads, tree, p, config, hf) for p in prompts]
    rows = [prompt_row(p, r, config.mode == "greedy") for p, r in zip(prompts, runs)]
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(r["category"], []).append(i)
    return {"overall": aggregate(rows, runs),
            "per_category": {c: aggregate([rows[i] for i in idx], [runs[i] for i in idx]) for c, idx in groups.items()},
            "per_prompt": rows, "definitions": DEFINITIONS}


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def table(result: dict) -> str:
    """Overall and per-category summary, one line each."""
    head = (f"{'group':<14}{'n':>3}{'tok/step':>9}{'overhead':>9}{'speedup':>8}{'(p25-p75)':>13}"
            f"{'van tok/s':>10}{'med tok/s':>10}{'hf tok/s':>9}{'van/hf':>7}{'identical':>10}")
    lines = [head, "-" * len(head)]
    for name, g in [("overall", result["overall"])] + list(result["per_category"].items()):
        s, rate = g["speedup_per_prompt"], g["tokens_per_s"]
        spread = f"({_fmt(s['p25'])}-{_fmt(s['p75'])})"
        ident = _fmt(g["identical"]["fraction"], ".0%") if g["identical"] else "-"
        lines.append(f"{name[:13]:<14}{g['prompts']:>3}{_fmt(g['tokens_per_step']):>9}{_fmt(g['overhead']):>9}"
                     f"{_fmt(g['speedup']):>8}{spread:>13}{_fmt(rate['vanilla'], '.1f'):>10}"
                     f"{_fmt(rate['medusa'], '.1f'):>10}{_fmt(rate.get('hf'), '.1f'):>9}"
                     f"{_fmt(g.get('vanilla_vs_hf')):>7}{ident:>10}")
    lines.append("tok/s: decode only (hf: generate wall time, prefill included); van/hf: both with prefill")
    return "\n".join(lines)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("bench", help="benchmark Medusa vs vanilla (vs HF generate) on MT-Bench prompts")
    p.add_argument("--prompts", default=str(DEFAULT_PROMPTS), help="MT-Bench-style .jsonl (default: shipped MT-Bench)")
    p.add_argument("--limit", type=int, default=None, help="first N prompts only")
    p.add_argument("--per-category", type=int, default=None, help="first N prompts of each category only")
    add_decode_args(p, max_new_tokens=128)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own: OMP_NUM_THREADS, else all cores)")
    p.add_argument("--no-hf", action="store_true", help="skip the HF generate reference")
    p.add_argument("--json", required=True, help="write the full results here")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from .backbone import load_backbone
    from .bundle import delta_for, load_head_set

    config = DecodeConfig(mode=args.mode, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                          epsilon=args.epsilon, alpha=args.alpha, backend=args.backend)
    if args.threads is not None and args.threads < 1:
        raise BenchError(f"threads must be a positive integer, got {args.threads}")
    prompts = load_prompts(args.prompts, args.limit, args.per_category)
    if not Path(args.json).resolve().parent.is_dir():
        raise BenchError(f"cannot write {args.json}: its directory does not exist")
    if args.threads:
        torch.set_num_threads(args.threads)
    backbone = load_backbone(args.model, device=args.device, dtype=args.dtype, delta=delta_for(args.heads))
    head_set = load_head_set(args.heads, backbone)
    config = config.for_device(backbone.device)
    tree = head_set.tree(args.tree, config.top_k)
    result = run_bench(backbone, head_set.heads, tree, prompts, config, hf=not args.no_hf)
    settings = {"prompts_file": str(args.prompts), "limit": args.limit, "per_category": args.per_category,
                "tree": args.tree, "tree_size": tree.size,
                "heads_calibrated": head_set.calibrated, "hf_reference": "hf" in result["per_prompt"][0],
                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")} | config.as_dict()
    out = {"settings": settings, "environment": environment(backbone, head_set.name)} | result
    Path(args.json).write_text(json.dumps(out, indent=2))
    env = out["environment"]
    print(f"bench: {env['model']} | heads {env['heads']} | tree {tree.size} | {config.mode} | {config.backend} "
          f"backend, {env['matmuls']} matmuls | {env['device']} {env['dtype']} | {env['threads']} threads | max_new_tokens {config.max_new_tokens}")
    print(table(result))
    print(f"wrote {args.json}", file=sys.stderr)
    return 0
