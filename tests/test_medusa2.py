import copy

import pytest
import torch
from safetensors.torch import save_file

from conftest import tiny_backbone
from medusa_engine.backbone import BackboneError, load_backbone
from medusa_engine.bundle import delta_for, load_head_set
from medusa_engine.decode import DecodeConfig, medusa_steps, vanilla_steps
from medusa_engine.heads import HeadsError, save_heads, untrained_heads, with_token_input
from medusa_engine.lora import DELTA_FILE, add_lora, load_lora, lora_enabled, merge_delta
from medusa_engine.train.features import FeatureStore, compute_missing
from medusa_engine.train.medusa2 import Medusa2Config, quality, schedule_progress, train
from medusa_engine.tree import grow

HIT = [[0.5 * 0.6**k * 0.55**r for r in range(10)] for k in range(3)]


def _examples(n=8):
    g = torch.Generator().manual_seed(0)
    return [{"id": str(i), "prompt_ids": torch.randint(3, 128, (6,), generator=g).tolist(),
             "response_ids": torch.randint(3, 128, (20,), generator=g).tolist(), "sampled": False}
            for i in range(n)]


def _ids(steps):
    return [t for s in steps if s.kind == "decode" for t in s.tokens]


def test_lora_starts_as_base_and_teacher_is_adapters_off():
    bb = tiny_backbone()
    ids = torch.tensor([[3, 4, 5, 6]])
    ref = bb.model(ids).logits
    add_lora(bb.model, rank=4, alpha=8)
    torch.testing.assert_close(bb.model(ids).logits, ref)  # B = 0: identical at start
    with torch.no_grad():
        for name, p in bb.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    assert not torch.allclose(bb.model(ids).logits, ref)
    with lora_enabled(bb.model, False):
        torch.testing.assert_close(bb.model(ids).logits, ref)


@pytest.mark.parametrize("token_input", [False, True])
def test_medusa2_trains_merges_and_stays_lossless(tmp_path, token_input):
    bb = tiny_backbone()
    original = copy.deepcopy(bb.model)
    heads = with_token_input(untrained_heads(3, 64, 128)) if token_input else untrained_heads(3, 64, 128)
    heads, delta, history = train(bb, heads, _examples(8), Medusa2Config(lora_rank=4, lora_alpha=8, accumulate=2,
                                                                          lr=1e-2), log=lambda e: None)
    assert len(history) == 4 and any(v.abs().sum() > 0 for k, v in delta.items() if k.endswith("lora_B"))
    if token_input:  # the token projections train too
        assert all(lin.weight.abs().sum() > 0 for lin in heads.tokens)
    q = quality(bb.model, bb.model, _examples(3))  # one LoRA model, adapters switched
    assert 0 <= q["greedy_agreement"] <= 1 and q["perplexity_tuned"] > 0
    # merging the delta into a plain copy gives the wrapped model's outputs
    merged = copy.deepcopy(original)
    assert merge_delta(merged, delta, alpha=8) == 14  # 7 linear layers x 2 decoder layers
    ids = torch.tensor([[3, 9, 27, 81]])
    torch.testing.assert_close(merged(ids).logits, bb.model(ids).logits, atol=1e-5, rtol=1e-5)
    apart = quality(merged, original, _examples(3))  # the shipped form: merged copy vs the original
    assert apart["positions"] == q["positions"] and apart["perplexity_tuned"] == pytest.approx(q["perplexity_tuned"], rel=1e-4)
    assert apart["perplexity_original"] == pytest.approx(q["perplexity_original"], rel=1e-6)
    # greedy MEDUSA-2 equals greedy vanilla of the same tuned backbone
    tuned = tiny_backbone()
    tuned.model = merged
    cfg = DecodeConfig(max_new_tokens=30)
    assert _ids(medusa_steps(tuned, heads, grow(HIT, 16), [3, 4, 5], cfg)) == _ids(vanilla_steps(tuned, [3, 4, 5], cfg))


@pytest.mark.parametrize("subset", [0, 16])
def test_medusa2_heads_loss_on_a_restricted_vocabulary_trains_too(subset):
    bb = tiny_backbone()
    heads = untrained_heads(3, 64, 128)
    before = {k: v.clone() for k, v in heads.state_dict().items()}
    heads, _, history = train(bb, heads, _examples(4), Medusa2Config(lora_rank=4, lora_alpha=8, accumulate=2,
                                                                      lr=1e-2, vocab_subset=subset), log=lambda e: None)
    assert len(history) == 2 and all(h["heads"] > 0 for h in history)
    assert any(not torch.equal(before[k], v) for k, v in heads.state_dict().items())


def test_teacher_from_cached_features_matches_running_the_teacher(tmp_path):
    """The MEDUSA-1 feature cache holds the original model's hidden states: a teacher read from it (float16)
    trains like the teacher's own forward pass; an example missing from the cache runs the teacher."""
    examples, cfg = _examples(4), Medusa2Config(lora_rank=4, lora_alpha=8, accumulate=2, lr=1e-2)
    store = FeatureStore(tmp_path, 64)
    compute_missing(tiny_backbone(), examples[1:], store, progress=False)
    asked = []

    def cached(ex, n):
        asked.append((ex["id"], n))
        return store.first_rows(ex["id"], n)

    runs = {}
    for name, teacher in (("run", None), ("cached", cached)):
        bb = tiny_backbone()  # same seed: same weights and the same LoRA initialisation
        runs[name] = train(bb, untrained_heads(3, 64, 128), examples, cfg, log=lambda e: None, teacher_hidden=teacher)
    assert asked == [(ex["id"], 20) for ex in examples]
    assert store.first_rows("0", 20) is None and store.first_rows("1", 21) is None
    (_, delta_run, hist_run), (_, delta_cached, hist_cached) = runs["run"], runs["cached"]
    for a, b in zip(hist_run, hist_cached):
        assert a["kl"] == pytest.approx(b["kl"], abs=1e-3) and a["heads"] == pytest.approx(b["heads"], rel=1e-2)
    for k in delta_run:
        torch.testing.assert_close(delta_cached[k], delta_run[k], atol=2e-3, rtol=0)


def test_a_later_sitting_starts_from_the_saved_adapters():
    bb = tiny_backbone()
    cfg = Medusa2Config(lora_rank=4, lora_alpha=8, accumulate=2, lr=1e-2)
    _, delta, first = train(bb, untrained_heads(3, 64, 128), _examples(4), cfg, log=lambda e: None)
    assert first[0]["kl"] == 0.0  # B = 0: the student starts as the teacher
    fresh = tiny_backbone()
    add_lora(fresh.model, rank=4, alpha=8)
    assert load_lora(fresh.model, delta) == 14
    ids = torch.tensor([[3, 9, 27, 81]])
    torch.testing.assert_close(fresh.model(ids).logits, bb.model(ids).logits)
    _, _, later = train(tiny_backbone(), untrained_heads(3, 64, 128), _examples(4), cfg, log=lambda e: None,
                        init_delta=delta)
    assert later[0]["kl"] > 0  # starts tuned, away from the original
    other_rank = tiny_backbone()
    add_lora(other_rank.model, rank=2, alpha=4)
    with pytest.raises(ValueError, match="another LoRA rank"):
        load_lora(other_rank.model, delta)
    with pytest.raises(ValueError, match="does not name this model's adapters"):
        load_lora(fresh.model, {k: v for k, v in delta.items() if "layers.0." in k})


def test_schedule_progress_follows_steps_or_the_time_box_whichever_is_further():
    assert schedule_progress(5, 10, 0.0, None) == 0.5
    assert schedule_progress(5, 10, 60.0, 4.0) == 0.5  # a quarter of the box, half the steps
    assert schedule_progress(1, 10, 180.0, 4.0) == 0.75  # the box ends first
    assert schedule_progress(1, 10, 900.0, 4.0) == 1.0
    with pytest.raises(ValueError):
        Medusa2Config(max_minutes=0)
    with pytest.raises(ValueError):
        Medusa2Config(vocab_subset=-1)


def test_medusa2_heads_require_their_backbone_delta(tmp_path, real):
    heads = untrained_heads(2, real.hidden_size, real.vocab_size)
    out = save_heads(heads, tmp_path / "m2", {"vocab_size": real.vocab_size,
                                              "delta": {"file": DELTA_FILE, "type": "lora", "rank": 2, "alpha": 4}})
    name = "model.layers.0.self_attn.q_proj"
    save_file({f"{name}.lora_A": torch.zeros(2, 576), f"{name}.lora_B": torch.zeros(576, 2)}, str(out / DELTA_FILE))
    assert delta_for(out) == str(out.resolve())
    with pytest.raises(HeadsError, match="MEDUSA-2 heads"):
        load_head_set(out, real)
    tuned = load_backbone(None, device="cpu", dtype="float32", delta=out)
    assert "MEDUSA-2" in tuned.name and load_head_set(out, tuned).heads.num_heads == 2
    (out / DELTA_FILE).write_bytes(b"broken")
    with pytest.raises(BackboneError, match="cannot apply"):
        load_backbone(None, device="cpu", dtype="float32", delta=out)
