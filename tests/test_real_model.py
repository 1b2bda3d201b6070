"""The embedded default model (SmolLM2-135M-Instruct, float32, CPU): greedy Medusa must equal vanilla."""
import pytest

from conftest import random_heads
from medusa_engine.backbone import encode_chat
from medusa_engine.bundle import load_head_set
from medusa_engine.decode import DecodeConfig, medusa_steps, vanilla_steps
from medusa_engine.tree import chain

PROMPTS = ["What is 2+3?", "Write a haiku about autumn.", "List three uses of Python."]


def _ids(steps):
    return [t for s in steps if s.kind == "decode" for t in s.tokens]


def test_default_model_loads_with_chat_template(real):
    ids = encode_chat(real, "hello")
    text = real.tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system") and text.endswith("<|im_start|>assistant\n")
    assert real.eos_token_ids == (2,) and real.hidden_size == 576 and real.vocab_size == 49152


def test_greedy_medusa_equals_vanilla_default_heads(real):
    head_set = load_head_set(None, real)
    cfg = DecodeConfig(max_new_tokens=24)
    ids = encode_chat(real, PROMPTS[0])
    assert _ids(medusa_steps(real, head_set.heads, head_set.tree(16), ids, cfg)) == _ids(vanilla_steps(real, ids, cfg))


@pytest.mark.slow
@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_medusa_equals_vanilla_many(real, prompt):
    cfg = DecodeConfig(max_new_tokens=48)
    ids = encode_chat(real, prompt)
    vanilla = _ids(vanilla_steps(real, ids, cfg))
    shipped = load_head_set(None, real)
    for heads, tree in ((shipped.heads, shipped.tree(64)), (shipped.heads, chain(shipped.heads.num_heads)),
                        (random_heads(real, seed=1), shipped.tree(8))):
        assert _ids(medusa_steps(real, heads, tree, ids, cfg)) == vanilla
