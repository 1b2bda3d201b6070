"""The Blocks' no-compute listeners (replay, import, scrub, presets), called directly."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from test_app_helpers import run_steps, tiny_engine, tiny_engines

from app import export
from app.files import recorded_runs
from app.settings import PRESETS, Settings
from app.ui import RUNS_DIR, build_demo


@pytest.fixture(scope="module")
def demo_and_engine():
    engine = tiny_engine()
    return build_demo(tiny_engines(engine)), engine


def fn(demo, name):
    return next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == name)


@pytest.fixture
def uploads(demo_and_engine):
    """A directory inside Gradio's upload folder, where an upload through the import box lands."""
    demo, _ = demo_and_engine
    Path(demo.GRADIO_CACHE).mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="medusa-lens-test-", dir=demo.GRADIO_CACHE))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_import_shows_a_run_and_rejects_bad_files(demo_and_engine, uploads):
    import gradio as gr

    demo, engine = demo_and_engine
    run = run_steps(engine, width=8, max_new_tokens=10)
    path = export.write(run, uploads / "ok.jsonl")
    out = fn(demo, "import_run")(str(path), True)
    v_text, m_text, *_rest = out
    assert v_text == "".join(s["text"] for s in run["steps"] if s["lane"] == "vanilla")
    assert "".join(t for t, _ in m_text) == v_text
    assert out[7] is run or out[7]["header"] == run["header"]  # the run state
    bad = uploads / "bad.jsonl"
    bad.write_text('{"format": "nope"}\n')
    with pytest.raises(gr.Error, match="not a Medusa Lens run header"):
        fn(demo, "import_run")(str(bad), True)


def test_scrub_moves_within_bounds(demo_and_engine):
    demo, engine = demo_and_engine
    run = run_steps(engine, width=8, max_new_tokens=10)
    n = sum(1 for s in run["steps"] if s["lane"] == "medusa" and s["kind"] == "decode")
    slider, tree, heads, accept, mask, caption = fn(demo, "prev_step")(run, 1)
    assert slider.value == 1 and caption.startswith("**step 1**")
    slider, *_figs, caption = fn(demo, "next_step")(run, n)
    assert slider.value == n and caption.startswith(f"**step {n}**")
    tree, *_ = fn(demo, "show_step")(run, 2)
    assert tree.type == "plotly"


def test_presets_are_valid_settings(demo_and_engine):
    demo, _ = demo_and_engine
    for name in PRESETS:
        values = fn(demo, "apply_preset")(name)
        mode, temperature, epsilon, alpha, width, heads, shape = values
        Settings(mode=mode, temperature=temperature, epsilon=epsilon, alpha=alpha, width=width, heads_used=heads,
                 tree_shape=shape).decode_config()


def test_heads_used_limits_tree_depth_and_chain_shape():
    engine = tiny_engine()
    for n in (1, 2, 3, 4):
        tree = engine.tree(Settings(width=32, heads_used=n))
        assert tree.depth <= n
    assert engine.tree(Settings(width=64, heads_used=1)).size == 11  # 1 head x top-10 + root
    chain = engine.tree(Settings(tree_shape="chain", heads_used=3))
    assert chain.paths == ((0,), (0, 0), (0, 0, 0))


def test_recorded_runs_are_listed():
    assert recorded_runs(RUNS_DIR)[0].endswith(".jsonl")
    assert Path(__file__).resolve().parent.parent.joinpath("assets", "runs", recorded_runs(RUNS_DIR)[0]).is_file()
