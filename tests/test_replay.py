"""Replay's tokens/step equals what the engine's greedy Medusa runs actually achieve."""
import pytest

from conftest import random_heads, tiny_backbone
from medusa_engine.backbone import encode_chat
from medusa_engine.bundle import UNCALIBRATED_HIT_RATES, HeadSet
from medusa_engine.decode import DecodeConfig, medusa_steps
from medusa_engine.heads import untrained_heads
from medusa_engine.train.replay import greedy_answers, replay_tokens_per_step

PROMPTS = [{"question_id": i, "category": c, "prompt": p} for i, (c, p) in
           enumerate([("writing", "abcabc"), ("math", "1+1=2, 2+2="), ("writing", "hello hello hello")])]


@pytest.mark.parametrize("kind", ["untrained", "random"])
def test_replay_equals_the_engine(tmp_path, kind):
    backbone = tiny_backbone(seed=5)
    heads = untrained_heads(4, 64, 128) if kind == "untrained" else random_heads(backbone, seed=5)
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
