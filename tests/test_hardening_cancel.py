"""Twenty runs stopped mid-stream at random (seeded) steps through the app's API, as the Stop button
does it (/stop, then Gradio's cancel): no engine step runs after Stop beyond the one in flight, both
engine generators close, the next run equals the same run on a fresh engine, and the process ends
with no more threads than it had before."""
from __future__ import annotations

import random
import threading
import time

import pytest
from test_app_helpers import TINY_HEADS, lane_tokens, launched, read_run, run_steps, tiny_engine, tiny_engines

from app.ui import build_demo

pytestmark = pytest.mark.slow

LONG = ("Tell me a long story.", "", TINY_HEADS, "greedy", 0.7, 0.09, 0.0, 16, 4, "calibrated", 512, True)


def wait_until(condition, timeout_s: float = 30.0) -> bool:
    deadline = time.time() + timeout_s
    while not condition() and time.time() < deadline:
        time.sleep(0.01)
    return condition()


@pytest.fixture(scope="module")
def app():
    from gradio_client import Client

    engine = tiny_engine(recording=True, delay_s=0.01)
    demo = build_demo(tiny_engines(engine))
    client = Client(launched(demo), verbose=False)
    yield engine, client
    client.close()
    demo.close()


def stop_after(engine, client, steps: int) -> tuple[int, list]:
    """Start a long run, Stop it once `steps` more engine steps have run; (steps run after Stop
    returned, the run's engine generators)."""
    start, first = engine.steps, len(engine.generators)
    job = client.submit(*LONG, api_name="/race")
    assert wait_until(lambda: engine.steps >= start + steps), "the run did not start"
    client.predict(api_name="/stop")
    at_stop = engine.steps
    job.cancel()
    gens = engine.generators[first:]
    assert len(gens) == 2 and wait_until(lambda: all(g.gi_frame is None for g in gens)), "generators left open"
    return engine.steps - at_stop, gens


def test_twenty_stops_then_identical_runs(app):
    engine, client = app
    rng = random.Random(20)
    stop_after(engine, client, 3)  # warm up: the server's and the client's worker threads exist now
    baseline = threading.active_count()
    for _ in range(20):
        after, _gens = stop_after(engine, client, rng.randint(1, 80))
        assert after <= 1, f"{after} engine steps ran after Stop"
        assert engine.gauge.active == 0
        settings = {"mode": rng.choice(["greedy", "typical"]), "width": rng.choice([1, 4, 16, 64]),
                    "max_new_tokens": rng.choice([8, 16, 24])}
        prompt = f"question {rng.randint(0, 999)}"
        out = client.predict(prompt, "", TINY_HEADS, settings["mode"], 0.7, 0.09, 0.0, settings["width"], 4,
                             "calibrated", settings["max_new_tokens"], True, api_name="/race")
        fresh = run_steps(tiny_engine(), prompt, **settings)
        assert lane_tokens(read_run(out[7])["steps"]) == lane_tokens(fresh["steps"]), settings
    assert wait_until(lambda: threading.active_count() <= baseline, 40), \
        f"{threading.active_count()} threads alive, {baseline} before the twenty runs"
