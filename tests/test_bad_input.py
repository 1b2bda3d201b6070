"""Bad input through the three surfaces, each answered by a clear message:

- the Python API (`medusa_engine.run.generate`): a ValueError naming the problem;
- the CLI (`python -m medusa_engine generate`): exit code 2, an `error:` line, no traceback;
- the app's /race endpoint (gradio_client, or raw HTTP for what the client cannot send): a gr.Error,
  and the app stays up (a good request still succeeds afterwards).

API and CLI share one table (the CLI runs in-process through `main`; a few cases also run as a real
subprocess). They decode with a tiny random model that carries the real tokenizer, so each case
takes well under a second. Decisions: control characters are text (accepted, decoded normally);
lone surrogates (what undecodable bytes become) are refused.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from conftest import run_cli
from test_app_helpers import TINY_HEADS, launched, tiny_engine

from medusa_engine.bundle import DEFAULT_HEADS
from medusa_engine.heads import save_heads, untrained_heads

ROOT = Path(__file__).resolve().parent.parent
CONTROL = "ring\x07 \x1b[31mred\x1b[0m del\x7f back\x08 tab\tend"  # no NUL: argv cannot carry one
HUB_MODEL = "nobody-here/no-such-model-xyz"


@dataclass(frozen=True)
class Case:
    """One bad input: generate() keyword arguments (mapped one-to-one to CLI flags) and the message
    expected, or `cli_match` where argparse answers first."""

    id: str
    kwargs: dict
    match: str
    cli_match: str | None = None
    surfaces: tuple[str, ...] = ("api", "cli")
    needs: dict = field(default_factory=dict)


CASES = [
    Case("empty-prompt", {"prompt": ""}, "prompt is empty"),
    Case("whitespace-prompt", {"prompt": " \n\t  "}, "prompt is empty"),
    Case("prompt-over-context", {"prompt": "word " * 600}, "exceeds the model's context"),
    Case("lone-surrogate", {"prompt": "caf\udce9 au lait"}, "not valid text.*lone surrogate"),
    Case("bytes-prompt", {"prompt": b"\xff\xfe hello"}, "prompt must be text", surfaces=("api",)),
    Case("system-surrogate", {"system": "be \ud800 brief"}, "system prompt is not valid text"),
    Case("max-new-0", {"max_new_tokens": 0}, "max_new_tokens must be a positive integer"),
    Case("max-new-negative", {"max_new_tokens": -5}, "max_new_tokens must be a positive integer"),
    Case("max-new-huge", {"max_new_tokens": 10**9}, "exceeds the model's context"),
    Case("max-new-fraction", {"max_new_tokens": 2.5}, "max_new_tokens must be a positive integer",
         cli_match="argument --max-new-tokens: invalid int value: '2.5'"),
    Case("temperature-nan", {"mode": "typical", "temperature": float("nan")}, "temperature must be a finite number"),
    Case("temperature-inf", {"temperature": float("inf")}, "temperature must be a finite number"),
    Case("temperature-0-typical", {"mode": "typical", "temperature": 0.0}, "temperature must be > 0 for typical"),
    Case("epsilon-0", {"epsilon": 0.0}, r"epsilon must lie in \(0, 1\]"),
    Case("epsilon-above-1", {"epsilon": 1.5}, r"epsilon must lie in \(0, 1\]"),
    Case("epsilon-negative", {"epsilon": -0.1}, r"epsilon must lie in \(0, 1\]"),
    Case("epsilon-nan", {"epsilon": float("nan")}, "epsilon must be a finite number"),
    Case("alpha-0", {"alpha": 0.0}, r"alpha must lie in \(0, 1\]"),
    Case("alpha-above-1", {"alpha": 2.0}, r"alpha must lie in \(0, 1\]"),
    Case("alpha-nan", {"alpha": float("nan")}, "alpha must be a finite number"),
    Case("mode-unknown", {"mode": "beam"}, "mode must be one of", cli_match="argument --mode: invalid choice: 'beam'"),
    Case("tree-size-0", {"tree": "0"}, "tree size must lie in 1..64"),
    Case("tree-size-65", {"tree": "65"}, "tree size must lie in 1..64"),
    Case("tree-word", {"tree": "wide"}, "tree must be 'chain', a size 1..64 or a .json file"),
    Case("tree-deeper-than-heads", {"tree": "{files}/deep.json"}, "tree depth 5 exceeds the 4 heads"),
    Case("tree-rank-beyond-top-k", {"tree": "{files}/rank.json"}, "uses rank 10 but heads only propose their top-10"),
    Case("tree-not-prefix-closed", {"tree": "{files}/gap.json"}, "not prefix-closed: .* needs its parent"),
    Case("tree-duplicate-path", {"tree": "{files}/dup.json"}, "appears twice"),
    Case("tree-negative-rank", {"tree": "{files}/negative.json"}, "ranks >= 0"),
    Case("tree-fractional-rank", {"tree": "{files}/fraction.json"}, "must hold whole-number ranks"),
    Case("tree-not-a-list", {"tree": "{files}/object.json"}, "a tree must be a list of paths"),
    Case("tree-malformed-json", {"tree": "{files}/broken.json"}, "cannot read a tree from"),
    Case("tree-file-missing", {"tree": "{files}/absent.json"}, "cannot read a tree from"),
    Case("heads-hidden-size", {"heads": "{files}/hidden"}, "hidden size 32, the backbone has 64"),
    Case("heads-vocab", {"heads": "{files}/vocab"}, "vocabulary of 1000, the backbone has 49152"),
    Case("heads-from-another-model", {"heads": str(DEFAULT_HEADS)}, "trained for another model"),
    Case("heads-missing-dir", {"heads": "{files}/nowhere"}, "heads directory not found"),
    Case("heads-no-checkpoint", {"heads": "{files}/empty"}, "no Medusa heads in"),
    Case("heads-corrupt", {"heads": "{files}/corrupt"}, "corrupt or truncated"),
    Case("heads-truncated", {"heads": "{files}/truncated"}, "corrupt or truncated"),
    Case("heads-pickle-with-code", {"heads": "{files}/pickled"}, "refused to load .*not a plain tensor checkpoint"),
    Case("heads-hub-id-offline", {"heads": "nobody-here/no-such-heads"},
         "cannot fetch heads .* from the Hugging Face Hub"),
    Case("model-hub-id-offline", {"model": HUB_MODEL}, "Hub could not be reached"),
    Case("model-path-missing", {"model": "/nonexistent/model"}, "model path not found"),
    Case("model-dir-without-config", {"model": "{files}/empty"}, "without config.json"),
    Case("model-config-not-json", {"model": "{files}/badconfig"}, "not a valid JSON file"),
    Case("model-weights-missing", {"model": "{files}/noweights"}, "no file named model.safetensors"),
    Case("dtype-unknown", {"dtype": "float8"}, "unknown dtype 'float8'"),
    Case("device-unknown", {"device": "banana"}, "unknown device 'banana'"),
    Case("device-cuda-absent", {"device": "cuda"}, "not available", needs={"no_cuda": True}),
]
GOOD = {"prompt": "Say hi.", "max_new_tokens": 4, "tree": "8"}


def _bad_files(root: Path, tiny_dir: Path, marker: Path) -> None:
    """Every bad file the table refers to, under `root`."""
    trees = {"deep": [[0], [0, 0], [0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0, 0]], "rank": [[10]], "gap": [[0, 0]],
             "dup": [[0], [0]], "negative": [[-1]], "fraction": [[0.5]], "object": {"paths": [[0]]}}
    for name, paths in trees.items():
        (root / f"{name}.json").write_text(json.dumps(paths))
    (root / "broken.json").write_text("[[0], [1")
    save_heads(untrained_heads(4, 32, 49152), root / "hidden")
    save_heads(untrained_heads(4, 64, 1000), root / "vocab")
    (root / "empty").mkdir()
    (root / "empty" / "config.json.bak").write_text("{}")
    good = save_heads(untrained_heads(4, 64, 49152), root / "good") / "medusa_lm_head.safetensors"
    for name, data in (("corrupt", b"\x00garbage" * 8), ("truncated", good.read_bytes()[: good.stat().st_size // 2])):
        (root / name).mkdir()
        (root / name / "medusa_lm_head.safetensors").write_bytes(data)
    (root / "pickled").mkdir()
    with open(root / "pickled" / "medusa_lm_head.pt", "wb") as f:
        pickle.dump({"0.0.linear.weight": _CodeOnLoad(str(marker))}, f, protocol=2)
    shutil.copytree(tiny_dir, root / "badconfig")
    (root / "badconfig" / "config.json").write_text("{not json")
    shutil.copytree(tiny_dir, root / "noweights")
    (root / "noweights" / "model.safetensors").unlink()


class _CodeOnLoad:
    """Pickles to a call of open(marker, "w"): loading the pickle would create `marker`."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, real) -> Path:
    """A tiny random Llama (hidden 64, context 512) with the default model's real tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny-model")
    c = real.model.config
    config = LlamaConfig(vocab_size=real.vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         tie_word_embeddings=True, eos_token_id=c.eos_token_id, bos_token_id=c.bos_token_id,
                         pad_token_id=c.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    real.tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_dir) -> Path:
    root = tmp_path_factory.mktemp("bad-files")
    _bad_files(root, tiny_dir, root / "code_ran")
    return root


@pytest.fixture
def offline(monkeypatch):
    """No request can reach (or wait for) the Hub."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def _kwargs(case: Case, files: Path, tiny_dir: Path) -> dict:
    out = {"model": str(tiny_dir)} | GOOD | case.kwargs
    return {k: v.replace("{files}", str(files)) if isinstance(v, str) else v for k, v in out.items()}


def _argv(kwargs: dict) -> list[str]:
    argv = ["generate"]
    for key, value in kwargs.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return argv


def _skip_unless_applicable(case: Case) -> None:
    if case.needs.get("no_cuda") and torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the 'cuda is absent' case does not apply")


@pytest.mark.parametrize("case", [c for c in CASES if "api" in c.surfaces], ids=lambda c: c.id)
def test_python_api_refuses_bad_input(case, files, tiny_dir, offline):
    from medusa_engine.run import generate

    _skip_unless_applicable(case)
    kwargs = _kwargs(case, files, tiny_dir)
    with pytest.raises(ValueError, match=case.match):
        generate(kwargs.pop("prompt"), **kwargs)
    assert not (files / "code_ran").exists(), "the pickle's code ran"


@pytest.mark.parametrize("case", [c for c in CASES if "cli" in c.surfaces], ids=lambda c: c.id)
def test_cli_refuses_bad_input(case, files, tiny_dir, offline):
    _skip_unless_applicable(case)
    code, stderr = run_cli(_argv(_kwargs(case, files, tiny_dir)))
    assert code == 2, stderr
    lines = [ln for ln in stderr.splitlines() if "error:" in ln]
    assert lines and any(re.search(case.cli_match or case.match, ln) for ln in lines), stderr
    assert "Traceback" not in stderr
    assert not (files / "code_ran").exists(), "the pickle's code ran"


def test_control_characters_are_text(tiny_dir):
    """Control characters are accepted and decoded like any other text, through the API and the CLI."""
    from medusa_engine.run import generate

    summary = generate(CONTROL, model=str(tiny_dir), max_new_tokens=4, tree="8")
    assert summary.prompt == CONTROL and summary.tokens == 4 and summary.stop_reason == "max_new_tokens"
    code, stderr = run_cli(_argv({"model": str(tiny_dir)} | GOOD | {"prompt": CONTROL}))
    assert code == 0, stderr


@pytest.mark.slow
def test_cli_subprocess_exit_codes(files, tiny_dir):
    """The real `python -m medusa_engine` process: undecodable argv bytes, a bad tree file, an unknown
    hub id offline (cannot hang), a good run (exit 0)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    base = [sys.executable, "-m", "medusa_engine", "generate", "--model", str(tiny_dir), "--max-new-tokens", "4"]
    for extra, message in (([b"--prompt", b"caf\xe9 \xff"], "not valid text"),
                           (["--prompt", "hi", "--tree", str(files / "gap.json")], "not prefix-closed"),
                           (["--prompt", "hi", "--model", HUB_MODEL], "Hub could not be reached")):
        out = subprocess.run(base + extra, capture_output=True, env=env, cwd=ROOT, timeout=300)
        stderr = out.stderr.decode("utf-8", "replace")
        assert out.returncode == 2 and "error: " in stderr and message in stderr, stderr[-800:]
        assert "Traceback" not in stderr
    ok = subprocess.run(base + ["--prompt", "hi"], capture_output=True, env=env, cwd=ROOT, timeout=300)
    assert ok.returncode == 0, ok.stderr[-800:]


def test_truncated_model_weights_give_a_clear_error(tiny_dir, tmp_path):
    from medusa_engine.run import generate

    shutil.copytree(tiny_dir, tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ValueError, match="corrupt|truncated"):
        generate("hi", model=str(tmp_path / "m"), max_new_tokens=2)


# ---------------------------------------------------------------------------------------------- the app
APP_ARGS = ["hello there", "", TINY_HEADS, "greedy", 0.7, 0.09, 0.0, 16, 4, "calibrated", 8, True]
FIELDS = ["prompt", "system", "heads", "mode", "temperature", "epsilon", "alpha", "width", "heads_used",
          "tree_shape", "max_new_tokens", "colour"]


class Raw(str):
    """A JSON token sent verbatim (NaN, Infinity: valid for Python's json, unsendable by gradio_client)."""


APP_CASES = [  # (id, changed inputs, message)
    ("empty-prompt", {"prompt": ""}, "prompt is empty"),
    ("whitespace-prompt", {"prompt": " \n\t "}, "prompt is empty"),
    ("prompt-over-context", {"prompt": "x" * 5000}, "exceeds the model's context of 4096"),
    ("prompt-over-char-limit", {"prompt": "x" * 40_000}, "prompt is too long: 40000 characters"),
    ("prompt-none", {"prompt": None}, "prompt must be text, got NoneType"),
    ("prompt-number", {"prompt": 5}, "prompt must be text, got int"),
    ("system-number", {"system": 7}, "system prompt must be text"),
    ("max-new-0", {"max_new_tokens": 0}, r"Max new tokens must be a whole number in 1\.\.512, got 0"),
    ("max-new-negative", {"max_new_tokens": -3}, r"Max new tokens must be a whole number in 1\.\.512"),
    ("max-new-huge", {"max_new_tokens": 10**6}, r"Max new tokens must be a whole number in 1\.\.512"),
    ("max-new-fraction", {"max_new_tokens": 2.5}, "Max new tokens must be a whole number.*2.5"),
    ("max-new-string", {"max_new_tokens": "96"}, "Max new tokens must be a number, got '96'"),
    ("temperature-0-typical", {"mode": "typical", "temperature": 0}, "temperature must be > 0 for typical"),
    ("temperature-above-range", {"temperature": 5}, r"Temperature must lie in \[0, 2\], got 5"),
    ("temperature-negative", {"temperature": -1}, r"Temperature must lie in \[0, 2\]"),
    ("epsilon-0", {"epsilon": 0}, r"ε \(epsilon\) must lie in \(0, 1\], got 0"),
    ("epsilon-above-1", {"epsilon": 1.5}, r"ε \(epsilon\) must lie in \(0, 1\]"),
    ("alpha-above-1", {"alpha": 2}, r"α .* must lie in \[0, 1\], got 2"),
    ("alpha-negative", {"alpha": -0.5}, r"α .* must lie in \[0, 1\]"),
    ("width-0", {"width": 0}, r"Tree width must be a whole number in 1\.\.64, got 0"),
    ("width-65", {"width": 65}, r"Tree width must be a whole number in 1\.\.64, got 65"),
    ("width-fraction", {"width": 2.5}, r"Tree width must be a whole number in 1\.\.64, got 2.5"),
    ("width-string", {"width": "abc"}, "Tree width must be a number, got 'abc'"),
    ("width-bool", {"width": True}, "Tree width must be a number, got True"),
    ("heads-used-0", {"heads_used": 0}, r"Heads used must be a whole number in 1\.\.16, got 0"),
    ("heads-used-beyond-heads", {"heads_used": 9}, r"Heads used must be a whole number in 1\.\.4 \(this head set"),
    ("mode-unknown", {"mode": "beam"}, "Acceptance must be one of greedy, typical; got 'beam'"),
    ("tree-shape-unknown", {"tree_shape": "spiral"}, "Tree shape must be one of calibrated, chain"),
    ("heads-unknown", {"heads": "no-such-set"}, "unknown head set 'no-such-set': choose one of"),
    ("heads-relative-path", {"heads": "../heads/smollm2-135m-medusa1"}, "unknown head set '../heads/"),
    ("heads-absolute-path", {"heads": str(DEFAULT_HEADS)}, "unknown head set '/"),
    ("heads-from-another-model", {"heads": "foreign"}, "hidden size 576, the backbone has 64"),
    ("heads-corrupt", {"heads": "corrupt"}, "corrupt or truncated"),
    ("heads-pickle-with-code", {"heads": "pickled"}, "refused to load .*not a plain tensor checkpoint"),
]
RAW_CASES = [  # (id, changed inputs, message): sent as raw JSON over HTTP
    ("temperature-nan", {"temperature": Raw("NaN")}, "Temperature must be a finite number, got nan"),
    ("epsilon-minus-inf", {"epsilon": Raw("-Infinity")}, "ε \\(epsilon\\) must be a finite number"),
    ("alpha-nan", {"alpha": Raw("NaN")}, "α .* must be a finite number"),
    ("width-nan", {"width": Raw("NaN")}, "Tree width must be a finite number"),
    ("max-new-inf", {"max_new_tokens": Raw("Infinity")}, "Max new tokens must be a finite number, got inf"),
    ("prompt-lone-surrogate", {"prompt": "caf\udce9"}, "prompt is not valid text.*lone surrogate"),
    ("system-lone-surrogate", {"system": "be \ud800 brief"}, "system prompt is not valid text"),
]


def _app_args(changes: dict) -> list:
    args = list(APP_ARGS)
    for name, value in changes.items():
        args[FIELDS.index(name)] = value
    return args


def _raw_body(args: list) -> bytes:
    items = [v if isinstance(v, Raw) else json.dumps(v) for v in args]
    return ('{"data": [' + ", ".join(items) + "]}").encode()


def raw_race(url: str, body: bytes) -> tuple[int, str | None]:
    """POST `body` to the app's /race over plain HTTP; (HTTP status, the run's error message or None)."""
    import httpx

    r = httpx.post(url + "gradio_api/call/race", content=body, headers={"content-type": "application/json"},
                   timeout=30)
    if r.status_code != 200:
        return r.status_code, None
    with httpx.stream("GET", url + f"gradio_api/call/race/{r.json()['event_id']}", timeout=60) as stream:
        events = "".join(stream.iter_text()).split("\n\n")
    errors = [json.loads(e.split("data:", 1)[1])["error"] for e in events if e.startswith("event: error")]
    return r.status_code, errors[0] if errors else None


@pytest.fixture(scope="module")
def app(files):
    """The app on a tiny engine, offering the tiny head set plus three that cannot load."""
    from gradio_client import Client

    from app.engine import Engine
    from app.engines import Engines
    from app.ui import build_demo

    tiny = tiny_engine(recording=True)
    sources = {"foreign": str(DEFAULT_HEADS), "corrupt": str(files / "corrupt"), "pickled": str(files / "pickled")}

    def build(name: str) -> Engine:
        return tiny if name == TINY_HEADS else Engine.for_heads(sources[name], lambda _delta: tiny.backbone)

    demo = build_demo(Engines([TINY_HEADS, *sources], build))
    url = launched(demo)
    yield tiny, url, Client(url, verbose=False)
    demo.close()


@pytest.mark.parametrize("changes,match", [c[1:] for c in APP_CASES], ids=[c[0] for c in APP_CASES])
def test_app_refuses_bad_input(app, files, changes, match):
    from gradio_client.exceptions import AppError

    engine, _, client = app
    with pytest.raises(AppError, match=match):
        client.predict(*_app_args(changes), api_name="/race")
    assert all(g.gi_frame is None for g in engine.generators)  # no run left half-open
    assert not (files / "code_ran").exists(), "the pickle's code ran"


@pytest.mark.parametrize("changes,match", [c[1:] for c in RAW_CASES], ids=[c[0] for c in RAW_CASES])
def test_app_refuses_bad_raw_json(app, changes, match):
    _, url, _ = app
    status, error = raw_race(url, _raw_body(_app_args(changes)))
    assert status == 200 and error is not None and re.search(match, error), error


def test_app_refuses_a_body_that_is_not_utf8(app):
    _, url, _ = app
    body = _raw_body(_app_args({})).replace(b"hello there", b"hello \xff\xfe there")
    assert raw_race(url, body) == (400, None)  # Gradio's own answer: the body cannot be parsed


@pytest.mark.parametrize("args,match", [
    (["hi", "", "no-such-set", 4], "unknown head set 'no-such-set'"),
    (["hi", "", TINY_HEADS, "four"], "Heads used must be a number, got 'four'"),
    (["  ", "", TINY_HEADS, 4], "prompt is empty"),
], ids=["unknown-heads", "heads-used-string", "empty-prompt"])
def test_sweep_refuses_bad_input(app, args, match):
    from gradio_client.exceptions import AppError

    _, _, client = app
    with pytest.raises(AppError, match=match):
        client.predict(*args, api_name="/sweep")


def test_app_accepts_control_characters_and_stays_up(app):
    """Runs after every bad request above: a good request still succeeds; control characters (NUL
    included) are text, kept verbatim in the run's header."""
    _, _, client = app
    prompt = "a\x00b " + CONTROL
    out = client.predict(*_app_args({"prompt": prompt}), api_name="/race")
    header = json.loads(Path(out[7]).read_text(encoding="utf-8").splitlines()[0])
    assert out[0] and header["prompt"] == prompt and header["heads"] == TINY_HEADS
    assert client.predict(*APP_ARGS, api_name="/race")[0]
