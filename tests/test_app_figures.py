"""Figures and views on real step records from the tiny model (fast)."""
from __future__ import annotations

import plotly.graph_objects as go
import pytest
from test_app_helpers import run_steps, tiny_engine

from app import figures, views


@pytest.fixture(scope="module")
def run():
    return run_steps(tiny_engine(), width=16, max_new_tokens=24)


@pytest.fixture(scope="module")
def typical_run():
    return run_steps(tiny_engine(), mode="typical", temperature=1.0, epsilon=0.3, width=8, max_new_tokens=16)


def medusa(run):
    return views.medusa_decode_steps(run)


def test_every_figure_is_a_valid_plotly_figure(run, typical_run):
    for r in (run, typical_run):
        for s in medusa(r)[:3]:
            for fig in (figures.tree_figure(s), figures.heads_figure(s), figures.acceptance_figure(s),
                        figures.mask_figure(s)):
                go.Figure(fig)  # raises on any invalid property
        go.Figure(figures.run_charts(medusa(r)))
    go.Figure(figures.sweep_figure([{"width": 1, "speedup": 0.9, "tokens_per_step": 1.0},
                                    {"width": 4, "speedup": 1.1, "tokens_per_step": 1.4}]))
    go.Figure(figures.empty_figure("x"))


def test_tidy_layout_centres_parents_and_keeps_top1_chain_on_top(run):
    step = medusa(run)[0]
    g = figures.tree_graph(step["nodes"])
    pos = figures.tidy_layout(g)
    assert set(pos) == {n["id"] for n in step["nodes"]}
    for v in g.nodes:
        kids = list(g.successors(v))
        assert pos[v][0] == g.nodes[v]["depth"]
        if kids:
            assert pos[v][1] == pytest.approx(sum(pos[c][1] for c in kids) / len(kids))
    # the top-1 chain (rank 0 at every depth) is the top row of leaves' spine
    chain = [n["id"] for n in step["nodes"] if n["depth"] > 0 and all(
        step["nodes"][a]["rank"] in (0, -1) for a in _ancestors(step, n["id"]))]
    deepest = max(chain, key=lambda i: step["nodes"][i]["depth"])
    assert pos[deepest][1] == max(y for _, y in pos.values())


def _ancestors(step, i):
    out = []
    while i >= 0:
        out.append(i)
        i = step["nodes"][i]["parent"]
    return out


def test_tree_figure_marks_root_and_accepted_path(run):
    step = max(medusa(run), key=lambda s: len(s["chosen_nodes"]))
    fig = figures.tree_figure(step)
    nodes = fig["data"][2]
    assert nodes["marker"]["symbol"][0] == "star"
    assert len(nodes["text"]) == len(step["nodes"])
    assert len(fig["data"][1]["x"]) == len(step["chosen_nodes"])
    assert "head prob" in nodes["hovertext"][1] and "threshold" in nodes["hovertext"][1]


def test_heads_figure_shape_and_accepted_boxes(run):
    step = max(medusa(run), key=lambda s: len(s["chosen_nodes"]))
    fig = figures.heads_figure(step)
    z = fig["data"][0]["z"]
    assert len(z) == max(n["depth"] for n in step["nodes"]) and len(z[0]) == 10  # a row per head the tree reads
    assert len(fig["layout"]["shapes"]) == len(step["chosen_nodes"]) - 1


def test_acceptance_greedy_and_typical(run, typical_run):
    g = figures.acceptance_figure(medusa(run)[0])
    assert "greedy" in g["layout"]["title"]["text"]
    assert any("argmax" in t for t in g["data"][1]["text"])
    t = figures.acceptance_figure(medusa(typical_run)[0])
    assert "threshold" in t["layout"]["title"]["text"]
    assert all(v is not None for v in t["data"][1]["y"])


def test_run_charts_and_per_head_rates(run):
    steps = medusa(run)
    tried, hit = figures.accepted_per_head(steps)
    assert len(tried) == 3 or len(tried) == 4
    assert all(0 <= h <= t for h, t in zip(hit, tried))
    assert hit == sorted(hit, reverse=True)  # head d accepted implies head d-1 accepted
    fig = figures.run_charts(steps)
    assert len(fig["data"]) == 5
    assert sum(fig["data"][1]["y"]) == len(steps)


def test_highlight_reassembles_the_text_and_labels_heads():
    steps = [{"text": "Hello world", "tokens": [1, 2], "chosen_nodes": [0, 3],
              "nodes": [{"id": 0, "depth": 0, "text": "Hello"}, {"id": 1, "depth": 1, "text": "x"},
                        {"id": 2, "depth": 1, "text": "y"}, {"id": 3, "depth": 1, "text": " world"}]},
             {"text": "!", "tokens": [5], "chosen_nodes": [0], "nodes": [{"id": 0, "depth": 0, "text": "!"}]}]
    segs = views.highlight(steps)
    assert "".join(t for t, _ in segs) == "Hello world!"
    assert segs[1] == (" world", "head 1")
    assert views.highlight(steps, colour=False) == [("Hello world!", None)]


def test_highlight_on_real_steps_matches_lane_text(run):
    steps = medusa(run)
    assert "".join(t for t, _ in views.highlight(steps)) == "".join(s["text"] for s in steps)


def test_token_label_makes_whitespace_visible():
    assert figures.token_label("\n") == "↵"
    assert figures.token_label("  ") == "␣␣"
    assert figures.token_label("") == "∅"
    assert figures.token_label(" the") == " the"


def test_figures_are_fast(run):
    import time

    step = medusa(run)[-1]
    t = time.perf_counter()
    for _ in range(20):
        views.inspector(step)
    assert (time.perf_counter() - t) / 20 < 0.02  # < 20 ms for all four inspector figures
