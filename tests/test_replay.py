"""Replay's tokens/step equals what the engine's greedy Medusa runs actually achieve."""
import dataclasses

import pytest
import torch

from conftest import random_heads, tiny_backbone
from medusa_engine.backbone import encode_chat, forward_hidden, new_cache
from medusa_engine.bundle import UNCALIBRATED_HIT_RATES, HeadSet
from medusa_engine.decode import DecodeConfig, medusa_steps
from medusa_engine.heads import untrained_heads
from medusa_engine.lora import DELTA_FILE
from medusa_engine.train.replay import answers_key, greedy_answers, replay_tokens_per_step

PROMPTS = [{"question_id": i, "category": c, "prompt": p} for i, (c, p) in
           enumerate([("writing", "abcabc"), ("math", "1+1=2, 2+2="), ("writing", "hello hello hello")])]


@pytest.mark.parametrize("kind", ["untrained", "random", "token_input"])
def test_replay_equals_the_engine(tmp_path, kind):
    """Also for token-input heads, whose proposals depend on the root and on each other's top-1 guesses."""
    backbone = tiny_backbone(seed=5)
    heads = (untrained_heads(4, 64, 128) if kind == "untrained"
             else random_heads(backbone, seed=5, token_input=kind == "token_input"))
    head_set = HeadSet(heads, kind, UNCALIBRATED_HIT_RATES, False)
    answers, store = greedy_answers(backbone, PROMPTS, 40, tmp_path, batch_size=1)  # no padding: exact
    result = replay_tokens_per_step(backbone, head_set, answers, store, sizes=(8, 32))
    for size in (8, 32):
        tokens = steps = 0
        for p in PROMPTS:
            run = [s for s in medusa_steps(backbone, heads, head_set.tree(size), encode_chat(backbone, p["prompt"]),
                                           DecodeConfig(max_new_tokens=40)) if s.kind == "decode"]
            tokens, steps = tokens + sum(len(s.tokens) for s in run), steps + len(run)
        assert result["overall"]["tokens_per_step"][str(size)] == pytest.approx(tokens / steps)
    assert result["writing"]["prompts"] == 2 and result["math"]["prompts"] == 1
    if kind == "untrained":
        assert result["overall"]["tokens_per_step"]["32"] > 1.2  # acceptance really happens


def test_answers_are_cached_and_resumed(tmp_path):
    backbone = tiny_backbone(seed=6)
    first, _ = greedy_answers(backbone, PROMPTS[:2], 16, tmp_path, batch_size=1)
    again, store = greedy_answers(backbone, PROMPTS, 16, tmp_path, batch_size=2)  # only the third is new
    assert again[:2] == first and len(store.index) == 3
    lines = next(tmp_path.iterdir()).joinpath("answers.jsonl").read_text().splitlines()
    assert len(lines) == 3


def test_answers_cache_key_follows_the_delta_content_not_its_folder_name(tmp_path):
    backbone = tiny_backbone(seed=6)
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / DELTA_FILE).write_bytes(b"first delta")
    tuned = dataclasses.replace(backbone, delta=str(tmp_path / "set"))
    first = answers_key(tuned, 16)
    (tmp_path / "set" / DELTA_FILE).write_bytes(b"retrained delta, same folder")
    assert answers_key(tuned, 16) != first
    assert answers_key(backbone, 16).endswith("-base-16") and answers_key(backbone, 32) != answers_key(backbone, 16)


@pytest.mark.parametrize("kind", ["untrained", "random"])
def test_replay_head_accuracy_matches_a_direct_count(tmp_path, kind):
    """Head k's top-1 / top-5 on the replayed answers == counted directly from a full forward over
    prompt + answer: the state after answer[:i] guesses answer[i + k]."""
    backbone = tiny_backbone(seed=7)
    heads = untrained_heads(4, 64, 128) if kind == "untrained" else random_heads(backbone, seed=7)
    answers, store = greedy_answers(backbone, PROMPTS, 40, tmp_path, batch_size=1)
    result = replay_tokens_per_step(backbone, HeadSet(heads, kind, UNCALIBRATED_HIT_RATES, False), answers, store,
                                    sizes=(8,))
    hits, counts = torch.zeros(2, 4), torch.zeros(4)
    for p, answer in zip(PROMPTS, answers):
        prompt, resp = encode_chat(backbone, p["prompt"]), answer["response_ids"]
        ids = torch.tensor([prompt + resp])
        with torch.no_grad():
            h = forward_hidden(backbone.model, ids, torch.arange(ids.shape[1])[None], new_cache(backbone.model))
            states = h[0, len(prompt) - 1 : len(prompt) - 1 + len(resp)].half().float()  # as the store keeps them
            logits = heads.logits(heads.hidden(states), backbone.model.get_output_embeddings())  # (K, n, V)
        for k in range(4):
            for i in range(len(resp) - k - 1):
                ranked = logits[k, i].topk(5).indices.tolist()
                hits[0, k] += ranked[0] == resp[i + k + 1]
                hits[1, k] += resp[i + k + 1] in ranked
                counts[k] += 1
    overall = result["overall"]
    assert overall["top1"] == pytest.approx((hits[0] / counts).tolist(), abs=0.02)
    assert overall["top5"] == pytest.approx((hits[1] / counts).tolist(), abs=0.02)
    if kind == "untrained":
        assert max(overall["top5"]) > 0.1  # the count is not trivially zero
