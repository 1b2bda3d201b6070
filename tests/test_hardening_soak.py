"""Long runs and session lifetime: fifty consecutive races in one process on the real default model
keep resident memory flat, and a session's state and files are dropped when the session ends (or
when its run outlives its time to live)."""
from __future__ import annotations

import gc
import time
from pathlib import Path

import gradio as gr
import pytest
from test_app_helpers import TINY_HEADS, launched, tiny_engine, tiny_engines

from app import files, ui
from app.engine import Engine
from app.engines import DEFAULT_HEAD_SET, Engines
from medusa_engine.bundle import DEFAULT_HEADS

PROMPTS = ["What is 2+3?", "Name a colour.", "Say hi.", "Spell cat.", "One word for happy?"]


def rss_kib() -> int:
    """Resident memory of this process (VmRSS, KiB)."""
    line = next(ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("VmRSS:"))
    return int(line.split()[1])


def fn(demo: gr.Blocks, name: str):
    return next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == name)


@pytest.mark.slow
def test_fifty_races_keep_memory_flat(real):
    """Each race goes through the app's own streaming function (engine, figures, export) to the end."""
    engine = Engine.for_heads(str(DEFAULT_HEADS), lambda _delta: real)
    run_race = fn(ui.build_demo(Engines.fixed({DEFAULT_HEAD_SET: engine})), "run_race")
    rss = {}
    for i in range(1, 51):
        updates = list(run_race(PROMPTS[i % len(PROMPTS)], "", DEFAULT_HEAD_SET, "greedy", 0.7, 0.09, 0.0, 16, 4,
                                "calibrated", 4, True))
        assert updates[-1][0]  # the vanilla text of a finished race
        if i in (5, 50):
            gc.collect()
            rss[i] = rss_kib()
    print(f"VmRSS after run 5: {rss[5] / 1024:.1f} MiB, after run 50: {rss[50] / 1024:.1f} MiB")
    assert rss[50] <= 1.05 * rss[5], rss


def state_values(demo: gr.Blocks, session: str) -> list:
    """The runs Gradio holds for a session: the values of its run state (the gr.State with a time to
    live), read from Gradio's own store."""
    run_state = next(b for b in demo.blocks.values() if isinstance(b, gr.State) and b.time_to_live)
    data = demo.state_holder.session_data.get(session)
    value = None if data is None else data.state_data.get(run_state._id)
    return [] if value is None else [value]


def wait_until(condition, timeout_s: float) -> bool:
    deadline = time.time() + timeout_s
    while not condition() and time.time() < deadline:
        time.sleep(0.05)
    return condition()


ARGS = ("hello", "", TINY_HEADS, "greedy", 0.7, 0.09, 0.0, 8, 4, "calibrated", 8, True)


@pytest.fixture
def fast_sessions(monkeypatch):
    """Heartbeats every 0.2 s, and a closed session's state kept 1 s instead of an hour (Gradio's
    end-to-end test setting), so that a session's end is seen in seconds."""
    monkeypatch.setenv("GRADIO_HEARTBEAT_INTERVAL", "0.2")
    monkeypatch.setenv("GRADIO_IS_E2E_TEST", "1")


def test_ended_session_drops_its_state_and_exports(fast_sessions):
    from gradio_client import Client

    demo = ui.build_demo(tiny_engines(tiny_engine()))
    url = launched(demo)
    try:
        a, b = Client(url, verbose=False), Client(url, verbose=False)
        for client in (a, b):
            client.predict(*ARGS, api_name="/race")
        assert state_values(demo, a.session_hash) and state_values(demo, b.session_hash)
        assert list(files.session_dir(a.session_hash).glob("*.jsonl"))
        a.close()  # the tab closes: its heartbeat stops
        assert wait_until(lambda: not files.session_dir(a.session_hash).exists(), 20), "exports kept"
        assert wait_until(lambda: not state_values(demo, a.session_hash), 20), "state kept"
        assert state_values(demo, b.session_hash) and files.session_dir(b.session_hash).is_dir()
        b.close()
    finally:
        demo.close()


def test_run_state_expires_while_the_tab_stays_open(monkeypatch):
    from gradio_client import Client

    monkeypatch.setattr(ui, "RUN_TTL_S", 3)
    demo = ui.build_demo(tiny_engines(tiny_engine()))
    url = launched(demo)
    try:
        client = Client(url, verbose=False)
        client.predict(*ARGS, api_name="/race")
        assert state_values(demo, client.session_hash)[0]["header"]["prompt"] == "hello"
        assert wait_until(lambda: not state_values(demo, client.session_hash), 15)
        client.close()
    finally:
        demo.close()
