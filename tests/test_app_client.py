"""The launched app through gradio_client: the named streaming endpoint, final outputs, cancel."""
from __future__ import annotations

import runpy
import time
from pathlib import Path

import pytest
from test_app_helpers import TINY_HEADS, launched, tiny_engine, tiny_engines

from app.ui import build_demo

ROOT = Path(__file__).resolve().parent.parent
# prompt, system, heads, mode, temperature, epsilon, alpha, width, heads used, tree shape, max new tokens, colour
ARGS = ("hello there", "", TINY_HEADS, "greedy", 0.7, 0.09, 0.0, 16, 4, "calibrated")


@pytest.fixture(scope="module")
def app():
    from gradio_client import Client

    engine = tiny_engine(recording=True, delay_s=0.01)
    demo = build_demo(tiny_engines(engine))
    url = launched(demo)
    yield engine, Client(url, verbose=False)
    demo.close()


def test_race_endpoint_streams_and_finishes(app):
    engine, client = app
    api = client.view_api(return_format="dict")["named_endpoints"]
    assert "/race" in api and "/sweep" in api
    job = client.submit(*ARGS, 64, True, api_name="/race")
    updates = list(job)
    assert len(updates) >= 3
    (v_text, m_text, v_stats, m_stats, summary, charts, slider, download, tree, heads, accept, mask,
     caption, header) = job.result()
    assert v_text and m_text and "tokens/s" in v_stats and "tokens/step" in m_stats
    assert "speed-up" in summary and "identical to vanilla" in summary and "outside the engine" in summary
    assert "".join(seg["token"] for seg in m_text) == v_text  # greedy: the same text
    for plot in (charts, tree, heads, accept, mask):
        assert plot and plot["type"] == "plotly"
    assert "step" in caption
    assert f"**heads** `{TINY_HEADS}`" in header  # the header names the head set that ran
    assert Path(download).is_file() and Path(download).read_text().startswith('{"format":"medusa-lens-run"')
    assert all(g.gi_frame is None for g in engine.generators)  # both lanes finished and closed


def test_typical_mode_runs_and_says_texts_need_not_match(app):
    _, client = app
    out = client.predict("hello there", "", TINY_HEADS, "typical", 1.0, 0.3, 0.0, 8, 2, "calibrated", 24, True,
                         api_name="/race")
    assert out[0] and "not expected to match" in out[4]


def test_bad_settings_give_a_clear_error(app):
    _, client = app
    with pytest.raises(Exception, match="temperature must be > 0|prompt is empty"):
        client.predict("  ", "", TINY_HEADS, "greedy", 0.7, 0.09, 0.0, 16, 4, "calibrated", 32, True,
                       api_name="/race")


def test_cancel_stops_between_steps_and_closes_the_generators(app):
    engine, client = app
    before = len(engine.generators)
    job = client.submit(*ARGS, 512, True, api_name="/race")  # ~10+ s with the per-step delay
    deadline = time.time() + 60
    while len(job.outputs()) < 2 and time.time() < deadline:
        time.sleep(0.05)
    assert len(job.outputs()) >= 2
    job.cancel()
    gens = engine.generators[before:]
    assert len(gens) == 2
    deadline = time.time() + 20
    while not all(g.gi_frame is None for g in gens) and time.time() < deadline:
        time.sleep(0.1)
    assert all(g.gi_frame is None for g in gens), "the engine generators were not closed after cancel"
    v_text = job.outputs()[-1][0]
    assert len(v_text) < 512  # stopped early
    # the app still works after a cancel
    assert client.predict(*ARGS, 16, True, api_name="/race")[0]


def test_app_py_is_a_spaces_entry_point():
    ns = runpy.run_path(str(ROOT / "app.py"), run_name="not_main")  # builds, does not launch or load the model
    import gradio as gr

    assert isinstance(ns["demo"], gr.Blocks)


def test_sweep_endpoint_measures_every_width(app):
    import json

    _, client = app
    plot = client.predict("hello there", "", TINY_HEADS, 4, api_name="/sweep")
    fig = json.loads(plot["plot"])
    assert fig["data"][0]["x"] == [1, 4, 8, 16, 32, 64]
    assert all(v > 0 for v in fig["data"][0]["y"])
