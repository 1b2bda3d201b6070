"""Pure functions: step dicts (Step.to_dict()) -> Plotly figures.

Figures are plain Plotly JSON dicts ({"data": [...], "layout": {...}}), which plotly.js renders
as is: building them takes well under a millisecond, where `go.Figure` validation costs 25-150 ms
per figure (too slow to stream). `plotly.graph_objects.Figure(fig)` accepts every one of them (tested).
`as_plot` wraps one for gr.Plot. No engine, no Gradio import at module level.
"""
from __future__ import annotations

import json

import networkx as nx

# Okabe-Ito (colour-blind safe)
OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000"]
ACCEPTED, PASSES, FAILS, ROOT = "#009E73", "#56B4E9", "#BBBBBB", "#000000"
FONT = {"family": "monospace", "size": 12}


def as_plot(fig: dict | None):
    """A figure dict as gr.Plot's value (no re-validation, one json.dumps)."""
    if fig is None:
        return None
    from gradio.components.plot import PlotData

    return PlotData(type="plotly", plot=json.dumps(fig))


def head_colour(depth: int) -> str:
    """Colour of head `depth` (1-based)."""
    return OKABE_ITO[(depth - 1) % len(OKABE_ITO)]


def token_label(text: str) -> str:
    """A token's text made visible (newlines, tabs, pure whitespace)."""
    if text == "":
        return "∅"
    if not text.strip():
        return text.replace("\n", "↵").replace("\t", "⇥").replace(" ", "␣")
    return text.replace("\n", "↵").replace("\t", "⇥")


def _figure(data: list[dict], title: str, height: int, revision: str, **layout) -> dict:
    base = {"title": {"text": title, "x": 0.01, "font": {"size": 14}}, "height": height, "font": FONT,
            "margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "uirevision": revision, "plot_bgcolor": "white",
            "paper_bgcolor": "white", "showlegend": False}
    return {"data": data, "layout": base | layout}


def empty_figure(message: str = "no step yet", height: int = 300) -> dict:
    return _figure([], "", height, "empty", xaxis={"visible": False}, yaxis={"visible": False},
                   annotations=[{"text": message, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper",
                                 "showarrow": False, "font": {"size": 14, "color": "#777"}}])


# ------------------------------------------------------------------------------------------ tree
def tree_graph(nodes: list[dict]) -> nx.DiGraph:
    g = nx.DiGraph()
    for n in nodes:
        g.add_node(n["id"], **n)
    for n in nodes:
        if n["parent"] >= 0:
            g.add_edge(n["parent"], n["id"])
    return g


def tidy_layout(g: nx.DiGraph, root: int = 0) -> dict[int, tuple[float, float]]:
    """Left-to-right tidy layout: x = depth; leaves take consecutive rows; each parent sits at the
    mean of its children; children sorted by head rank so the top-1 chain is the top spine."""
    pos: dict[int, tuple[float, float]] = {}
    next_row = [0]

    def place(v: int, depth: int) -> float:
        kids = sorted(g.successors(v), key=lambda c: g.nodes[c].get("rank", 0))
        if not kids:
            y = float(next_row[0])
            next_row[0] += 1
        else:
            ys = [place(c, depth + 1) for c in kids]
            y = sum(ys) / len(ys)
        pos[v] = (float(depth), -y)
        return y

    if root in g:
        place(root, 0)
    return pos


def _fmt(p) -> str:
    return "–" if p is None else f"{p:.3f}"


def tree_figure(step: dict, height: int = 420) -> dict:
    """The candidate tree of one Medusa step: accepted path bold, root marked, failing nodes faded."""
    nodes = step.get("nodes") or []
    if not nodes:
        return empty_figure("no tree in this step")
    g = tree_graph(nodes)
    pos = tidy_layout(g)
    chosen = list(step.get("chosen_nodes") or [])
    on_path = set(chosen)
    ex, ey = [], []
    for a, b in g.edges:
        ex += [pos[a][0], pos[b][0], None]
        ey += [pos[a][1], pos[b][1], None]
    order = sorted(g.nodes)
    colours, opac, symbols, sizes, hover, labels, xs, ys = [], [], [], [], [], [], [], []
    for i in order:
        n = g.nodes[i]
        xs.append(pos[i][0])
        ys.append(pos[i][1])
        labels.append(token_label(n["text"]))
        if i == 0:
            colours.append(ROOT), symbols.append("star"), sizes.append(18), opac.append(1.0)
            hover.append(f"root (base model's own token)<br>token {n['token']} {n['text']!r}<br>"
                         f"base prob {_fmt(n['base_prob'])}")
            continue
        state = "accepted" if i in on_path else ("passes" if n["passes"] else "rejected")
        colours.append({"accepted": ACCEPTED, "passes": PASSES, "rejected": FAILS}[state])
        symbols.append("circle")
        sizes.append(16 if i in on_path else 11)
        opac.append(1.0 if state != "rejected" else 0.45)
        hover.append(f"head {n['depth']} · rank {n['rank']} · {state}<br>token {n['token']} {n['text']!r}<br>"
                     f"head prob {_fmt(n['head_prob'])}<br>base prob {_fmt(n['base_prob'])}<br>"
                     f"threshold {_fmt(n['threshold']) if n['threshold'] is not None else 'argmax (greedy)'}")
    data = [
        {"type": "scatter", "x": ex, "y": ey, "mode": "lines", "line": {"color": "#CCCCCC", "width": 1},
         "hoverinfo": "skip"},
        {"type": "scatter", "x": [pos[i][0] for i in chosen], "y": [pos[i][1] for i in chosen], "mode": "lines",
         "line": {"color": ACCEPTED, "width": 5}, "hoverinfo": "skip"},
        {"type": "scatter", "x": xs, "y": ys, "mode": "markers+text", "text": labels, "textposition": "middle right",
         "textfont": {"size": 11}, "hovertext": hover, "hoverinfo": "text",
         "marker": {"color": colours, "size": sizes, "symbol": symbols, "opacity": opac,
                    "line": {"color": "#333", "width": 1}}},
    ]
    depth = max(n["depth"] for n in nodes)
    rows = max(1.0, -min(ys))
    title = (f"step {step['index']}: tree of {len(nodes)} nodes, accepted {max(len(chosen) - 1, 0)} "
             f"+ root → {len(step.get('tokens') or [])} tokens")
    return _figure(data, title, height, "tree",
                   xaxis={"range": [-0.3, depth + 0.9], "tickvals": list(range(depth + 1)),
                          "ticktext": ["root"] + [f"head {d}" for d in range(1, depth + 1)],
                          "showgrid": False, "zeroline": False},
                   yaxis={"visible": False, "range": [-rows - 0.6, 0.6]},
                   margin={"l": 10, "r": 10, "t": 40, "b": 30})


# ------------------------------------------------------------------------------------------ heads
def heads_figure(step: dict, height: int = 300) -> dict:
    """Heads x top-k heatmap of head probabilities, token texts in cells, accepted tokens boxed."""
    probs = step.get("head_topk_probs") or []
    if not probs:
        return empty_figure("no head proposals in this step", height)
    texts = [[token_label(t) for t in row] for row in step["head_topk_texts"]]
    k = len(probs[0])
    data = [{"type": "heatmap", "z": probs, "x": list(range(k)),
             "y": [f"head {h + 1}" for h in range(len(probs))], "text": texts,
             "texttemplate": "%{text}<br>%{z:.2f}", "zmin": 0, "zmax": 1,
             "colorscale": [[0, "#F7FBFF"], [0.5, "#6BAED6"], [1, "#08306B"]],
             "hovertemplate": "%{y} rank %{x}: %{text}<br>p=%{z:.3f}<extra></extra>", "colorbar": {"thickness": 10},
             "textfont": {"size": 10}}]
    nodes = {n["id"]: n for n in step.get("nodes") or []}
    shapes = []
    for nid in (step.get("chosen_nodes") or [])[1:]:
        n = nodes[nid]
        shapes.append({"type": "rect", "x0": n["rank"] - 0.5, "x1": n["rank"] + 0.5, "y0": n["depth"] - 1.5,
                       "y1": n["depth"] - 0.5, "line": {"color": ACCEPTED, "width": 4}})
    return _figure(data, "head proposals (probability; green box = accepted)", height, "heads",
                   yaxis={"autorange": "reversed"}, shapes=shapes, margin={"l": 60, "r": 10, "t": 40, "b": 40},
                   xaxis={"title": {"text": "rank in the head's top-k"}, "dtick": 1})


# ------------------------------------------------------------------------------------------ acceptance
def acceptance_figure(step: dict, height: int = 260) -> dict:
    """For each depth of the chosen row: the base model's probability of the candidate against the
    typical threshold min(ε, α·e^−H); in greedy mode whether it was the base model's argmax."""
    nodes = {n["id"]: n for n in step.get("nodes") or []}
    rows = step.get("rows") or []
    if not nodes or step.get("chosen_row", -1) < 0:
        return empty_figure("no acceptance in this step", height)
    row = rows[step["chosen_row"]][1:]
    if not row:
        return empty_figure("the tree is only the root: nothing to accept", height)
    accepted = set(step.get("chosen_nodes") or [])
    greedy = all(nodes[i]["threshold"] is None for i in row)
    x = [f"d{nodes[i]['depth']} {token_label(nodes[i]['text'])}" for i in row]
    p = [nodes[i]["base_prob"] for i in row]
    colour = [ACCEPTED if i in accepted else ("#D55E00" if not nodes[i]["passes"] else FAILS) for i in row]
    verdict = ["accepted" if i in accepted else ("fails the test" if not nodes[i]["passes"] else "after a rejection")
               for i in row]
    data = [{"type": "bar", "x": x, "y": p, "marker": {"color": colour}, "customdata": verdict, "name": "base prob",
             "hovertemplate": "%{x}<br>base prob %{y:.3f}<br>%{customdata}<extra></extra>"}]
    if greedy:
        data.append({"type": "scatter", "x": x, "y": [min(1.0, v + 0.06) for v in p], "mode": "text",
                     "text": ["argmax ✓" if nodes[i]["passes"] else "not argmax ✗" for i in row],
                     "hoverinfo": "skip"})
        title = "greedy acceptance: a candidate is kept only if it is the base model's argmax"
    else:
        data.append({"type": "scatter", "x": x, "y": [nodes[i]["threshold"] for i in row], "mode": "markers",
                     "name": "threshold", "marker": {"symbol": "line-ew-open", "size": 30,
                                                     "line": {"width": 3, "color": "#000"}},
                     "hovertemplate": "threshold min(ε, α·e^−H) = %{y:.3f}<extra></extra>"})
        title = "typical acceptance: base prob (bar) vs threshold min(ε, α·e^−H) (black tick)"
    return _figure(data, title, height, "accept", yaxis={"range": [0, 1.08], "title": {"text": "base prob"}},
                   margin={"l": 50, "r": 10, "t": 40, "b": 40})


# ------------------------------------------------------------------------------------------ mask
def mask_figure(step: dict, height: int = 300) -> dict:
    mask = step.get("mask") or []
    if not mask:
        return empty_figure("no tree mask in this step", height)
    data = [{"type": "heatmap", "z": mask, "colorscale": [[0, "#FFFFFF"], [1, "#0072B2"]], "zmin": 0, "zmax": 1,
             "showscale": False, "xgap": 1, "ygap": 1,
             "hovertemplate": "node %{y} attends to node %{x}: %{z}<extra></extra>"}]
    n = len(mask)
    return _figure(data, "tree attention mask (1 = may attend)", height, "mask",
                   yaxis={"range": [n - 0.5, -0.5], "title": {"text": "query node"}},
                   xaxis={"range": [-0.5, n - 0.5], "title": {"text": "key node"}},
                   margin={"l": 50, "r": 10, "t": 40, "b": 40})


# ------------------------------------------------------------------------------------------ run charts
def accepted_per_head(steps: list[dict], num_heads: int | None = None) -> tuple[list[int], list[int]]:
    """(steps where head d was tried, steps where head d's token was accepted), d = 1..H.
    Head d is tried when the step's tree has a node at depth d."""
    depth_max = num_heads or max((max((n["depth"] for n in s.get("nodes") or []), default=0) for s in steps), default=0)
    tried, hit = [0] * depth_max, [0] * depth_max
    for s in steps:
        nodes = s.get("nodes") or []
        if not nodes:
            continue
        depth = max(n["depth"] for n in nodes)
        for d in range(1, min(depth, depth_max) + 1):
            tried[d - 1] += 1
        for d in range(1, min(len(s.get("chosen_nodes") or []), depth_max + 1)):
            hit[d - 1] += 1
    return tried, hit


def _grid_axes() -> dict:
    """A 2 x 2 grid of axes (what make_subplots would build)."""
    cols, rows = [[0, 0.45], [0.55, 1]], [[0.58, 0.92], [0, 0.36]]
    axes = {}
    for i in range(4):
        r, c = divmod(i, 2)
        sfx = "" if i == 0 else str(i + 1)
        axes[f"xaxis{sfx}"] = {"domain": cols[c], "anchor": f"y{sfx}"}
        axes[f"yaxis{sfx}"] = {"domain": rows[r], "anchor": f"x{sfx}", "rangemode": "tozero"}
    return axes


def run_charts(steps: list[dict], height: int = 560) -> dict:
    """Accepted length per step, its histogram, acceptance rate per head, and tree cost per step."""
    steps = [s for s in steps if s.get("kind", "decode") == "decode"]
    if not steps:
        return empty_figure("no Medusa steps yet", height)
    idx = [s["index"] for s in steps]
    acc = [max(len(s.get("chosen_nodes") or []) - 1, 0) for s in steps]
    top = max(acc)
    counts = [acc.count(a) for a in range(top + 1)]
    tried, hit = accepted_per_head(steps)
    rates = [h / t if t else 0.0 for h, t in zip(hit, tried)]
    nodes = [len(s.get("nodes") or []) for s in steps]
    emitted = [len(s.get("tokens") or []) for s in steps]
    data = [
        {"type": "bar", "x": idx, "y": acc, "marker": {"color": ACCEPTED}, "xaxis": "x", "yaxis": "y",
         "hovertemplate": "step %{x}: %{y} accepted<extra></extra>"},
        {"type": "bar", "x": list(range(top + 1)), "y": counts, "marker": {"color": OKABE_ITO[4]},
         "xaxis": "x2", "yaxis": "y2", "hovertemplate": "%{y} steps accepted %{x}<extra></extra>"},
        {"type": "bar", "x": [f"head {d + 1}" for d in range(len(rates))], "y": rates,
         "marker": {"color": [head_colour(d + 1) for d in range(len(rates))]}, "customdata": list(zip(hit, tried)),
         "xaxis": "x3", "yaxis": "y3", "hovertemplate": "%{x}: %{customdata[0]}/%{customdata[1]} = %{y:.2f}<extra></extra>"},
        {"type": "scatter", "x": idx, "y": nodes, "mode": "lines", "line": {"color": FAILS, "width": 2},
         "name": "nodes verified", "xaxis": "x4", "yaxis": "y4"},
        {"type": "scatter", "x": idx, "y": emitted, "mode": "lines+markers", "line": {"color": ACCEPTED},
         "marker": {"size": 4}, "name": "tokens emitted", "xaxis": "x4", "yaxis": "y4"},
    ]
    titles = ["accepted tokens per step (beyond the root)", "histogram of accepted lengths",
              "acceptance rate per head (accepted / tried)", "tree cost: nodes verified (grey) vs tokens emitted"]
    xy = [(0.225, 0.95), (0.775, 0.95), (0.225, 0.39), (0.775, 0.39)]
    annotations = [{"text": t, "x": x, "y": y, "xref": "paper", "yref": "paper", "showarrow": False,
                    "xanchor": "center", "yanchor": "bottom", "font": {"size": 12}} for t, (x, y) in zip(titles, xy)]
    axes = _grid_axes()
    axes["xaxis2"]["dtick"] = 1
    axes["yaxis3"]["range"] = [0, 1.05]
    mean = sum(emitted) / len(emitted)
    waste = 1 - sum(emitted) / max(sum(nodes), 1)
    title = f"{len(steps)} Medusa steps · {mean:.2f} tokens/step · {100 * waste:.0f}% of verified nodes wasted"
    return _figure(data, title, height, "charts", annotations=annotations, **axes,
                   margin={"l": 40, "r": 10, "t": 60, "b": 30})


def sweep_figure(results: list[dict], height: int = 320) -> dict:
    """Measured speed-up (and tokens/step) against tree width. results: [{width, speedup, tokens_per_step}]"""
    if not results:
        return empty_figure("press the button to measure", height)
    w = [r["width"] for r in results]
    data = [
        {"type": "scatter", "x": w, "y": [r["speedup"] for r in results], "mode": "lines+markers",
         "name": "speed-up (× vanilla)", "line": {"color": OKABE_ITO[5], "width": 3}},
        {"type": "scatter", "x": w, "y": [r["tokens_per_step"] for r in results], "mode": "lines+markers",
         "name": "tokens/step", "line": {"color": OKABE_ITO[4], "dash": "dot"}, "yaxis": "y2"},
    ]
    return _figure(data, "measured speed-up vs tree width", height, "sweep", showlegend=True,
                   legend={"orientation": "h", "y": -0.3},
                   shapes=[{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": 1, "y1": 1,
                            "line": {"color": "#999", "dash": "dash"}}],
                   xaxis={"type": "log", "title": {"text": "tree width (nodes verified per step)"}, "tickvals": w},
                   yaxis={"title": {"text": "speed-up (× vanilla)"}, "rangemode": "tozero"},
                   yaxis2={"title": {"text": "tokens/step"}, "overlaying": "y", "side": "right",
                           "rangemode": "tozero", "showgrid": False},
                   margin={"l": 50, "r": 50, "t": 40, "b": 40})
