"""Benchmark: aggregation and JSON shape on the tiny model, prompt-file validation, one CLI run on the real model."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import random_heads, tiny_backbone
from medusa_engine.bench import DEFAULT_PROMPTS, BenchError, load_prompts, run_bench
from medusa_engine.interleave import run_interleaved
from medusa_engine.bundle import UNCALIBRATED_HIT_RATES, HeadSet
from medusa_engine.decode import DecodeConfig
from medusa_engine.trace import Step, Timing

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = [{"question_id": i, "category": cat, "prompt": f"Question {i}: tell me about {cat}."}
           for i, cat in enumerate(["math", "coding", "math", "writing", "math"])]


@pytest.fixture(scope="module")
def tiny_setup():
    backbone = tiny_backbone()
    heads = random_heads(backbone)
    return backbone, heads, HeadSet(heads, "random", UNCALIBRATED_HIT_RATES, False).tree(8)


def test_greedy_bench_on_tiny_model(tiny_setup):
    backbone, heads, tree = tiny_setup
    result = run_bench(backbone, heads, tree, PROMPTS, DecodeConfig(max_new_tokens=12))
    overall = result["overall"]
    for key in ("tokens_per_step", "overhead", "speedup", "vanilla_vs_hf", "identical", "speedup_per_prompt",
                "step_ms", "tokens_per_s", "hf_matches_vanilla"):
        assert key in overall, key
    assert overall["identical"] == {"fraction": 1.0, "differing": []} and overall["hf_matches_vanilla"] == 1.0
    assert set(overall["tokens_per_s"]) >= {"vanilla", "medusa", "hf"}
    assert overall["step_ms"]["medusa"]["p25"] <= overall["step_ms"]["medusa"]["median"] <= overall["step_ms"]["medusa"]["p75"]
    assert 1.0 <= overall["tokens_per_step"] and overall["speedup"] > 0 and overall["vanilla_vs_hf"] > 0
    assert set(result["definitions"]) >= {"speedup", "vanilla_vs_hf"}

    rows = result["per_prompt"]
    assert [r["question_id"] for r in rows] == [p["question_id"] for p in PROMPTS]
    for r in rows:
        assert r["identical"] is True and r["first_divergence"] is None
        assert r["vanilla"]["tokens"] == r["medusa"]["tokens"] == r["hf"]["tokens"]
        assert r["medusa"]["steps"] <= r["vanilla"]["steps"] == r["vanilla"]["tokens"]
        assert r["speedup"] == pytest.approx(r["vanilla"]["decode_ms"] / r["medusa"]["decode_ms"])

    cats = result["per_category"]
    assert list(cats) == ["math", "coding", "writing"]
    assert [cats[c]["prompts"] for c in cats] == [3, 1, 1]
    math_rows = [r for r in rows if r["category"] == "math"]
    assert cats["math"]["tokens"]["medusa"] == sum(r["medusa"]["tokens"] for r in math_rows)
    steps = sum(r["medusa"]["steps"] for r in math_rows)
    assert cats["math"]["tokens_per_step"] == pytest.approx(cats["math"]["tokens"]["medusa"] / steps)
    assert cats["coding"]["speedup"] == pytest.approx(rows[1]["speedup"])
    json.dumps(result)  # serialisable


def test_typical_mode_and_no_hf(tiny_setup):
    backbone, heads, tree = tiny_setup
    result = run_bench(backbone, heads, tree, PROMPTS[:2], DecodeConfig(mode="typical", max_new_tokens=6))
    assert result["overall"]["identical"] is None and "vanilla_vs_hf" not in result["overall"]
    assert all("hf" not in r and r["identical"] is None for r in result["per_prompt"])
    result = run_bench(backbone, heads, tree, PROMPTS[:1], DecodeConfig(max_new_tokens=6), hf=False)
    assert "hf" not in result["overall"]["tokens_per_s"] and result["overall"]["identical"]["fraction"] == 1.0


def test_race_advances_the_lane_with_less_compute():
    def lane(name, ms, n):
        return (Step(lane=name, index=i, tokens=[i], text="", timing=Timing(verify_ms=ms)) for i in range(n))

    order = []
    steps = run_interleaved({"slow": (order.append("slow") or s for s in lane("slow", 3.0, 2)),
                  "fast": (order.append("fast") or s for s in lane("fast", 1.0, 6))})
    assert [len(steps["slow"]), len(steps["fast"])] == [2, 6]
    assert order == ["slow", "fast", "fast", "fast", "slow", "fast", "fast", "fast"]


def test_prompt_file_validation(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text('{"question_id": 7, "category": "math", "turns": ["What is 2+2?", "And 3+3?"]}\n\n'
                    '{"turns": ["Hi"]}\n')
    assert load_prompts(good) == [{"question_id": 7, "category": "math", "prompt": "What is 2+2?"},
                                  {"question_id": 3, "category": "none", "prompt": "Hi"}]
    assert len(load_prompts(good, limit=1)) == 1
    mt = load_prompts(DEFAULT_PROMPTS, per_category=2)
    assert len(mt) == 16 and {p["category"] for p in mt} == {p["category"] for p in load_prompts(DEFAULT_PROMPTS)}
    with pytest.raises(BenchError, match="per_category"):
        load_prompts(good, per_category=0)
    assert len(load_prompts(ROOT / "assets" / "mt_bench_question.jsonl")) == 80
    cases = [("missing.jsonl", None, "prompts file not found"),
             ("bad.jsonl", '{"turns": ["ok"]}\n{"turns": [\n', "line 2: not valid JSON"),
             ("noturns.jsonl", '{"question_id": 1, "category": "x"}\n', "line 1: needs a non-empty 'turns'"),
             ("emptyturn.jsonl", '{"turns": ["  "]}\n', "line 1: needs a non-empty 'turns'"),
             ("list.jsonl", '["a"]\n', "line 1: needs a non-empty 'turns'"),
             ("empty.jsonl", "\n", "holds no prompts")]
    for name, text, message in cases:
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(BenchError, match=message):
            load_prompts(tmp_path / name)
    with pytest.raises(BenchError, match="limit must be a positive"):
        load_prompts(good, limit=0)


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "medusa_engine", "bench", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


def test_cli_bench_real_model(tmp_path):
    out = tmp_path / "bench.json"
    done = _cli("--limit", "2", "--max-new-tokens", "8", "--heads", "untrained", "--tree", "4", "--threads", "1",
                "--json", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    settings, env = result["settings"], result["environment"]
    assert settings["max_new_tokens"] == 8 and settings["limit"] == 2 and settings["tree_size"] == 4
    assert settings["mode"] == "greedy" and settings["hf_reference"] is True and settings["date"]
    assert env["heads"] == "untrained" and env["threads"] == 1 and env["dtype"] == "float32" and env["torch"]
    assert env["model"].endswith("SmolLM2-135M-Instruct")
    assert result["overall"]["identical"]["fraction"] == 1.0 and result["overall"]["hf_matches_vanilla"] == 1.0
    assert [r["question_id"] for r in result["per_prompt"]] == [81, 82] and list(result["per_category"]) == ["writing"]
    assert "overall" in done.stdout and "writing" in done.stdout and "speedup" in done.stdout


def test_cli_bench_errors_are_clear(tmp_path, capsys):
    from medusa_engine.__main__ import main

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"turns": ["ok"]}\nnot json\n')
    out = str(tmp_path / "o.json")
    for args, message in ((["--prompts", str(tmp_path / "none.jsonl"), "--json", out], "prompts file not found"),
                          (["--limit", "0", "--json", out], "limit must be a positive"),
                          (["--threads", "0", "--json", out], "threads must be a positive"),
                          (["--max-new-tokens", "0", "--json", out], "max_new_tokens must be a positive"),
                          (["--json", str(tmp_path / "no" / "dir.json")], "directory does not exist")):
        assert main(["bench", *args]) == 2
        assert message in capsys.readouterr().err, args
    done = _cli("--prompts", str(bad), "--json", out)  # the real entry point: exit code 2, no traceback
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "line 2: not valid JSON" in done.stderr
    assert "Traceback" not in done.stderr
