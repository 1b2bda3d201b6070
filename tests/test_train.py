import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from medusa_engine.heads import HeadsConfig, MedusaHeads, load_heads
from medusa_engine.train.calibrate import simulate_tokens_per_step
from medusa_engine.train.features import FeatureStore, capture_last_hidden, compute_missing
from medusa_engine.train.medusa1 import (TrainConfig, build_rows, evaluate, frequent_tokens, previous_tokens,
                                         restricted_vocab, train)
from medusa_engine.tree import chain

ROOT = Path(__file__).resolve().parent.parent


def _examples(n=6, length=30, seed=0):
    rng = np.random.default_rng(seed)
    return [{"id": f"ex{i}", "split": "train", "sampled": False, "prompt_ids": rng.integers(3, 128, 8).tolist(),
             "response_ids": rng.integers(3, 128, length).tolist()} for i in range(n)]


def test_feature_store_append_resume_and_torn_tail(tmp_path):
    store = FeatureStore(tmp_path, 4)
    store.append([("a", np.ones((3, 4))), ("b", np.full((2, 4), 2.0))])
    with open(tmp_path / "features.f16", "ab") as fh:  # a block written but never indexed (killed)
        fh.write(np.zeros((5, 4), dtype=np.float16).tobytes())
    with open(tmp_path / "features.idx.jsonl", "a") as fh:  # a torn index line
        fh.write('{"id": "c", "off')
    again = FeatureStore(tmp_path, 4)
    assert again.index == {"a": (0, 3), "b": (3, 2)} and again.rows == 5
    assert (tmp_path / "features.f16").stat().st_size == 5 * 4 * 2
    np.testing.assert_array_equal(again.matrix()[3:], np.full((2, 4), 2.0))


def test_features_match_the_forward_pass(tmp_path, tiny):
    examples = _examples(2)
    store = FeatureStore(tmp_path, tiny.hidden_size)
    assert compute_missing(tiny, examples, store, progress=False) == 2
    assert compute_missing(tiny, examples, store, progress=False) == 0  # resumable: nothing left
    ex = examples[1]
    with torch.no_grad(), capture_last_hidden(tiny.model) as captured:
        ids = ex["prompt_ids"] + ex["response_ids"][:5]
        tiny.model(torch.tensor([ids]))
    offset, n = store.index["ex1"]
    row = store.matrix()[offset + 5]  # row 5: state after prompt + response[:5]
    np.testing.assert_allclose(row, captured[0][0].numpy(), atol=2e-3, rtol=2e-3)


def test_rows_targets_and_previous_tokens_shift_by_head(tmp_path, tiny):
    examples = _examples(1, length=6)
    store = FeatureStore(tmp_path, tiny.hidden_size)
    compute_missing(tiny, examples, store, progress=False)
    rows = build_rows(examples, store, num_heads=3)
    r = examples[0]["response_ids"]
    assert rows.targets[:, 0].tolist() == r[1:] + [-100]
    assert rows.targets[:, 1].tolist() == r[2:] + [-100, -100]
    # the token before each head's target, what token-input heads read: head 1 reads the root
    assert rows.prev.tolist() == previous_tokens(torch.tensor(r), 3).tolist()
    assert rows.prev[:, 0].tolist() == r
    assert rows.prev[:, 1].tolist() == r[1:] + [0] and rows.prev[:, 2].tolist() == r[2:] + [0, 0]


def test_token_input_heads_learn_what_the_hidden_state_cannot_know(tmp_path, tiny):
    """Answers made of pairs (a, f(a)) with a random: at a row whose root is a, head 1's target f(a) is
    unknowable from the hidden state (which has not read a) but follows from the root. Token-input heads
    learn f and get it right on new answers; plain heads can only memorise."""
    with torch.no_grad():  # embeddings on the hidden states' scale, as in a trained model (random init: 1/50)
        tiny.model.get_input_embeddings().weight.mul_(50)
    rng = np.random.default_rng(0)
    alphabet = np.arange(10, 42)
    f = dict(zip(alphabet.tolist(), rng.permutation(alphabet).tolist()))
    examples = []
    for i in range(24):
        a = rng.choice(alphabet, 20).tolist()
        examples.append({"id": f"p{i}", "split": "train", "sampled": False, "prompt_ids": [3, 4, 5],
                         "response_ids": [t for x in a for t in (x, f[x])]})
    store = FeatureStore(tmp_path, tiny.hidden_size)
    compute_missing(tiny, examples, store, progress=False)
    rows, new = build_rows(examples[:16], store, 2), build_rows(examples[16:], store, 2)
    lm, embed = tiny.model.get_output_embeddings().weight, tiny.model.get_input_embeddings().weight
    config = TrainConfig(num_heads=2, epochs=40, batch_rows=128, lr=3e-2, vocab_subset=0, warmup_steps=5)
    results = {}
    for token_input in (False, True):
        heads, _ = train(rows, lm, replace(config, token_input=token_input), log=lambda e: None, embed_weight=embed)
        top1 = evaluate(heads, new, lm, embed_weight=embed)["top1"][0]
        tau = simulate_tokens_per_step(heads, lm, examples[16:], store, {"chain": chain(1)}, embed_weight=embed)
        results[token_input] = top1, tau["chain"]
    assert results[True][0] > 0.4 and results[False][0] < 0.15  # half the rows follow from their root
    assert results[True][1] > results[False][1] + 0.2
    with pytest.raises(ValueError, match="input embeddings"):
        train(rows, lm, replace(config, token_input=True), log=lambda e: None)


def test_teacher_rows_hold_the_backbones_distribution_over_each_target(tmp_path, tiny):
    """Teacher row of (i, head k) is row i + k of the same example: the state whose lm_head output is the
    backbone's distribution over response[i + k]; its argmax is that token for a greedy answer."""
    prompt = [5, 9, 14]
    with torch.no_grad():
        greedy = tiny.model.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False,
                                     pad_token_id=2, eos_token_id=[]).tolist()[0][3:]
    examples = [{"id": "g", "split": "train", "sampled": False, "prompt_ids": prompt, "response_ids": greedy},
                *_examples(1, length=7)]
    store = FeatureStore(tmp_path, tiny.hidden_size)
    compute_missing(tiny, examples, store, progress=False)
    rows = build_rows(examples, store, num_heads=3)
    lm = tiny.model.get_output_embeddings().weight
    for k in range(3):
        valid = rows.targets[:12, k] >= 0
        teacher = rows.teacher[:12, k][valid]
        assert teacher.tolist() == list(range(k + 1, 12))
        assert (rows.hidden[teacher].float() @ lm.T).argmax(-1).tolist() == rows.targets[:12, k][valid].tolist()
    assert rows.teacher[12:, 0].tolist() == list(range(13, 19)) + [-1]  # second example: its own rows only
    heads, _ = train(rows, lm, TrainConfig(num_heads=3, epochs=2, batch_rows=8, soft_weight=0.5, warmup_steps=1),
                     log=lambda e: None)
    assert heads.num_heads == 3
    with pytest.raises(ValueError, match="soft_weight"):
        TrainConfig(soft_weight=1.5)


def test_evaluate_counts_every_row_when_asked_the_first_rows_by_default():
    """Calibration reads every held-out position (its trees rest on these hit rates); training logs a sample."""
    from medusa_engine.train.medusa1 import Rows

    n, k = 8200, 2
    targets = torch.randint(6, 32, (n, k))
    targets[-200:] = 5  # only rows past the default sample hold token 5, the one every head predicts
    rows = Rows(hidden=torch.ones(n, 8, dtype=torch.float16), targets=targets, teacher=torch.full((n, k), -1),
                prev=torch.zeros(n, k, dtype=torch.long))
    heads = MedusaHeads(HeadsConfig(num_heads=k, hidden_size=8, vocab_size=32))  # zero blocks: they pass h on
    lm = torch.zeros(32, 8)
    lm[5] = 1.0
    sample, every = evaluate(heads, rows, lm), evaluate(heads, rows, lm, max_rows=None)
    assert sample["rows"] == 8000 and sample["top1"] == [0.0, 0.0]
    assert every["rows"] == n and every["top1"] == pytest.approx([200 / n, 200 / n])


def test_restricted_softmax_covering_all_targets_equals_full():
    torch.manual_seed(0)
    heads = MedusaHeads(HeadsConfig(num_heads=2, hidden_size=16, vocab_size=40))
    w = torch.randn(40, 16)
    z = heads.hidden(torch.randn(5, 16))
    tgt = torch.tensor([3, 7, 7, 12, 3])
    full = F.cross_entropy(heads.logits_over(z, w)[0], tgt)
    cols = torch.arange(40)
    torch.testing.assert_close(F.cross_entropy(heads.logits_over(z, w, cols)[0], tgt), full)
    sub = torch.tensor([3, 7, 12])
    restricted = F.cross_entropy(heads.logits_over(z, w, sub)[0], torch.tensor([0, 1, 1, 2, 0]))
    assert restricted < full  # fewer competitors: a lower bound of the full loss


def test_training_learns_a_learnable_pattern(tmp_path, tiny):
    """Responses that repeat a fixed cycle: head k must learn 'the token k steps ahead'."""
    cycle = list(range(10, 22))
    examples = [{"id": f"c{i}", "split": "train", "sampled": False, "prompt_ids": [3, 4, 5 + i],
                 "response_ids": (cycle * 4)[i : i + 36]} for i in range(12)]
    store = FeatureStore(tmp_path, tiny.hidden_size)
    compute_missing(tiny, examples, store, progress=False)
    rows = build_rows(examples, store, 2)
    lm = tiny.model.get_output_embeddings().weight
    before = evaluate(MedusaHeads(HeadsConfig(num_heads=2, hidden_size=64, vocab_size=128)), rows, lm)
    heads, history = train(rows, lm, TrainConfig(num_heads=2, epochs=60, batch_rows=128, lr=3e-3,
                                                 vocab_subset=16, warmup_steps=5), log=lambda e: None)
    after = evaluate(heads, rows, lm)
    assert after["top1"][0] > max(0.5, before["top1"][0] + 0.3)
    assert history[-1]["loss"] < history[0]["loss"]
    tau = simulate_tokens_per_step(heads, lm, examples, store, {"chain": chain(2)})
    assert tau["chain"] > 1.5
    assert sorted(heads.draft_ids.tolist()) == cycle  # the draft vocabulary: the tokens answers use


def test_training_further_continues_from_given_heads(tmp_path, tiny):
    """`train(..., heads=h)` (an earlier sitting's heads, `train medusa1 --init`) trains h itself further, keeps
    nothing of a stale draft vocabulary it is told not to have, and refuses a config of another design."""
    cycle = list(range(10, 22))
    examples = [{"id": f"c{i}", "split": "train", "sampled": False, "prompt_ids": [3, 4, 5 + i],
                 "response_ids": (cycle * 4)[i : i + 36]} for i in range(12)]
    store = FeatureStore(tmp_path, tiny.hidden_size)
    compute_missing(tiny, examples, store, progress=False)
    rows = build_rows(examples, store, 2)
    lm = tiny.model.get_output_embeddings().weight
    config = TrainConfig(num_heads=2, epochs=10, batch_rows=128, vocab_subset=16, warmup_steps=2)
    first, first_log = train(rows, lm, config, log=lambda e: None)
    start = {k: v.clone() for k, v in first.state_dict().items()}
    again, again_log = train(rows, lm, replace(config, draft_vocab=0), heads=first, log=lambda e: None)
    assert again is first and again.draft_ids is None and again.config.draft_vocab == 0
    assert any(not torch.equal(start[k], v) for k, v in again.state_dict().items())
    assert again_log[0]["loss"] < first_log[0]["loss"]  # it starts where the first sitting ended
    with pytest.raises(ValueError, match="the config asks for 3 x shared"):
        train(rows, lm, replace(config, num_heads=3), heads=first, log=lambda e: None)
    with pytest.raises(ValueError, match="token input"):
        train(rows, lm, replace(config, token_input=True), heads=first, log=lambda e: None, embed_weight=lm)


def test_frequent_tokens_most_frequent_first_ignoring_padding():
    tokens = torch.tensor([5, 7, 7, -100, 9, 7, 5, -100, -100])
    assert frequent_tokens(tokens, 2).tolist() == [7, 5]
    assert frequent_tokens(tokens, 10).tolist() == [7, 5, 9]


def test_restricted_vocab_keeps_frequent_ids_and_every_target_and_reindexes_them():
    freq = torch.tensor([7, 5])
    targets = torch.tensor([[9, 5], [-100, 30]])
    cols, mapped = restricted_vocab(freq, targets, 40, 3, torch.Generator().manual_seed(0))
    assert cols.tolist() == sorted(set(cols.tolist())) and {5, 7, 9, 30} <= set(cols.tolist())
    assert len(cols) <= 2 + 3 + 3
    assert mapped[1, 0] == -100
    keep = targets >= 0
    assert torch.equal(cols[mapped[keep]], targets[keep])


@pytest.mark.slow
def test_tiny_cli_pipeline_end_to_end(tmp_path):
    """`train medusa1 --tiny`: real model, 8 prompts, distill -> features -> train -> calibrate -> save."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-m", "medusa_engine", "train", "medusa1", "--tiny", "--data",
                          str(tmp_path / "data"), "--out", str(tmp_path / "heads")], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    calib = json.loads((tmp_path / "heads" / "calibration.json").read_text())
    assert len(calib["growth_order"]) == 63 and len(calib["hit_rates"]) == 4
    heads = load_heads(tmp_path / "heads", 576, 49152)
    assert heads.num_heads == 4
    assert 0 < heads.config.draft_vocab <= 4096  # the distinct response tokens of 8 short answers, at most
    report = json.loads((tmp_path / "heads" / "report.json").read_text())
    assert report["train_rows"] > 0 and "simulated_tokens_per_step" in report["heldout"]

    further = subprocess.run([sys.executable, "-m", "medusa_engine", "train", "medusa1", "--tiny", "--data",
                              str(tmp_path / "data"), "--init", str(tmp_path / "heads"), "--design", "lowrank",
                              "--token-input", "--out", str(tmp_path / "further")], capture_output=True, text=True,
                             env=env, cwd=ROOT, timeout=600)
    assert further.returncode == 0, further.stderr[-2000:]
    again = json.loads((tmp_path / "further" / "report.json").read_text())
    assert again["train_config"]["lm_head"] == "shared"  # the design of the heads it continues
    assert again["train_config"]["token_input"] and load_heads(tmp_path / "further", 576, 49152).config.token_input
    sitting_keys = ("train_examples", "prompt_sets", "train_tokens", "train_minutes")
    assert again["init"]["sittings"] == [{**{k: report[k] for k in sitting_keys}, "stage": "MEDUSA-1"}]
    assert report["prompt_sets"] == {"templates": report["train_examples"]}
    card = (tmp_path / "further" / "README.md").read_text()
    assert "with token input" in card and "continuing" in card and "layout, float16)" in card and f"MEDUSA-1: {report['train_examples']} examples ({report['train_examples']} templates)" in card

    # MEDUSA-2 from these heads, then a second sitting from that set: it loads the set's adapters and
    # trains on answers the first sitting did not see
    def medusa2(init: Path, out: Path, *flags: str) -> tuple[dict, list[str]]:
        run = subprocess.run([sys.executable, "-m", "medusa_engine", "train", "medusa2", "--data", str(tmp_path / "data"),
                              "--init", str(init), "--eval-examples", "2", "--lora-rank", "2", "--out", str(out),
                              *(flags or ("--examples", "2", "--accumulate", "1"))],
                             capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
        assert run.returncode == 0, run.stderr[-2000:]
        return json.loads((out / "report.json").read_text()), (out / "trained_ids.txt").read_text().split()

    first, first_ids = medusa2(tmp_path / "heads", tmp_path / "m2a")
    for name in ("backbone_delta.safetensors", "medusa_lm_head.safetensors"):  # both stored in half precision
        assert {v.dtype for v in load_file(str(tmp_path / "m2a" / name)).values()} == {torch.float16}
    # a heads-only sitting on that MEDUSA-2 set's tuned backbone: its delta and answer list carried over as is
    heads_only = subprocess.run([sys.executable, "-m", "medusa_engine", "train", "medusa1", "--tiny", "--data",
                                 str(tmp_path / "data"), "--init", str(tmp_path / "m2a"), "--token-input", "--out",
                                 str(tmp_path / "m2h")], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert heads_only.returncode == 0, heads_only.stderr[-2000:]
    for name in ("backbone_delta.safetensors", "trained_ids.txt"):
        assert (tmp_path / "m2h" / name).read_bytes() == (tmp_path / "m2a" / name).read_bytes()
    on_tuned = json.loads((tmp_path / "m2h" / "report.json").read_text())
    assert on_tuned["method"].startswith("MEDUSA-1 on a MEDUSA-2 backbone") and on_tuned["quality"] == first["quality"]
    on_tuned_config, m2a_config = (json.loads((tmp_path / d / "config.json").read_text()) for d in ("m2h", "m2a"))
    assert on_tuned_config["delta"] == m2a_config["delta"] and on_tuned_config["delta"]["type"] == "lora"
    assert on_tuned_config["base_model"] == m2a_config["base_model"]  # the original model's name, not the tuned one's
    assert any((tmp_path / "data" / "medusa2_features").iterdir())  # trained on the tuned backbone's features
    # weight averages: a set and its copy average to the set; one on a tuned backbone keeps that backbone
    for name in ("further", "m2h"):
        shutil.copytree(tmp_path / name, tmp_path / f"{name}-copy")
        averaged = subprocess.run([sys.executable, "-m", "medusa_engine", "train", "average", "--heads",
                                   str(tmp_path / name), str(tmp_path / f"{name}-copy"), "--data",
                                   str(tmp_path / "data"), "--out", str(tmp_path / f"{name}-avg")],
                                  capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
        assert averaged.returncode == 0, averaged.stderr[-2000:]
        avg_dir, source = tmp_path / f"{name}-avg", json.loads((tmp_path / name / "report.json").read_text())
        weights, source_weights = (load_file(str(d / "medusa_lm_head.safetensors")) for d in (avg_dir, tmp_path / name))
        assert weights.keys() == source_weights.keys()
        assert all(torch.equal(weights[k], source_weights[k]) for k in weights)
        avg_report = json.loads((avg_dir / "report.json").read_text())
        assert [a["heads"] for a in avg_report["averaged"]] == [str(tmp_path / name), str(tmp_path / f"{name}-copy")]
        assert avg_report["averaged"][0]["sittings"][-1]["train_examples"] == source["train_examples"]
        assert "the element-wise mean of the weights of 2 sets" in (avg_dir / "README.md").read_text()
        assert load_heads(avg_dir, 576, 49152).config.token_input
    for name in ("backbone_delta.safetensors", "trained_ids.txt"):
        assert (tmp_path / "m2h-avg" / name).read_bytes() == (tmp_path / "m2a" / name).read_bytes()
    assert json.loads((tmp_path / "m2h-avg" / "config.json").read_text())["delta"] == m2a_config["delta"]
    assert json.loads((tmp_path / "m2h-avg" / "report.json").read_text())["quality"] == first["quality"]
    assert not (tmp_path / "further-avg" / "backbone_delta.safetensors").exists()
    second, second_ids = medusa2(tmp_path / "m2a", tmp_path / "m2b")
    assert len(first_ids) == 2 and len(second_ids) == 4 and set(first_ids) < set(second_ids)
    assert first["history"][0]["kl"] == 0.0 < second["history"][0]["kl"]  # the second starts tuned
    assert [s["stage"] for s in second["init"]["sittings"]] == ["MEDUSA-1", "MEDUSA-2"]
    assert second["init"]["sittings"][-1]["train_examples"] == 2 and 0 <= second["quality"]["greedy_agreement"] <= 1
    assert second["prompt_sets"] == {"templates": 2} and second["init"]["sittings"][-1]["prompt_sets"] == {"templates": 2}
    # --finish re-evaluates a saved set and keeps the config it was trained with, whatever its own flags say
    again, again_ids = medusa2(tmp_path / "m2a", tmp_path / "m2b", "--finish", "--accumulate", "3")
    assert again["train_config"] == second["train_config"] and again["train_examples"] == 2 and again_ids == second_ids


@pytest.mark.parametrize("init", ["data/heads/m1", {"heads": "data/heads/m1", "sittings": [
    {"train_examples": 1871, "prompt_sets": {"varied": 1871}, "train_tokens": 323749}]}])
def test_medusa2_model_card_names_the_set_it_started_from(tmp_path, init):
    """A MEDUSA-2 report's init: a bare path (sets saved before sittings were recorded) or a dict with them."""
    from medusa_engine.train.cli import write_model_card

    shipped = ROOT / "assets" / "heads" / "smollm2-135m-medusa2"
    for name in ("medusa_lm_head.safetensors", "backbone_delta.safetensors"):  # the card states their precision
        (tmp_path / name).symlink_to(shipped / name)
    report = {**json.loads((shipped / "report.json").read_text()), "init": init}
    write_model_card(tmp_path, report, json.loads((shipped / "calibration.json").read_text()))
    card = (tmp_path / "README.md").read_text()
    assert "continuing data/heads/m1 (its earlier sittings: " in card and "LoRA delta" in card
    assert "'version 2' layout, float16)" in card and "backbone_delta.safetensors (float16)" in card
    assert ("1871 examples (1871 varied), 323749 tokens" in card) == isinstance(init, dict)


def test_medusa1_cli_refuses_a_non_positive_example_count(tmp_path):
    from conftest import run_cli

    code, stderr = run_cli(["train", "medusa1", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                            "--examples", "0"])
    assert code == 2 and "--examples must be a positive number" in stderr, stderr


@pytest.mark.parametrize("command", [["calibrate", "--heads", "x"], ["replay"]])
def test_draft_vocab_must_not_be_negative(tmp_path, command):
    from conftest import run_cli

    code, stderr = run_cli(command + ["--data", str(tmp_path), "--draft-vocab", "-1"])
    assert code == 2 and "--draft-vocab must be >= 0, got -1" in stderr, stderr


def test_replay_draft_vocab_needs_the_data(tmp_path):
    from conftest import run_cli

    code, stderr = run_cli(["replay", "--data", str(tmp_path), "--draft-vocab", "100"])
    assert code == 2 and "--draft-vocab needs the self-distillation data" in stderr, stderr
