"""Helpers for the app tests (no tests here): an Engine on the tiny random model, and a launched app."""
from __future__ import annotations

import threading
import time

from conftest import random_heads, tiny_backbone

from app.engine import Engine
from app.engines import Engines
from medusa_engine.bundle import UNCALIBRATED_HIT_RATES, HeadSet

TINY_HEADS = "random-test-heads"


class Gauge:
    """Counts engine steps executed and the most that ever executed at once (thread-safe)."""

    def __init__(self):
        self.steps = self.active = self.max_active = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)

    def leave(self, executed: bool) -> None:
        with self._lock:
            self.active -= 1
            self.steps += executed


class Recording(Engine):
    """An engine that remembers its generators (to check they get closed), counts its steps on a
    gauge (its own, or one shared by several engines), and can make each step take `delay_s` longer."""

    def __init__(self, *a, delay_s: float = 0.0, gauge: Gauge | None = None, **kw):
        super().__init__(*a, **kw)
        self.generators, self.delay_s, self.gauge = [], delay_s, gauge or Gauge()

    @property
    def steps(self) -> int:
        return self.gauge.steps

    def _wrap(self, gen):
        self.generators.append(gen)

        def counted():
            try:
                while True:
                    self.gauge.enter()
                    step = None
                    try:
                        step = next(gen, None)
                        if step is not None and self.delay_s:
                            time.sleep(self.delay_s)  # the step's compute, as far as the device is concerned
                    finally:
                        self.gauge.leave(step is not None)
                    if step is None:
                        return
                    yield step
            finally:
                gen.close()

        return counted()

    def vanilla(self, plan):
        return self._wrap(super().vanilla(plan))

    def medusa(self, plan, tree=None):
        return self._wrap(super().medusa(plan, tree))


def tiny_engine(recording: bool = False, max_positions: int = 4096, delay_s: float = 0.0, heads_seed: int = 0,
                name: str = TINY_HEADS, gauge: Gauge | None = None) -> Engine:
    """The tiny random model with random heads; the same arguments always give the same weights."""
    b = tiny_backbone(max_positions=max_positions)
    hs = HeadSet(random_heads(b, seed=heads_seed), name, UNCALIBRATED_HIT_RATES, False)
    if recording:
        return Recording(lambda: (b, hs), delay_s=delay_s, gauge=gauge)
    return Engine(lambda: (b, hs))


def tiny_engines(*engines: Engine) -> Engines:
    """The app's head-set choices for ready-made engines, named by their head sets (loads them)."""
    return Engines.fixed({e.head_set.name: e for e in engines})


def launched(demo):
    """Launch `demo` on a free local port without blocking; returns its URL."""
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    return url


def lane_tokens(steps: list[dict]) -> dict[str, list[list[int]]]:
    """Each lane's tokens, step by step (the race's interleaving order depends on timing; this does not)."""
    out: dict[str, list[list[int]]] = {"vanilla": [], "medusa": []}
    for s in steps:
        if s["kind"] == "decode":
            out[s["lane"]].append(list(s["tokens"]))
    return out


def read_run(path: str) -> dict:
    from app import export

    return export.read(path)


def run_steps(engine: Engine, prompt: str = "hello", **settings) -> dict:
    from app.runner import record
    from app.settings import Settings

    return record(engine, engine.plan(prompt, None, Settings(**settings)))
