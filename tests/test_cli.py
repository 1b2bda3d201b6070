import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "medusa_engine", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


def test_generate_json_medusa_equals_vanilla():
    medusa = _cli("generate", "--prompt", "What is 2+3?", "--max-new-tokens", "12", "--tree", "8", "--json")
    vanilla = _cli("generate", "--prompt", "What is 2+3?", "--max-new-tokens", "12", "--vanilla", "--json")
    assert medusa.returncode == 0, medusa.stderr
    m, v = json.loads(medusa.stdout), json.loads(vanilla.stdout)
    assert m["token_ids"] == v["token_ids"] and 1 <= m["tokens"] <= 12
    assert m["lane"] == "medusa" and m["environment"]["tree_size"] == 8 and m["steps"] <= m["tokens"]
    assert "5" in m["text"]


def test_generate_errors_are_clear():
    for args, message in ((["--prompt", "   "], "prompt is empty"),
                          (["--prompt", "hi", "--tree", "65"], "tree size must lie in 1..64"),
                          (["--prompt", "hi", "--max-new-tokens", "0"], "max_new_tokens must be a positive"),
                          (["--prompt", "hi", "--mode", "typical", "--temperature", "0"], "temperature must be > 0"),
                          (["--prompt", "hi", "--heads", "/nonexistent/heads"], "heads directory not found")):
        out = _cli("generate", *args)
        assert out.returncode == 2 and message in out.stderr, (args, out.stderr[-500:])
        assert "Traceback" not in out.stderr
