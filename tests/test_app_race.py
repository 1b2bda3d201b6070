"""The race scheduler, lane statistics and the identical/diverges badge."""
from __future__ import annotations

import pytest

from app.race import Lane, badge, compare, lanes_from_steps, overhead, race, speedup
from medusa_engine.trace import Step, Timing


def fake_lane(name: str, ms: list[float], log: list, tokens_per_step: int = 1):
    """A generator like the engine's: a prefill step, then decode steps of the given compute times."""
    try:
        for i, t in enumerate(ms):
            last = i == len(ms) - 1
            log.append((name, i))
            yield Step(lane=name, index=i, tokens=[] if i == 0 else [i] * tokens_per_step, text="" if i == 0 else "x",
                       timing=Timing(verify_ms=t), kind="prefill" if i == 0 else "decode",
                       stop_reason="max_new_tokens" if last and i else None)
    finally:
        log.append((name, "closed"))


def test_race_advances_the_lane_whose_clock_is_behind():
    log = []
    v = fake_lane("vanilla", [10] + [10] * 6, log)
    m = fake_lane("medusa", [10] + [25] * 3, log)
    order = [(lane, step.index, clocks[lane]) for lane, step, clocks in race({"vanilla": v, "medusa": m})]
    clocks = {"vanilla": 0.0, "medusa": 0.0}
    for lane, _, clock in order:
        # the lane that ran was (one of) the furthest behind before it ran
        assert clocks[lane] <= min(clocks.values()) + 1e-9
        clocks[lane] = clock
    assert [o[1] for o in order if o[0] == "vanilla"] == list(range(7))
    assert [o[1] for o in order if o[0] == "medusa"] == list(range(4))
    assert ("vanilla", "closed") in log and ("medusa", "closed") in log


def test_race_never_runs_two_steps_at_once_and_closes_on_early_exit():
    log = []
    v = fake_lane("vanilla", [1] * 50, log)
    m = fake_lane("medusa", [1] * 50, log)
    events = race({"vanilla": v, "medusa": m})
    for n, _ in enumerate(events):
        if n == 5:
            break
    events.close()  # what Stop / a cancelled Gradio generator does
    assert log.count(("vanilla", "closed")) == 1 and log.count(("medusa", "closed")) == 1
    steps_run = [e for e in log if e[1] != "closed"]
    assert len(steps_run) == 6  # strictly one step at a time, nothing computed ahead


def test_race_closes_generators_on_error():
    log = []

    def broken():
        yield Step(lane="medusa", index=0, tokens=[], text="", timing=Timing(), kind="prefill")
        raise RuntimeError("boom")

    v = fake_lane("vanilla", [1] * 5, log)
    with pytest.raises(RuntimeError):
        list(race({"vanilla": v, "medusa": broken()}))
    assert ("vanilla", "closed") in log


def test_lane_stats():
    lane = Lane("medusa")
    lane.add({"kind": "prefill", "timing": {"verify_ms": 50.0}, "tokens": [], "text": "", "stop_reason": None})
    for _ in range(4):
        lane.add({"kind": "decode", "timing": {"heads_ms": 1.0, "verify_ms": 19.0}, "tokens": [1, 2], "text": "ab",
                  "stop_reason": None})
    assert lane.tokens == 8 and lane.decode_ms == 80 and lane.clock_ms == 130
    assert lane.ms_per_token == 10 and lane.tokens_per_s == pytest.approx(100)
    assert lane.tokens_per_step == 2 and lane.ms_per_step == 20
    v = Lane("vanilla")
    for _ in range(8):
        v.add({"kind": "decode", "timing": {"verify_ms": 15.0}, "tokens": [1], "text": "a", "stop_reason": None})
    assert speedup(v, lane) == pytest.approx(1.5)
    assert overhead(v, lane) == pytest.approx(20 / 15)


def test_compare_and_badge():
    assert compare([1, 2, 3], [1, 2, 3], True) == (True, None)
    assert compare([1, 2, 3], [1, 5, 3], True) == (False, 1)
    assert compare([1, 2, 3], [1, 2], True) == (False, 2)
    assert compare([1, 2, 3], [1, 2], False) == (True, None)
    v, m = Lane("vanilla", token_ids=[1, 2, 3], stop_reason="eos"), Lane("medusa", token_ids=[1, 9, 3], stop_reason="eos")
    assert "diverges at token 1" in badge(v, m, "greedy")
    m.token_ids = [1, 2, 3]
    assert badge(v, m, "greedy").startswith("✓ identical to vanilla")
    assert "not expected to match" in badge(v, m, "typical")


def test_real_race_on_tiny_model_is_identical_in_greedy():
    from test_app_helpers import run_steps, tiny_engine

    run = run_steps(tiny_engine(), width=16, max_new_tokens=40)
    lanes = lanes_from_steps(run["steps"])
    assert lanes["vanilla"].finished and lanes["medusa"].finished
    assert lanes["vanilla"].token_ids == lanes["medusa"].token_ids
    assert lanes["vanilla"].text == lanes["medusa"].text
