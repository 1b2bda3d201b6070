import pytest
import torch

from conftest import random_heads, tiny_backbone
from medusa_engine.backbone import encode_chat, forward_hidden, new_cache
from medusa_engine.cache import keep_slots
from medusa_engine.decode import DecodeConfig, DecodeError, medusa_steps, summarize, vanilla_steps
from medusa_engine.heads import untrained_heads, with_token_input
from medusa_engine.trace import Step
from medusa_engine.tree import TreeSpec, chain, grow

HIT = [[0.5 * 0.6**k * 0.55**r for r in range(10)] for k in range(4)]
TREES = {"root-only": TreeSpec.from_paths([]), "chain": chain(4), "grown-8": grow(HIT, 8),
         "grown-32": grow(HIT, 32), "wide": TreeSpec.from_paths([[r] for r in range(10)])}


def _ids(steps):
    return [t for s in steps if s.kind == "decode" for t in s.tokens]


def test_tree_logits_equal_each_path_run_alone(tiny):
    model, lm_head = tiny.model, tiny.model.get_output_embeddings()
    prefix = list(range(3, 20))
    spec = grow(HIT, 12)
    buf = spec.buffers(top_k=10)
    tokens = torch.randint(3, 128, (spec.size,))
    with torch.inference_mode():
        cache = new_cache(model)
        forward_hidden(model, torch.tensor([prefix]), torch.arange(len(prefix))[None], cache)
        p = len(prefix)
        bias = torch.zeros(spec.size, p + spec.size).masked_fill(
            torch.cat([torch.zeros(spec.size, p, dtype=torch.bool), ~buf.mask], 1), torch.finfo(torch.float32).min)
        tree_logits = lm_head(forward_hidden(model, tokens[None], (p + buf.depths)[None], cache, bias[None, None]))[0]
        for node in range(spec.size):
            path, j = [], node
            while j >= 0:
                path.append(j)
                j = spec.parents[j]
            seq = prefix + tokens[path[::-1]].tolist()
            alone = model(torch.tensor([seq])).logits[0, -1]
            torch.testing.assert_close(tree_logits[node], alone, atol=1e-4, rtol=1e-4)


def test_keep_slots_gathers_then_truncates(tiny):
    model = tiny.model
    seq = list(range(5, 25))
    with torch.inference_mode():
        cache = new_cache(model)
        forward_hidden(model, torch.tensor([seq]), torch.arange(len(seq))[None], cache)
        before = [(layer.keys.clone(), layer.values.clone()) for layer in cache.layers]
        keep_slots(cache, 10, torch.tensor([12, 15, 19]))
        assert cache.get_seq_length() == 13
        order = list(range(10)) + [12, 15, 19]
        for layer, (k, v) in zip(cache.layers, before):
            torch.testing.assert_close(layer.keys, k[:, :, order])
            torch.testing.assert_close(layer.values, v[:, :, order])
        keep_slots(cache, 10, 2)  # an int: keep the next two positions where they are, drop the rest
        assert cache.get_seq_length() == 12
        for layer, (k, v) in zip(cache.layers, before):
            assert torch.equal(layer.keys, k[:, :, order[:12]]) and torch.equal(layer.values, v[:, :, order[:12]])


@pytest.mark.parametrize("tree", list(TREES))
@pytest.mark.parametrize("seed", [0, 1])
def test_greedy_medusa_equals_vanilla_tiny(tree, seed):
    backbone = tiny_backbone(seed=seed)
    cfg = DecodeConfig(max_new_tokens=40)
    prompt = list(range(3, 13))
    vanilla = _ids(vanilla_steps(backbone, prompt, cfg))
    for heads in (random_heads(backbone, seed=seed), untrained_heads(4, 64, 128),
                  random_heads(backbone, lm_head="per_head", seed=seed),
                  random_heads(backbone, seed=seed).set_draft_vocab(torch.arange(3, 100, 2)),
                  random_heads(backbone, seed=seed, token_input=True)):
        medusa = _ids(medusa_steps(backbone, heads, TREES[tree], prompt, cfg))
        assert medusa == vanilla


def test_acceptance_happens_and_compaction_is_exercised():
    """Untrained heads guess the base's next token at every depth; a tiny random model repeats
    itself, so some steps must accept more than the root token (else the test proves little)."""
    backbone = tiny_backbone(seed=0)
    steps = list(medusa_steps(backbone, untrained_heads(4, 64, 128), TREES["grown-32"], list(range(3, 13)),
                              DecodeConfig(max_new_tokens=60)))
    assert max(s.accepted for s in steps if s.kind == "decode") >= 1


def test_trace_shows_the_head_rows_the_accepted_tokens_came_from():
    """Token-input heads guess after each node: the trace's row for head d is the one its accepted token
    came from, also off the top-1 chain (here: after a rank-1 token of head 2)."""
    backbone = tiny_backbone(seed=0)
    torch.manual_seed(0)
    heads = with_token_input(untrained_heads(4, 64, 128))
    with torch.no_grad():
        for lin in heads.tokens:
            lin.weight.normal_(0, 1.0)
    steps = [s for s in medusa_steps(backbone, heads, TREES["grown-32"], list(range(3, 13)),
                                     DecodeConfig(max_new_tokens=60)) if s.kind == "decode"]
    accepted = [(s, s.nodes[i]) for s in steps for i in s.chosen_nodes[1:]]
    assert any(n.depth == 3 and s.nodes[n.parent].rank > 0 for s, n in accepted)  # a row off the chain
    for s, n in accepted:
        assert s.head_topk_tokens[n.depth - 1][n.rank] == n.token
        assert s.head_topk_probs[n.depth - 1][n.rank] == pytest.approx(n.head_prob)


def test_max_new_tokens_is_exact_and_eos_ends_output(tiny):
    heads = untrained_heads(4, 64, 128)
    for n in (1, 2, 7, 33):
        steps = list(medusa_steps(tiny, heads, TREES["grown-32"], list(range(3, 13)), DecodeConfig(max_new_tokens=n)))
        assert len(_ids(steps)) == n and steps[-1].stop_reason in ("max_new_tokens", "eos")
        assert len(_ids(vanilla_steps(tiny, list(range(3, 13)), DecodeConfig(max_new_tokens=n)))) == n
    # make the 6th greedy token the EOS: both lanes must stop right after its first occurrence
    free_run = _ids(vanilla_steps(tiny, list(range(3, 13)), DecodeConfig(max_new_tokens=30)))
    eos = free_run[5]
    tiny.model.generation_config.eos_token_id = eos
    cfg = DecodeConfig(max_new_tokens=30)
    vanilla = _ids(vanilla_steps(tiny, list(range(3, 13)), cfg))
    medusa_all = list(medusa_steps(tiny, heads, TREES["grown-32"], list(range(3, 13)), cfg))
    assert vanilla == free_run[: free_run.index(eos) + 1]
    assert _ids(medusa_all) == vanilla and medusa_all[-1].stop_reason == "eos"


@pytest.mark.parametrize("token_input", [False, True])
def test_step_records_are_complete_and_serialisable(tiny, token_input):
    import json

    heads = random_heads(tiny, token_input=token_input)
    spec = TREES["grown-8"]
    steps = list(medusa_steps(tiny, heads, spec, list(range(3, 13)), DecodeConfig(max_new_tokens=12)))
    assert steps[0].kind == "prefill" and steps[0].tokens == []
    for s in steps[1:]:
        assert len(s.nodes) == spec.size and len(s.mask) == spec.size
        assert len(s.head_topk_tokens) == spec.depth and len(s.head_topk_tokens[0]) == 10  # the heads it reads
        assert s.nodes[0].token == s.root_token == s.tokens[0]
        assert [s.nodes[i].token for i in s.chosen_nodes][: len(s.tokens)] == s.tokens
        assert s.accept_lengths[s.chosen_row] == s.accepted
        assert s.timing.verify_ms > 0
        again = Step.from_dict(json.loads(json.dumps(s.to_dict())))
        assert again == s
    summary = summarize(steps, "p", list(range(3, 13)), DecodeConfig(max_new_tokens=12), {})
    assert summary.tokens == 12 and summary.steps == len(steps) - 1
    assert json.loads(json.dumps(summary.to_dict()))["tokens_per_step"] == summary.tokens_per_step


def test_typical_mode_runs_and_is_deterministic(tiny):
    heads = random_heads(tiny)
    cfg = DecodeConfig(mode="typical", temperature=0.9, epsilon=0.2, max_new_tokens=20)
    a = _ids(medusa_steps(tiny, heads, TREES["grown-8"], list(range(3, 13)), cfg))
    b = _ids(medusa_steps(tiny, heads, TREES["grown-8"], list(range(3, 13)), cfg))
    assert a == b and len(a) == 20
    steps = list(medusa_steps(tiny, heads, TREES["grown-8"], list(range(3, 13)), cfg))
    assert all(n.threshold is not None for s in steps[1:] for n in s.nodes[1:])


@pytest.mark.parametrize("kwargs,match", [
    ({"max_new_tokens": 0}, "positive"), ({"max_new_tokens": -3}, "positive"), ({"max_new_tokens": 2.5}, "positive"),
    ({"mode": "beam"}, "mode"), ({"mode": "typical", "temperature": 0}, "temperature must be > 0"),
    ({"epsilon": 0}, "epsilon"), ({"epsilon": 1.5}, "epsilon"), ({"alpha": float("nan")}, "finite"),
    ({"alpha": 2.0}, "alpha"), ({"temperature": float("inf")}, "finite"), ({"top_k": 0}, "top_k"),
])
def test_bad_settings(kwargs, match):
    with pytest.raises(DecodeError, match=match):
        DecodeConfig(**kwargs)


def test_bad_inputs(tiny):
    heads = untrained_heads(2, 64, 128)
    with pytest.raises(DecodeError, match="exceeds the model's context"):
        list(medusa_steps(tiny, heads, chain(2), list(range(3, 500)), DecodeConfig(max_new_tokens=20)))
    with pytest.raises(DecodeError, match="context"):
        list(vanilla_steps(tiny, list(range(3, 500)), DecodeConfig(max_new_tokens=20)))
    with pytest.raises(ValueError, match="exceeds the 2 heads"):
        list(medusa_steps(tiny, heads, chain(3), [3, 4], DecodeConfig()))
    with pytest.raises(ValueError, match="empty"):
        encode_chat(tiny, "   ")
    with pytest.raises(DecodeError, match="empty"):
        list(vanilla_steps(tiny, [], DecodeConfig()))


def test_keep_slots_on_a_static_cache(tiny):
    from transformers import StaticCache

    model = tiny.model
    seq = list(range(5, 25))
    with torch.inference_mode():
        cache = StaticCache(config=model.config, max_cache_len=64)
        forward_hidden(model, torch.tensor([seq]), torch.arange(len(seq))[None], cache)
        assert cache.get_seq_length() == 20
        before = [(layer.keys.clone(), layer.values.clone()) for layer in cache.layers]
        keep_slots(cache, 10, torch.tensor([12, 15, 19]))
        assert int(cache.get_seq_length()) == 13
        order = list(range(10)) + [12, 15, 19]
        for layer, (k, v) in zip(cache.layers, before):
            torch.testing.assert_close(layer.keys[:, :, :13], k[:, :, order])
            torch.testing.assert_close(layer.values[:, :, :13], v[:, :, order])
        keep_slots(cache, 10, 2)
        assert int(cache.get_seq_length()) == 12
        for layer, (k, v) in zip(cache.layers, before):
            assert torch.equal(layer.keys[:, :, :12], k[:, :, order[:12]])
