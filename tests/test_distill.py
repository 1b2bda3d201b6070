"""The distillation prompt set and the resumable generator, on a tiny random Llama (CPU, fast)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from medusa_engine.backbone import Backbone
from medusa_engine.train import distill
from medusa_engine.train.prompts import CATEGORIES, build_prompts
from medusa_engine.train.prompts_varied import PROMPT_SETS

MT_BENCH = Path(__file__).resolve().parents[1] / "assets" / "mt_bench_question.jsonl"


@pytest.fixture(scope="module")
def prompts():
    return build_prompts()


@pytest.fixture(scope="module", params=sorted(PROMPT_SETS))
def any_set(request):
    return request.param, PROMPT_SETS[request.param]()


def test_prompts_many_unique_all_categories(any_set):
    _, prompts = any_set
    assert len(prompts) >= 6000
    assert len({p.id for p in prompts}) == len(prompts)
    assert len({p.text for p in prompts}) == len(prompts)
    assert {p.category for p in prompts} == set(CATEGORIES)
    for cat in CATEGORIES:
        assert sum(p.category == cat for p in prompts) >= 500, cat
    assert all(p.text.strip() and "{" not in p.text.split("```")[0] for p in prompts)  # no unfilled fields


def test_prompts_deterministic(any_set):
    name, prompts = any_set
    again = PROMPT_SETS[name]()
    assert [(p.id, p.text) for p in again] == [(p.id, p.text) for p in prompts]


def test_prompts_avoid_mt_bench(any_set):
    _, prompts = any_set
    firsts = [json.loads(line)["turns"][0] for line in MT_BENCH.read_text().splitlines() if line.strip()]
    assert len(firsts) >= 80

    def key(s: str) -> str:
        return " ".join(s.lower().split())[:60]

    bench_full = {" ".join(q.lower().split()) for q in firsts}
    bench_keys = {key(q) for q in firsts}
    for p in prompts:
        assert " ".join(p.text.lower().split()) not in bench_full, p.id
        assert key(p.text) not in bench_keys, (p.id, p.text)
        assert not any(" ".join(q.lower().split()) in " ".join(p.text.lower().split()) for q in firsts), p.id


def test_the_varied_set_shares_no_prompt_or_id_with_the_first(prompts):
    varied = PROMPT_SETS["varied"]()
    assert not {p.text for p in varied} & {p.text for p in prompts}
    assert not {p.id for p in varied} & {p.id for p in prompts}
    assert all(p.id.startswith(f"varied-{p.category}-") for p in varied)


def test_the_open_set_shares_no_prompt_or_id_with_the_other_two(prompts):
    open_set, varied = PROMPT_SETS["open"](), PROMPT_SETS["varied"]()
    others = prompts + varied
    assert not {p.text for p in open_set} & {p.text for p in others}
    assert not {p.id for p in open_set} & {p.id for p in others}
    assert all(p.id.startswith(f"open-{p.category}-") for p in open_set)


# --- generation, on a tiny random model -------------------------------------------------------

class TinyTokenizer:
    """Just what `encode_chat` needs: a chat template that maps characters to ids 3..127."""

    chat_template = "tiny"
    eos_token_id = 2

    def apply_chat_template(self, messages, add_generation_prompt=True, tokenize=True):
        text = "".join(m["content"] for m in messages)
        return [1] + [3 + ord(c) % 125 for c in text[:40]]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny model needs no parallelism; two OpenMP threads on a busy 2-core box make each step ~100x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def backbone():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=1, eos_token_id=2, pad_token_id=2)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # EOS takes the place of a common token: some answers end early, others run to the limit
        model.lm_head.weight[2] = model.lm_head.weight[4] * 1.5
    return Backbone(model=model, tokenizer=TinyTokenizer(), name="tiny", source="tiny",
                    device=torch.device("cpu"), dtype=torch.float32)


def run(path, backbone, prompts, **kw):
    kw = {"batch_size": 4, "max_new_tokens": 12, "sample_share": 0.3, "progress": False} | kw
    return distill.generate(path, backbone, prompts, **kw)


def test_generate_writes_valid_lines(tmp_path, backbone, prompts):
    subset = prompts[::400]  # 16 prompts from every category
    out = tmp_path / "d.jsonl"
    stats = run(out, backbone, subset)
    assert stats["new"] == len(subset) == stats["done"]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == sorted(p.id for p in subset)
    by_id = {p.id: p for p in subset}
    for r in rows:
        assert set(r) == {"id", "category", "split", "sampled", "prompt_ids", "response_ids"}
        assert r["category"] == by_id[r["id"]].category
        assert r["split"] == distill.split_of(r["id"]) and r["split"] in ("train", "heldout")
        assert r["sampled"] == distill.is_sampled(r["id"], 0.3)
        assert r["prompt_ids"] == backbone.tokenizer.apply_chat_template([{"content": by_id[r["id"]].text}])
        resp = r["response_ids"]
        assert 1 <= len(resp) <= 12
        assert 2 not in resp[:-1]  # EOS only ever as the last token
        assert len(resp) == 12 or resp[-1] == 2
    assert any(r["sampled"] for r in rows) and not all(r["sampled"] for r in rows)
    assert any(r["response_ids"][-1] == 2 for r in rows) and any(len(r["response_ids"]) == 12 for r in rows)
    assert (tmp_path / "d.log").read_text().count("\n") >= len(subset) // 4
    assert distill.load_examples(out) == rows
    assert distill.load_examples(out, "train") == [r for r in rows if r["split"] == "train"]


def test_greedy_rows_match_unbatched(tmp_path, backbone, prompts):
    """Left padding with an attention mask gives the same greedy answer as running a prompt alone."""
    subset = [p for p in prompts[::97] if not distill.is_sampled(p.id, 0.3)][:4]
    run(tmp_path / "a.jsonl", backbone, subset)
    run(tmp_path / "b.jsonl", backbone, subset, batch_size=1)
    a = {r["id"]: r["response_ids"] for r in distill.load_examples(tmp_path / "a.jsonl")}
    b = {r["id"]: r["response_ids"] for r in distill.load_examples(tmp_path / "b.jsonl")}
    assert a == b


def test_resume_skips_done_and_repairs_torn_line(tmp_path, backbone, prompts):
    subset = prompts[5::500]  # 13 prompts
    out = tmp_path / "d.jsonl"
    run(out, backbone, subset[:6])
    first = out.read_text().splitlines()
    # a kill mid-write: half a line at the end of the file
    with open(out, "a") as fh:
        fh.write(first[0][: len(first[0]) // 2])
    assert len(distill.load_examples(out)) == 6  # the reader ignores it
    stats = run(out, backbone, subset)
    assert stats["new"] == len(subset) - 6 and stats["done"] == len(subset)
    lines = out.read_text().splitlines()
    assert lines[:6] == first  # old lines untouched, the torn one gone
    assert sorted(json.loads(x)["id"] for x in lines) == sorted(p.id for p in subset)
    assert run(out, backbone, subset)["new"] == 0  # nothing left to do
    # a complete but unparsable last line is dropped too
    with open(out, "a") as fh:
        fh.write('{"id": "broken"\n')
    assert len(distill.repair_and_read(out)) == len(subset)
    assert out.read_text() == "\n".join(lines) + "\n"


def test_eos_truncation_and_split_determinism():
    assert distill.truncate_at_eos([5, 6, 2, 7, 2], {2}) == [5, 6, 2]
    assert distill.truncate_at_eos([5, 6, 7], {2}) == [5, 6, 7]
    assert distill.truncate_at_eos([2, 2, 2], {2}) == [2]
    ids = [f"math-{i:04d}" for i in range(2000)]
    splits = [distill.split_of(i) for i in ids]
    assert splits == [distill.split_of(i) for i in ids]
    assert 0.02 < splits.count("heldout") / len(ids) < 0.08
    share = sum(distill.is_sampled(i) for i in ids) / len(ids)
    assert 0.15 < share < 0.25
    assert distill.split_of("math-0001", 0.0) == "train" and distill.split_of("math-0001", 1.0) == "heldout"


def test_features_captured_during_generation_equal_a_forward_pass(tmp_path, backbone, prompts):
    from medusa_engine.train.features import FeatureStore, compute_missing

    subset = prompts[::800]
    out = tmp_path / "gen" / "d.jsonl"
    run(out, backbone, subset, sample_share=0.0)
    captured = FeatureStore(out.parent, backbone.hidden_size)
    examples = distill.load_examples(out)
    assert set(captured.index) == {ex["id"] for ex in examples}
    recomputed = FeatureStore(tmp_path / "ref", backbone.hidden_size)
    compute_missing(backbone, examples, recomputed, progress=False)
    for ex in examples:
        (o1, n1), (o2, n2) = captured.index[ex["id"]], recomputed.index[ex["id"]]
        assert n1 == n2 == len(ex["response_ids"])
        a, b = captured.matrix()[o1 : o1 + n1], recomputed.matrix()[o2 : o2 + n2]
        assert abs(a.astype("float32") - b.astype("float32")).max() < 2e-2  # left padding vs none: float noise


def test_a_second_generator_on_the_same_file_is_refused(tmp_path, backbone, prompts):
    out = tmp_path / "d.jsonl"
    with distill._exclusive(out):
        with pytest.raises(RuntimeError, match="already generating"):
            run(out, backbone, prompts[:2])


@pytest.mark.parametrize("argv, message", [(["--skip", "7000"], "leaves no prompts (the set has 6400)"),
                                           (["--skip", "-1"], "--skip must be >= 0")])
def test_distill_refuses_a_skip_past_the_prompt_set(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        distill.main(["--out", "unused/distill.jsonl", *argv])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_skip_starts_past_the_prompts_another_data_set_answered(tmp_path, backbone, prompts, monkeypatch):
    """`--skip N` answers the prompts after the first N of the fixed order, none of the first N."""
    seen = {}
    monkeypatch.setattr(distill, "load_backbone", lambda *a, **k: backbone)
    monkeypatch.setattr(distill, "generate", lambda out, bb, ps, **k: seen.update(ids=[p.id for p in ps]) or
                        {"done": len(ps), "new": 0, "tokens": 0, "seconds": 0.0})
    distill.main(["--out", str(tmp_path / "d.jsonl"), "--skip", "5", "--limit", "3"])
    ordered = [p.id for p in sorted(prompts, key=lambda p: distill.unit_hash("order", p.id))]
    assert seen["ids"] == ordered[5:8]
    distill.main(["--out", str(tmp_path / "v.jsonl"), "--prompt-set", "varied", "--limit", "3"])
    varied = sorted(PROMPT_SETS["varied"](), key=lambda p: distill.unit_hash("order", p.id))
    assert seen["ids"] == [p.id for p in varied[:3]]


def test_prompt_set_counts_tell_the_sets_apart_by_id():
    from medusa_engine.train.prompts_varied import prompt_set_counts

    assert prompt_set_counts(["writing-0001", "varied-math-0002", "varied-stem-0100"]) == {"templates": 1, "varied": 2}
    assert prompt_set_counts(["open-coding-0003", "writing-0002", "open-math-0100"]) == {"open": 2, "templates": 1}
    assert prompt_set_counts([]) == {}
