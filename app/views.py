"""Run (header + step dicts) -> the values the UI shows: lane texts, coloured Medusa text, stats,
badge, inspector figures. Pure functions; no engine, no Gradio."""
from __future__ import annotations

from . import figures
from .race import Lane, badge, lanes_from_steps, overhead, speedup

BASE_LABEL = "base model"


def head_label(depth: int) -> str:
    return BASE_LABEL if depth == 0 else f"head {depth}"


def color_map(num_heads: int) -> dict[str, str]:
    return {head_label(d): figures.head_colour(d) for d in range(1, num_heads + 1)}


def highlight(steps: list[dict], colour: bool = True) -> list[tuple[str, str | None]]:
    """Medusa text as (text, label) segments: each token labelled by the head that produced it
    (depth d of the chosen path = head d; the root token is the base model's, left plain)."""
    text = "".join(s["text"] for s in steps)
    if not colour:
        return [(text, None)] if text else []
    out: list[tuple[str, str | None]] = []

    def push(t: str, label: str | None) -> None:
        if not t:
            return
        if out and out[-1][1] == label:
            out[-1] = (out[-1][0] + t, label)
        else:
            out.append((t, label))

    for s in steps:
        nodes = {n["id"]: n for n in s.get("nodes") or []}
        rest = s["text"]
        for nid in (s.get("chosen_nodes") or [])[: len(s["tokens"])]:
            n = nodes.get(nid)
            if n is None or not rest.startswith(n["text"]):
                break  # a multi-token character or a special token: the rest goes with the last label
            push(n["text"], None if n["depth"] == 0 else head_label(n["depth"]))
            rest = rest[len(n["text"]):]
        if rest:
            last = (s.get("chosen_nodes") or [0])[: len(s["tokens"])] or [0]
            depth = nodes[last[-1]]["depth"] if last[-1] in nodes else 0
            push(rest, None if depth == 0 else head_label(depth))
    return out


def _n(x: float | None, fmt: str) -> str:
    return "–" if x is None else format(x, fmt)


def lane_stats(lane: Lane, medusa: bool = False) -> str:
    parts = [f"**{lane.tokens}** tokens", f"**{_n(lane.tokens_per_s, '.1f')}** tokens/s",
             f"**{_n(lane.ms_per_token, '.1f')}** ms/token"]
    if medusa:
        parts.append(f"**{_n(lane.tokens_per_step, '.2f')}** tokens/step")
    state = f" · stopped: {lane.stop_reason}" if lane.stop_reason else ""
    return " · ".join(parts) + state


def summary(lanes: dict[str, Lane], mode: str, cancelled: bool = False, extra: str = "") -> str:
    v, m = lanes["vanilla"], lanes["medusa"]
    done = v.finished and m.finished
    if not (v.steps or m.steps):
        return "Press **Run** to race Medusa against vanilla decoding."
    lines = []
    if done or cancelled:
        sp, ov = speedup(v, m), overhead(v, m)
        lines.append(f"### speed-up ×{_n(sp, '.2f')}  ·  tokens/step {m.tokens_per_step:.2f}  ·  "
                     f"overhead ×{_n(ov, '.2f')}")
    lines.append(badge(v, m, mode) + (" · run stopped" if cancelled else ""))
    if extra:
        lines.append(extra)
    return "\n\n".join(lines)


def medusa_decode_steps(run: dict | None) -> list[dict]:
    if not run:
        return []
    return [s for s in run["steps"] if s["lane"] == "medusa" and s["kind"] == "decode"]


def step_caption(step: dict) -> str:
    t = step["timing"]
    total = sum(t.values())
    emitted = "".join(step["text"])
    return (f"**step {step['index']}** · emitted {len(step['tokens'])} token(s) `{emitted!r}` · "
            f"chosen row {step['chosen_row']} of {len(step.get('rows') or [])} · compute {total:.1f} ms "
            f"(heads {t['heads_ms']:.1f}, verify {t['verify_ms']:.1f}, accept {t['accept_ms']:.1f}, "
            f"cache {t['cache_ms']:.1f})" + (f" · stop: {step['stop_reason']}" if step.get("stop_reason") else ""))


def inspector(step: dict | None) -> tuple:
    """(tree, heads, acceptance, mask, caption) of one Medusa step dict, ready for gr.Plot/gr.Markdown."""
    p, e = figures.as_plot, figures.empty_figure
    if step is None:
        return p(e("no step yet")), p(e("no step yet", 260)), p(e("no step yet", 260)), p(e("no step yet")), ""
    return (p(figures.tree_figure(step)), p(figures.heads_figure(step)), p(figures.acceptance_figure(step)),
            p(figures.mask_figure(step)), step_caption(step))


def header_markdown(info: dict) -> str:
    calib = "calibrated" if info.get("heads_calibrated") else "not calibrated"
    h = info.get("model_hash")
    v = info.get("versions", {})
    return (f"**model** `{info.get('model')}`" + (f" (sha256 {h})" if h else "") +
            f" · **heads** `{info.get('heads')}` ({info.get('num_heads', '?')} heads, {calib}) · "
            f"**device** {info.get('device')} · **dtype** {info.get('dtype')} · threads {info.get('threads', '?')}"
            + (f" · **decoder** {info['settings']['backend']}" if info.get("settings", {}).get("backend") else "")
            + (f" · **matmuls** {info['matmuls']}" if info.get("matmuls") else "")
            + (f" · torch {v.get('torch')} · transformers {v.get('transformers')}" if v else ""))


def replay_values(run: dict, colour: bool = True) -> dict:
    """Everything the UI shows for a finished (or imported) run."""
    lanes = lanes_from_steps(run["steps"])
    mode = run["header"].get("settings", {}).get("mode", "greedy")
    mst = medusa_decode_steps(run)
    cancelled = not (lanes["vanilla"].finished and lanes["medusa"].finished)
    h = run["header"]
    origin = (f"replay of a recorded run ({h.get('created', '?')}): model `{h.get('model')}`, heads `{h.get('heads')}`"
              f", {h.get('device')}, {h.get('dtype')}, tree of {h.get('settings', {}).get('tree_size', '?')} nodes, "
              f"{mode} — press Run to compute a fresh one")
    return {"lanes": lanes, "vanilla_text": lanes["vanilla"].text, "medusa_text": highlight(mst, colour),
            "vanilla_stats": lane_stats(lanes["vanilla"]), "medusa_stats": lane_stats(lanes["medusa"], True),
            "summary": summary(lanes, mode, cancelled, extra=origin), "charts": figures.as_plot(figures.run_charts(mst)), "steps": mst}
