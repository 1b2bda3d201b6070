"""Eight gradio_client sessions at once against one launched app (tiny engines, two head sets): every
request completes, each output equals the same request run alone, nothing crosses between sessions,
the queue tells waiting jobs their position, and no two engine steps ever execute at once."""
from __future__ import annotations

import time

import pytest
from test_app_helpers import Gauge, lane_tokens, launched, read_run, run_steps, tiny_engine

from app.engines import Engines
from app.ui import build_demo

pytestmark = pytest.mark.slow

HEADS = {"heads-a": 1, "heads-b": 2}  # head-set name -> seed of its random heads
# prompt, heads, mode, temperature, epsilon, alpha, width, heads used, tree shape, max new tokens
REQUESTS = [
    ("Tell me about rivers.", "heads-a", "greedy", 0.7, 0.09, 0.0, 16, 4, "calibrated", 24),
    ("Count to ten.", "heads-b", "greedy", 0.7, 0.09, 0.0, 8, 2, "calibrated", 20),
    ("A haiku on frost", "heads-a", "typical", 0.9, 0.2, 0.0, 32, 4, "calibrated", 24),
    ("Why is the sea salty?", "heads-b", "typical", 0.5, 0.09, 0.5, 4, 3, "calibrated", 16),
    ("List three fruits", "heads-a", "greedy", 0.7, 0.09, 0.0, 5, 4, "chain", 24),
    ("Explain recursion", "heads-b", "greedy", 0.7, 0.09, 0.0, 64, 4, "calibrated", 20),
    ("Say hello in French", "heads-a", "typical", 1.2, 0.5, 0.9, 16, 1, "calibrated", 16),
    ("What is 2+2?", "heads-b", "greedy", 0.7, 0.09, 0.0, 1, 4, "calibrated", 24),
]
KNOBS = ("mode", "temperature", "epsilon", "alpha", "width", "heads_used", "tree_shape", "max_new_tokens")


def alone(request: tuple) -> dict:
    """The request run by itself on fresh engines: its run (header + steps)."""
    prompt, heads, *knobs = request
    return run_steps(tiny_engine(heads_seed=HEADS[heads], name=heads), prompt, **dict(zip(KNOBS, knobs)))


@pytest.fixture(scope="module")
def app():
    gauge = Gauge()  # shared: counts steps of both engines
    engines = {name: tiny_engine(recording=True, delay_s=0.01, heads_seed=seed, name=name, gauge=gauge)
               for name, seed in HEADS.items()}
    demo = build_demo(Engines.fixed(engines))
    yield launched(demo), gauge
    demo.close()


def test_eight_sessions_at_once(app):
    from gradio_client import Client

    url, gauge = app
    expected = [alone(r) for r in REQUESTS]
    clients = [Client(url, verbose=False) for _ in REQUESTS]
    try:
        jobs = [c.submit(prompt, "", heads, *knobs, True, api_name="/race")
                for c, (prompt, heads, *knobs) in zip(clients, REQUESTS)]
        ranks: list[set[int]] = [set() for _ in jobs]
        deadline = time.time() + 300
        while not all(j.done() for j in jobs) and time.time() < deadline:
            for seen, job in zip(ranks, jobs):
                rank = job.status().rank
                if rank is not None:
                    seen.add(rank)
            time.sleep(0.01)
        outputs = [j.result(timeout=10) for j in jobs]
    finally:
        for c in clients:
            c.close()

    for request, want, out in zip(REQUESTS, expected, outputs):
        got = read_run(out[7])  # the session's own export
        assert got["header"]["prompt"] == request[0] and got["header"]["heads"] == request[1]
        assert {k: got["header"]["settings"][k] for k in KNOBS} == {k: want["header"]["settings"][k] for k in KNOBS}
        assert lane_tokens(got["steps"]) == lane_tokens(want["steps"]), request
        assert out[0] == "".join(s["text"] for s in want["steps"] if s["lane"] == "vanilla")
    assert len({out[0] for out in outputs}) == len(REQUESTS)  # eight different answers, none swapped
    assert gauge.max_active == 1, "two engine steps executed at the same time"
    assert max(max(seen, default=0) for seen in ranks) >= 3, ranks  # waiting jobs were told their position
