"""The Gradio Blocks: controls, the race, the step inspector, run charts, export/import."""
from __future__ import annotations

import time
from pathlib import Path

import gradio as gr

from . import export, figures, files, views
from .engines import Engines, shipped_engines
from .race import Lane
from .runner import new_run, race_events
from .settings import MAX_NEW_TOKENS, MAX_TEMPERATURE, MAX_WIDTH, MODES, PRESETS, TREE_SHAPES, Settings
from .stops import StopSignals
from .sweep import sweep

try:  # ZeroGPU on Spaces; a no-op elsewhere
    import spaces

    GPU = spaces.GPU
except ImportError:  # pragma: no cover - depends on the environment
    def GPU(fn=None, **_):
        return fn if fn is not None else (lambda f: f)

RUNS_DIR = Path(__file__).resolve().parent.parent / "assets" / "runs"
# Every step is computed and recorded; the UI is updated less often. Each yield costs Gradio a roughly
# fixed 15-30 ms on a busy 2-core CPU (thread hop, postprocess, SSE), so the interval between updates
# adapts to keep streaming under STREAM_BUDGET of the decode wall time, between 10 Hz and 1 Hz.
STREAM_BUDGET = 0.03
MIN_EVERY_S, MAX_EVERY_S = 0.1, 1.0
FIGURES_EVERY_S = 0.9  # inspector figures at most ~1 Hz during the run (then scrub freely)
PLAY_EVERY_S = 0.8

EXAMPLES = [
    ["Explain in three sentences why the sky is blue."],
    ["Write a Python function that checks whether a number is prime."],
    ["List five tips for staying focused while studying."],
    ["What is 17 times 23? Explain step by step."],
]

EXPLAINER = """
**Medusa** (Cai et al., 2024) adds small *heads* on the model's last hidden state: head *d* guesses the
token *d* positions after the next one. Each step, the heads' top-k guesses form a **candidate tree**;
the base model checks the whole tree in **one** forward pass (a *tree attention mask* lets each node
see only its ancestors), and the longest path the base model agrees with is kept. The root is the
base model's own next token, so every step emits at least one token.

- **The race**: vanilla (one token per forward) and Medusa decode the same prompt on the same model.
  They take turns: the lane whose own clock (its summed compute time) is behind runs next, so they
  never compete for the CPU/GPU and each lane reveals its tokens at its own measured speed.
- **tokens/step** (acceleration rate): tokens emitted per Medusa forward pass (1 + accepted).
- **overhead**: Medusa step time / vanilla step time (a bigger tree costs more per step).
- **speed-up**: vanilla time / Medusa time for the same number of tokens = tokens/step ÷ overhead.
- **identical to vanilla**: greedy acceptance is exact, so in float32 the texts must match; in
  bfloat16 a near-tie can flip a token, and the badge says where. Typical acceptance samples, so its
  text is not expected to match.
- **Candidate tree**: left to right = position; rows sorted by head rank (top-1 chain on top).
  ★ root, green = accepted path, blue = passes the test but not on the chosen path, grey = rejected.
  Hover a node for head, rank, head probability, base probability and threshold.
- **Head proposals**: the top-k tokens and probabilities of each head the tree reaches; green boxes = accepted.
  Token-input heads (Hydra-style) also read the token before their guess, so each branch of the tree
  gets guesses of its own: the row of head d shows those after the accepted token (else after head
  d−1's top-1 token).
- **Acceptance**: for each depth of the chosen candidate row, the base model's probability of the
  candidate. Typical: accepted while it beats the threshold min(ε, α·e^−H) (H = entropy of the base
  distribution there). Greedy: accepted while it is the base model's argmax.
- **Mask**: which tree node may attend to which (its ancestors and itself).
- **Run charts**: accepted tokens per step; their histogram; per-head acceptance rate (head d
  accepted / steps whose tree had a depth-d node); tree cost = nodes verified vs tokens emitted.
- **Honest timing**: tokens/s and ms/token count only each step's measured compute. Every step is
  computed and recorded, but the screen is updated at 1-10 Hz so that streaming costs at most ~3% of
  the decode time; the summary reports the measured share spent outside the engine.
- **Speed-up vs tree width**: short greedy decodes at several widths. On a CPU, verifying many nodes
  is not free, so the best width is small; on a GPU it is much larger.
"""

CSS = "#summary h3 {margin: 0} .lane-stats {font-size: 1.1em}"
RUN_TTL_S = 6 * 3600  # a session's run is dropped this long after its last update, even if the tab stays open


def _step_at(run: dict | None, i) -> dict | None:
    steps = views.medusa_decode_steps(run)
    if not steps:
        return None
    i = max(1, min(int(i or 1), len(steps)))
    return steps[i - 1]


def _slider(n: int, value: int) -> gr.Slider:
    """The step slider for n Medusa steps (Gradio needs minimum < maximum)."""
    return gr.Slider(minimum=1, maximum=max(n, 2), value=value)


def _session(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None)


def build_demo(engines: Engines | None = None, runs_dir: Path = RUNS_DIR) -> gr.Blocks:
    """The app. `engines` defaults to the shipped head sets on the embedded default model, each
    loaded on first use; the first head set is the default choice."""
    engines = engines or shipped_engines()
    runs_dir = Path(runs_dir)
    stops = StopSignals()

    with gr.Blocks(title="Medusa Lens", delete_cache=(files.EXPORT_TTL_S, files.EXPORT_TTL_S)) as demo:
        gr.Markdown("# Medusa Lens: Medusa vs vanilla decoding, step by step")
        header = gr.Markdown("*loading the model…*", elem_id="header")
        with gr.Accordion("How Medusa works, and what each chart and number means", open=False):
            gr.Markdown(EXPLAINER)

        with gr.Row():
            with gr.Column(scale=3):
                prompt = gr.Textbox(label="Prompt", lines=2, value=EXAMPLES[0][0], elem_id="prompt")
                system = gr.Textbox(label="System prompt", lines=1, elem_id="system",
                                    info="The chat template adds this; edit it, or leave it empty for the template's default.")
                gr.Examples(EXAMPLES, inputs=[prompt], label="Examples (prose, code, a list, math)")
                with gr.Row():
                    run_btn = gr.Button("Run", variant="primary", elem_id="run")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="stop")
                with gr.Row(equal_height=True):
                    recorded = gr.Dropdown(files.recorded_runs(runs_dir), label="Recorded runs (replay, no compute)",
                                           value=None, elem_id="recorded", scale=2)
                    download = gr.DownloadButton("Export run (JSONL)", value=None, elem_id="export", scale=1)
                importer = gr.File(label="Import a run (.jsonl) into the inspector", file_types=[".jsonl"],
                                   height=100, elem_id="import")
            with gr.Column(scale=2):
                heads_set = gr.Dropdown(list(engines.names), value=engines.default, label="Heads", elem_id="heads",
                                        info="The head set that drafts tokens (untrained: zero-initialised heads).")
                preset = gr.Radio(list(PRESETS), label="Presets", value=None,
                                  info="Set the knobs below; press Run to use them.")
                mode = gr.Radio(list(MODES), value="greedy", label="Acceptance",
                                info="greedy: exact (same text as vanilla); typical: sampling, accepts plausible tokens.")
                with gr.Row():
                    temperature = gr.Slider(0.05, MAX_TEMPERATURE, 0.7, step=0.05, label="Temperature",
                                            info="Typical mode only: sampling temperature.")
                    epsilon = gr.Slider(0.01, 1.0, 0.09, step=0.01, label="ε (threshold)",
                                        info="Typical: accept if p_base > min(ε, α·e^−H); larger = stricter.")
                    alpha = gr.Slider(0.0, 1.0, 0.0, step=0.01, label="α",
                                      info="Entropy-scaled threshold factor; 0 means √ε (the default).")
                with gr.Row():
                    width = gr.Slider(1, MAX_WIDTH, 16, step=1, label="Tree width",
                                      info="Nodes verified per step (root included) of the calibrated tree.")
                    heads_used = gr.Slider(1, 4, 4, step=1, label="Heads used",
                                           info="Limits the tree depth to the first n heads.")
                with gr.Row():
                    tree_shape = gr.Radio(list(TREE_SHAPES), value="calibrated", label="Tree shape",
                                          info="calibrated: best tree of this width; chain: top-1 of each head.")
                    max_new = gr.Slider(8, MAX_NEW_TOKENS, 96, step=8, label="Max new tokens",
                                        info="Tokens each lane generates at most.")

        summary = gr.Markdown("Press **Run** to race Medusa against vanilla decoding.", elem_id="summary")
        with gr.Row(equal_height=True):
            with gr.Column():
                gr.Markdown("### Vanilla (one token per forward pass)")
                v_stats = gr.Markdown(elem_classes=["lane-stats"], elem_id="vanilla-stats")
                v_text = gr.Textbox(label="Vanilla output", lines=10, max_lines=14, elem_id="vanilla-text",
                                    interactive=False, autoscroll=True)
            with gr.Column():
                gr.Markdown("### Medusa (coloured by the head that produced each token)")
                m_stats = gr.Markdown(elem_classes=["lane-stats"], elem_id="medusa-stats")
                m_text = gr.HighlightedText(label="Medusa output", color_map=views.color_map(4), show_legend=True,
                                            show_inline_category=False, elem_id="medusa-text")
                colour = gr.Checkbox(True, label="Colour tokens by head (plain: the base model's own token)")

        gr.Markdown("## Step inspector")
        with gr.Row():
            prev_btn = gr.Button("◀", scale=0, min_width=50, elem_id="prev")
            step_slider = gr.Slider(1, 2, 1, step=1, label="Medusa step", elem_id="step-slider", scale=6)
            next_btn = gr.Button("▶", scale=0, min_width=50, elem_id="next")
            play_btn = gr.Button("Play / Pause", scale=0, min_width=110, elem_id="play")
        caption = gr.Markdown(elem_id="step-caption")
        with gr.Row():
            tree_plot = gr.Plot(label="Candidate tree", elem_id="tree-plot", scale=3)
            heads_plot = gr.Plot(label="Head proposals (heads × top-k)", elem_id="heads-plot", scale=2)
        with gr.Row():
            accept_plot = gr.Plot(label="Acceptance on the chosen row", elem_id="accept-plot", scale=3)
            mask_plot = gr.Plot(label="Tree attention mask", elem_id="mask-plot", scale=2)
        gr.Markdown("## Run charts")
        charts = gr.Plot(figures.as_plot(figures.empty_figure("no run yet", 200)), label="Run charts",
                         elem_id="charts-plot")
        with gr.Row():
            sweep_btn = gr.Button("Measure speed-up vs tree width (32-token greedy decodes)", elem_id="sweep")
        sweep_plot = gr.Plot(figures.as_plot(figures.sweep_figure([], 200)), label="Speed-up vs tree width",
                             elem_id="sweep-plot")

        # per session: {"header": ..., "steps": [step dicts in race order]}; Gradio drops it RUN_TTL_S after its
        # last update, or an hour after the session ends
        run_state = gr.State(None, time_to_live=RUN_TTL_S)
        playing = gr.State(False)
        timer = gr.Timer(PLAY_EVERY_S, active=False)

        inspector_out = [tree_plot, heads_plot, accept_plot, mask_plot, caption]
        replay_out = [v_text, m_text, v_stats, m_stats, summary, charts, step_slider, run_state, download,
                      *inspector_out]

        # ------------------------------------------------------------------ replay / import
        def show_run(run: dict, colour_on: bool, session: str | None, path: Path | None = None):
            vals = views.replay_values(run, colour_on)
            n = max(len(vals["steps"]), 1)
            if not (path and path.resolve().is_relative_to(Path.cwd().resolve())):
                path = files.write_export(run, session)  # Gradio serves files under the cwd or the temp dir
            return (vals["vanilla_text"], vals["medusa_text"], vals["vanilla_stats"], vals["medusa_stats"],
                    vals["summary"], vals["charts"], _slider(n, 1), run, str(path),
                    *views.inspector(_step_at(run, 1)))

        def load_recorded(name, colour_on, request: gr.Request = None):
            """Replay a recorded run: `name` must be one of the listed recorded runs."""
            if not name:
                return [gr.skip()] * len(replay_out)
            try:
                path = files.recorded_path(runs_dir, name)
                return show_run(export.read(path), colour_on, _session(request), path)
            except (files.FileRefused, export.ExportError) as err:
                raise gr.Error(f"{name}: {err}")

        def import_run(file, colour_on, request: gr.Request = None):
            """Show an imported run: `file` must be the upload Gradio stored in its upload folder."""
            if file is None:
                return [gr.skip()] * len(replay_out)
            try:
                path = files.uploaded_path(file, demo.GRADIO_CACHE)
                return show_run(export.read(path), colour_on, _session(request))
            except files.FileRefused as err:
                raise gr.Error(str(err))
            except export.ExportError as err:
                raise gr.Error(f"cannot import {Path(file).name}: {err}")

        def on_load(colour_on, request: gr.Request = None):
            names = files.recorded_runs(runs_dir)
            if not names:
                return [gr.skip()] * len(replay_out) + [gr.skip()]
            try:
                first = runs_dir / names[0]
                return [*show_run(export.read(first), colour_on, _session(request), first),
                        gr.Dropdown(value=names[0])]
            except export.ExportError:
                return [gr.skip()] * len(replay_out) + [gr.skip()]

        def show_heads(name):
            """Header, default system prompt, heads-used slider and colours for head set `name` (loads it)."""
            try:
                eng = engines.get(name)
                info = eng.info()
            except ValueError as err:
                raise gr.Error(str(err))
            return (views.header_markdown(info), gr.Textbox(value=eng.default_system()),
                    gr.Slider(maximum=info["num_heads"], value=info["num_heads"]),
                    gr.HighlightedText(color_map=views.color_map(info["num_heads"])))

        def end_session(request: gr.Request):
            """The session ended (tab closed): delete its exports now; Gradio drops its state later."""
            files.drop_session(_session(request))

        heads_out = [header, system, heads_used, m_text]
        demo.load(on_load, [colour], [*replay_out, recorded], api_visibility="private")
        demo.load(show_heads, [heads_set], heads_out, api_visibility="private")
        demo.unload(end_session)
        recorded.input(load_recorded, [recorded, colour], replay_out, api_visibility="private")
        importer.upload(import_run, [importer, colour], replay_out, api_visibility="private")
        # choosing a head set may load a model and warm it up: compute, so it waits for the device
        heads_set.input(show_heads, [heads_set], heads_out, api_visibility="private", concurrency_limit=1,
                        concurrency_id="compute")

        # ------------------------------------------------------------------ the race
        @GPU(duration=120)
        def run_race(prompt_text, system_text, heads_name, mode_v, temp_v, eps_v, alpha_v, width_v, heads_v, shape_v,
                     max_v, colour_on, request: gr.Request = None):
            """Race vanilla and Medusa decoding on one prompt with head set `heads_name`; streams both lanes,
            the inspector and (first) the header of the engine that runs. Inputs arrive unprocessed: every
            value is validated here, and a bad one ends the run with a gr.Error naming it."""
            t_start = time.perf_counter()
            try:
                settings = Settings.from_ui(mode_v, temp_v, eps_v, alpha_v, width_v, heads_v, shape_v, max_v)
                eng = engines.get(heads_name)
                plan = eng.plan(prompt_text, system_text or None, settings)
            except ValueError as err:
                raise gr.Error(str(err))
            run = new_run(eng, plan)
            info = run["header"]
            header_md = views.header_markdown(info)
            lanes = {"vanilla": Lane("vanilla"), "medusa": Lane("medusa")}
            last_text = last_fig = 0.0
            every_s = MIN_EVERY_S
            compute_ms = 0.0
            first_token_ms = None
            t0 = time.perf_counter()
            engine_ms = ui_ms = stream_ms = 0.0  # wall time in the engine's generators / our UI code / Gradio
            events = race_events(eng, plan)
            stop = stops.arm(_session(request))
            try:
                while True:
                    if stop.is_set():
                        return  # Stop: no further engine step (Gradio's cancel ends the stream)
                    t_a = time.perf_counter()
                    try:
                        lane, step, _clocks = next(events)
                    except StopIteration:
                        break
                    now = time.perf_counter()
                    engine_ms += (now - t_a) * 1e3
                    compute_ms += step.timing.total_ms
                    d = step.to_dict()
                    run["steps"].append(d)
                    lanes[lane].add(d)
                    first = first_token_ms is None and bool(step.tokens)
                    if first:
                        first_token_ms = (now - t_start) * 1e3
                    if not (first or now - last_text >= every_s):
                        ui_ms += (time.perf_counter() - now) * 1e3
                        continue
                    last_text = now
                    figs = [gr.skip()] * 5
                    slider = gr.skip()
                    mst = lanes["medusa"].steps
                    if mst and (now - last_fig >= FIGURES_EVERY_S):
                        last_fig = now
                        figs = list(views.inspector(mst[-1]))
                        slider = _slider(len(mst), len(mst))
                    out = (lanes["vanilla"].text, views.highlight(mst, colour_on), views.lane_stats(lanes["vanilla"]),
                           views.lane_stats(lanes["medusa"], True), views.summary(lanes, settings.mode),
                           gr.skip(), slider, run, None if first else gr.skip(), *figs,  # no stale export
                           header_md if first else gr.skip())
                    t_y = time.perf_counter()
                    ui_ms += (t_y - now) * 1e3
                    yield out
                    cost = time.perf_counter() - t_y
                    stream_ms += cost * 1e3
                    every_s = min(MAX_EVERY_S, max(MIN_EVERY_S, 0.7 * every_s + 0.3 * cost / STREAM_BUDGET))
                wall_ms = (time.perf_counter() - t0) * 1e3
                outside = max(0.0, 1 - compute_ms / wall_ms) if wall_ms else 0.0
                run["header"]["measured"] = {
                    "first_token_ms": first_token_ms, "decode_wall_ms": wall_ms, "engine_compute_ms": compute_ms,
                    "engine_tracing_ms": engine_ms - compute_ms, "ui_ms": ui_ms, "streaming_ms": stream_ms,
                    "outside_engine_share": outside}
                extra = (f"first token {first_token_ms or 0:.0f} ms after Run · decode wall time {wall_ms / 1e3:.1f} s, "
                         f"{100 * outside:.1f}% of it outside the engine's compute (tracing "
                         f"{100 * (engine_ms - compute_ms) / wall_ms:.1f}%, figures/text "
                         f"{100 * ui_ms / wall_ms:.1f}%, streaming {100 * stream_ms / wall_ms:.1f}%) · "
                         f"{info['device']}, {info['dtype']}, {plan.config.backend} decoder"
                         f", {info.get('matmuls', 'plain')} matmuls")
                mst = lanes["medusa"].steps
                n = max(len(mst), 1)
                yield (lanes["vanilla"].text, views.highlight(mst, colour_on), views.lane_stats(lanes["vanilla"]),
                       views.lane_stats(lanes["medusa"], True), views.summary(lanes, settings.mode, extra=extra),
                       figures.as_plot(figures.run_charts(mst)), _slider(n, n), run,
                       files.write_export(run, _session(request)), *views.inspector(mst[-1] if mst else None),
                       header_md)
            finally:
                events.close()  # closes both engine generators (frees their KV caches)
                stops.release(_session(request), stop)

        race_inputs = [prompt, system, heads_set, mode, temperature, epsilon, alpha, width, heads_used, tree_shape,
                       max_new, colour]
        race_outputs = [*replay_out, header]
        run_event = gr.on([run_btn.click, prompt.submit], run_race, race_inputs, race_outputs, api_name="race",
                          concurrency_limit=1, concurrency_id="compute", show_progress="minimal",
                          trigger_mode="once", preprocess=False)

        def request_stop(request: gr.Request):
            """Stop this session's race before its next engine step (API clients: call this, then cancel)."""
            stops.stop(_session(request))

        stop_btn.click(request_stop, None, None, api_name="stop", queue=False)
        stop_btn.click(None, None, None, cancels=[run_event], api_visibility="private")

        # ------------------------------------------------------------------ step inspector (no compute)
        def show_step(run, i):
            return views.inspector(_step_at(run, i))

        def move(run, i, delta):
            n = len(views.medusa_decode_steps(run))
            if not n:
                return gr.skip(), *[gr.skip()] * 5
            i = max(1, min(int(i or 1) + delta, n))
            return gr.Slider(value=i), *views.inspector(_step_at(run, i))

        step_slider.input(show_step, [run_state, step_slider], inspector_out, trigger_mode="always_last",
                          show_progress="hidden", api_visibility="private")
        step_slider.release(show_step, [run_state, step_slider], inspector_out, trigger_mode="always_last",
                            show_progress="hidden", api_visibility="private")
        def prev_step(run, i):
            return move(run, i, -1)

        def next_step(run, i):
            return move(run, i, +1)

        prev_btn.click(prev_step, [run_state, step_slider], [step_slider, *inspector_out],
                       show_progress="hidden", api_visibility="private")
        next_btn.click(next_step, [run_state, step_slider], [step_slider, *inspector_out],
                       show_progress="hidden", api_visibility="private")

        def toggle_play(is_playing, run, i):
            n = len(views.medusa_decode_steps(run))
            start = not is_playing and n > 0
            restart = start and int(i or 1) >= n
            return (not is_playing if n else False), gr.Timer(active=start), \
                (gr.Slider(value=1) if restart else gr.skip())

        def tick(run, i):
            n = len(views.medusa_decode_steps(run))
            i = int(i or 1)
            if i >= n:
                return False, gr.Timer(active=False), gr.skip(), *[gr.skip()] * 5
            return True, gr.skip(), gr.Slider(value=i + 1), *views.inspector(_step_at(run, i + 1))

        play_btn.click(toggle_play, [playing, run_state, step_slider], [playing, timer, step_slider],
                       api_visibility="private")
        timer.tick(tick, [run_state, step_slider], [playing, timer, step_slider, *inspector_out],
                   show_progress="hidden", api_visibility="private")
        colour.change(lambda run, c: views.highlight(views.medusa_decode_steps(run), c), [run_state, colour], [m_text],
                      api_visibility="private")

        def apply_preset(name):
            m, t, e, a, w, h, s = PRESETS[name]
            return m, t, e, a, w, h, s

        preset.input(apply_preset, [preset], [mode, temperature, epsilon, alpha, width, heads_used, tree_shape],
                     api_visibility="private")

        # ------------------------------------------------------------------ sweep (compute)
        @GPU(duration=300)
        def run_sweep(prompt_text, system_text, heads_name, heads_v):
            """Measured speed-up of 32-token greedy decodes at tree widths 1..64 (streams one point per width)."""
            try:
                settings = Settings(heads_used=heads_v, max_new_tokens=32)
                eng = engines.get(heads_name)
                plan = eng.plan(prompt_text, system_text or None, settings)
            except ValueError as err:
                raise gr.Error(str(err))
            for results in sweep(eng, plan):
                yield figures.as_plot(figures.sweep_figure(results))

        sweep_event = sweep_btn.click(run_sweep, [prompt, system, heads_set, heads_used], [sweep_plot],
                                      api_name="sweep", concurrency_limit=1, concurrency_id="compute",
                                      show_progress="minimal", trigger_mode="once", preprocess=False)
        stop_btn.click(None, None, None, cancels=[sweep_event], api_visibility="private")

    demo.queue(max_size=20)
    return demo


def launch(demo: gr.Blocks, **kwargs):
    import os

    kwargs.setdefault("server_name", os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    kwargs.setdefault("css", CSS)
    return demo.launch(**kwargs)
