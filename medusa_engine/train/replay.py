"""Greedy tokens/step on a prompt set by replay, with no timing: greedy Medusa emits exactly the
backbone's greedy answer, and each step accepts the longest tree path whose head guesses (read off
the hidden state of the last accepted token) match that answer. So tokens/step follows from the
greedy answers and the hidden states along them. Both are generated once per backbone (batched HF
generate) and cached; any head set for that backbone is then scored in seconds.

Agreement with real runs: see tests/test_replay.py (replay == the engine's own tokens/step).
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

from ..backbone import Backbone, encode_chat
from ..bundle import HeadSet
from ..lora import delta_digest
from ..tree import chain
from .calibrate import simulate_tokens_per_step
from .distill import generate_batch
from .features import FeatureStore
from .medusa1 import build_rows, evaluate


def answers_key(backbone: Backbone, max_new_tokens: int) -> str:
    """The cache folder name of a backbone's greedy answers: its weights' hash, the hash of the MEDUSA-2
    delta merged into them and the answers' length."""
    delta = f"delta-{delta_digest(backbone.delta)}" if backbone.delta else "base"
    return f"{backbone.file_hash()}-{delta}-{max_new_tokens}"


def greedy_answers(backbone: Backbone, prompts: list[dict], max_new_tokens: int, cache_dir: str | Path,
                   batch_size: int = 16) -> tuple[list[dict], FeatureStore]:
    """Greedy answers (+ hidden states) of `prompts` (dicts with question_id, category, prompt), made
    once per (backbone, max_new_tokens) under `cache_dir` and appended as batches finish (resumable)."""
    folder = Path(cache_dir) / answers_key(backbone, max_new_tokens)
    store = FeatureStore(folder, backbone.hidden_size)
    answers_path = folder / "answers.jsonl"
    done = {}
    if answers_path.is_file():
        for line in answers_path.read_text().splitlines():
            row = json.loads(line)
            if row["id"] in store.index:
                done[row["id"]] = row
    todo = [p | {"id": str(p["question_id"]), "prompt_ids": encode_chat(backbone, p["prompt"])}
            for p in prompts if str(p["question_id"]) not in done]
    todo.sort(key=lambda p: len(p["prompt_ids"]))
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        responses, hidden = generate_batch(backbone, [p["prompt_ids"] for p in batch], max_new_tokens,
                                           sampled=False, temperature=1.0)
        rows = [{"id": p["id"], "category": p["category"], "response_ids": r} for p, r in zip(batch, responses)]
        store.append([(row["id"], np.asarray(h)) for row, h in zip(rows, hidden)])
        with open(answers_path, "a") as fh:
            fh.write("".join(json.dumps(row) + "\n" for row in rows))
        done.update({row["id"]: row for row in rows})
    return [done[str(p["question_id"])] for p in prompts], store


def replay_tokens_per_step(backbone: Backbone, head_set: HeadSet, answers: list[dict], store: FeatureStore,
                           sizes: tuple[int, ...] = (1, 4, 8, 16, 32, 64)) -> dict:
    """Tokens/step per tree size (and the top-1 chain), and each head's top-1 / top-5 accuracy on the
    answers (over its draft vocabulary, every position), overall and per category."""
    heads = copy.deepcopy(head_set.heads).float()
    lm_weight = backbone.model.get_output_embeddings().weight.float()
    embed_weight = backbone.model.get_input_embeddings().weight.float()
    trees = {str(s): head_set.tree(s) for s in sizes} | {"chain": chain(heads.num_heads)}
    groups = {"overall": answers}
    for row in answers:
        groups.setdefault(row["category"], []).append(row)
    results = {}
    for name, rows in groups.items():
        accuracy = evaluate(heads, build_rows(rows, store, heads.num_heads), lm_weight, max_rows=None,
                            embed_weight=embed_weight)
        results[name] = {"prompts": len(rows), "tokens": sum(len(r["response_ids"]) for r in rows),
                         "tokens_per_step": simulate_tokens_per_step(heads, lm_weight, rows, store, trees,
                                                                     embed_weight=embed_weight),
                         "top1": accuracy["top1"], "top5": accuracy["top5"]}
    return results
