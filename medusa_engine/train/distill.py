"""Self-distillation data for MEDUSA heads: the backbone's own answers to the prompt set.

One JSONL file, one example a line:
    {"id", "category", "split": "train"|"heldout", "sampled": bool, "prompt_ids": [...], "response_ids": [...]}
`response_ids` run up to and including the first EOS, or are `max_new_tokens` long without one.
Most prompts are answered greedily; a fixed share (chosen by a hash of the id) is sampled.

The file is only ever appended to, one whole batch per write followed by fsync, so killing the
process loses at most the batch in flight. The final hidden states of every answer are captured
during generation into the FeatureStore next to the file (features.py), so training needs no second
pass over the backbone. A lock file keeps a second generator off the same file. On start, a torn last line is cut off and the ids already
in the file are skipped: rerunning the same command resumes.

    python -m medusa_engine.train.distill --out data/distill/distill.jsonl --max-new-tokens 400
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ..backbone import Backbone, encode_chat, load_backbone
from .features import FeatureStore, capture_last_hidden
from .prompts import Prompt
from .prompts_varied import PROMPT_SETS

DEFAULT_BATCH_SIZE = 64  # fp32 on the 2-core CPU: ~69 tok/s raw at 64 vs ~40-46 at 32, no better at 96/128
DEFAULT_DTYPE = "float32"  # bfloat16 is 2-7x slower here (no native bf16 on this CPU)
WINDOW_BATCHES = 8  # prompts are sorted by length within windows of this many batches


def unit_hash(*parts: object) -> float:
    """A deterministic number in [0, 1) from `parts` (stable across runs and machines)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(prompt_id: str, heldout_share: float = 0.05) -> str:
    return "heldout" if unit_hash("split", prompt_id) < heldout_share else "train"


def is_sampled(prompt_id: str, sample_share: float = 0.2) -> bool:
    return unit_hash("sample", prompt_id) < sample_share


def truncate_at_eos(tokens: list[int], eos_ids) -> list[int]:
    """`tokens` up to and including the first EOS; all of them if there is none."""
    for i, t in enumerate(tokens):
        if t in eos_ids:
            return tokens[: i + 1]
    return tokens


def repair_and_read(path: str | Path) -> list[dict]:
    """The examples in `path`. A torn tail (no final newline, or an unparsable last line, as a kill
    mid-write leaves) is cut off the file itself, so appending can go on safely."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1  # everything after the last newline is a torn line
    rows, lines = [], data[:keep].split(b"\n")[:-1]
    offset = 0
    for n, line in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except ValueError:
            if n != len(lines) - 1:
                raise ValueError(f"{path}: line {n + 1} is not valid JSON; refusing to append to a corrupt file")
            keep = offset  # a complete but broken last line: drop it too
        offset += len(line) + 1
    if keep != len(data):
        with open(path, "r+b") as fh:
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())
    return rows


def load_examples(path: str | Path, split: str | None = None) -> list[dict]:
    """The examples of a distillation file (optionally one split), read-only: a torn last line is ignored."""
    rows = []
    with open(path, "rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                break
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if split is None or row["split"] == split:
                rows.append(row)
    return rows


def plan_batches(items: list[tuple[Prompt, list[int]]], batch_size: int, sample_share: float) -> list[list]:
    """Batches of (prompt, ids): greedy and sampled prompts apart, sorted by length within windows,
    the two kinds interleaved so that a partial run covers both. `items` come in a fixed shuffled order."""
    kinds = []
    for sampled in (False, True):
        group = [it for it in items if is_sampled(it[0].id, sample_share) == sampled]
        batches, window = [], batch_size * WINDOW_BATCHES
        for w in range(0, len(group), window):
            chunk = sorted(group[w : w + window], key=lambda it: len(it[1]))
            batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        kinds.append(batches)
    tagged = [((i + 0.5) / len(bs), k, b) for k, bs in enumerate(kinds) for i, b in enumerate(bs)]
    return [b for _, _, b in sorted(tagged, key=lambda t: (t[0], t[1]))]


@torch.inference_mode()
def generate_batch(backbone: Backbone, batch_ids: list[list[int]], max_new_tokens: int, sampled: bool,
                   temperature: float) -> tuple[list[list[int]], list[np.ndarray]]:
    """Left-padded (with the first EOS id) batched `model.generate`: the new tokens of each row
    (EOS-truncated) and, captured on the way, each row's final hidden states, row i predicting
    response[i] (see features.py)."""
    from transformers import GenerationConfig

    eos = list(backbone.eos_token_ids)
    pad_id = eos[0]
    width = max(len(x) for x in batch_ids)
    input_ids = torch.full((len(batch_ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch_ids), width), dtype=torch.long)
    for row, ids in enumerate(batch_ids):
        input_ids[row, width - len(ids):] = torch.tensor(ids)
        mask[row, width - len(ids):] = 1
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=sampled, pad_token_id=pad_id, eos_token_id=eos,
                              **({"temperature": temperature, "top_k": 0, "top_p": 1.0} if sampled else {}))
    with capture_last_hidden(backbone.model) as captured:
        out = backbone.model.generate(input_ids=input_ids.to(backbone.device),
                                      attention_mask=mask.to(backbone.device), generation_config=config)
    responses = [truncate_at_eos(row, set(eos)) for row in out[:, width:].tolist()]
    hidden = torch.stack(captured, dim=1).numpy()  # (B, forwards, d): forward j predicts token j
    return responses, [hidden[i, : len(r)] for i, r in enumerate(responses)]


def generate(out_path, backbone: Backbone, prompts: list[Prompt], batch_size: int = DEFAULT_BATCH_SIZE,
             max_new_tokens: int = 400, sample_share: float = 0.2, temperature: float = 0.7, seed: int = 0,
             heldout_share: float = 0.05, progress: bool = True) -> dict:
    """Answer every prompt not yet in `out_path`, appending one line per example (see module doc).
    Returns {"done", "new", "tokens", "seconds"} for this call."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(out_path):
        return _generate(out_path, backbone, prompts, batch_size, max_new_tokens, sample_share, temperature, seed,
                         heldout_share, progress)


@contextmanager
def _exclusive(out_path: Path):
    """One writer per output file: a second generator on the same file is refused, not interleaved."""
    with open(out_path.with_suffix(".lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise RuntimeError(f"another process is already generating into {out_path}") from err
        yield


def _generate(out_path: Path, backbone: Backbone, prompts: list[Prompt], batch_size: int, max_new_tokens: int,
              sample_share: float, temperature: float, seed: int, heldout_share: float, progress: bool) -> dict:
    log_path = out_path.with_suffix(".log")
    store = FeatureStore(out_path.parent, backbone.hidden_size)
    done = {row["id"] for row in repair_and_read(out_path)}
    todo = sorted((p for p in prompts if p.id not in done), key=lambda p: unit_hash("order", p.id))
    items = [(p, encode_chat(backbone, p.text)) for p in todo]
    batches = plan_batches(items, batch_size, sample_share)

    from tqdm import tqdm

    bar = tqdm(total=None, unit="tok", dynamic_ncols=True, disable=not progress, mininterval=5, file=sys.stderr)
    n_done, new, tokens, start = len(done & {p.id for p in prompts}), 0, 0, time.time()
    bar.set_postfix_str(f"{n_done}/{len(prompts)} examples")
    for batch in batches:
        sampled = is_sampled(batch[0][0].id, sample_share)
        if sampled:
            torch.manual_seed(int(unit_hash("seed", seed, batch[0][0].id) * 2**62))
        t0 = time.time()
        responses, hidden = generate_batch(backbone, [ids for _, ids in batch], max_new_tokens, sampled,
                                           temperature)
        store.append([(p.id, h) for (p, _), h in zip(batch, hidden) if p.id not in store.index])
        lines = [json.dumps({"id": p.id, "category": p.category, "split": split_of(p.id, heldout_share),
                             "sampled": sampled, "prompt_ids": ids, "response_ids": resp}, separators=(",", ":"))
                 for (p, ids), resp in zip(batch, responses)]
        with open(out_path, "ab") as fh:
            fh.write(("\n".join(lines) + "\n").encode())
            fh.flush()
            os.fsync(fh.fileno())
        batch_tokens = sum(map(len, responses))
        n_done, new, tokens = n_done + len(batch), new + len(batch), tokens + batch_tokens
        elapsed = time.time() - start
        bar.update(batch_tokens)
        bar.set_postfix_str(f"{n_done}/{len(prompts)} examples")
        with open(log_path, "a") as log:
            log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} examples={n_done}/{len(prompts)} tokens={tokens} "
                      f"tok/s={tokens / elapsed:.1f} batch={len(batch)}{' sampled' if sampled else ''} "
                      f"batch_tok/s={batch_tokens / (time.time() - t0):.1f}\n")
    bar.close()
    return {"done": n_done, "new": new, "tokens": tokens, "seconds": time.time() - start}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="data/distill/distill.jsonl")
    ap.add_argument("--model", default=None, help="backbone (default: the embedded SmolLM2-135M-Instruct)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--dtype", default=DEFAULT_DTYPE)
    ap.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    ap.add_argument("--max-new-tokens", type=int, default=400)
    ap.add_argument("--sample-share", type=float, default=0.2)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--heldout-share", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prompt-set", choices=sorted(PROMPT_SETS), default="templates",
                    help="which prompt set to answer (ids differ, so two sets never collide in one file)")
    ap.add_argument("--skip", type=int, default=0,
                    help="start this far into the fixed prompt order (past prompts another data set already answered)")
    ap.add_argument("--limit", type=int, default=None, help="use only this many prompts (a fixed mixed subset)")
    args = ap.parse_args(argv)
    if args.skip < 0 or (args.limit is not None and args.limit < 1):
        ap.error("--skip must be >= 0 and --limit >= 1")

    torch.set_num_threads(len(os.sched_getaffinity(0)))  # the cores this process may run on (taskset)
    ordered = sorted(PROMPT_SETS[args.prompt_set](), key=lambda p: unit_hash("order", p.id))
    prompts = ordered[args.skip:][: args.limit]
    if not prompts:
        ap.error(f"--skip {args.skip} leaves no prompts (the set has {len(ordered)})")
    backbone = load_backbone(args.model, device=args.device, dtype=args.dtype)
    stats = generate(args.out, backbone, prompts, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                     sample_share=args.sample_share, temperature=args.temperature, seed=args.seed,
                     heldout_share=args.heldout_share)
    print(f"{stats['done']}/{len(prompts)} examples in {args.out}; this run: {stats['new']} new, "
          f"{stats['tokens']} tokens in {stats['seconds']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
