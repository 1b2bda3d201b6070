"""Helpers for the app tests (no tests here): an Engine on the tiny random model, and a launched app."""
from __future__ import annotations

from conftest import random_heads, tiny_backbone

from app.engine import Engine
from medusa_engine.bundle import UNCALIBRATED_HIT_RATES, HeadSet


class Recording(Engine):
    """An engine that remembers its generators (to check they get closed) and can slow each step."""

    def __init__(self, *a, delay_s: float = 0.0, **kw):
        super().__init__(*a, **kw)
        self.generators, self.delay_s = [], delay_s

    def _wrap(self, gen):
        self.generators.append(gen)
        if not self.delay_s:
            return gen

        def slow():
            import time

            try:
                for step in gen:
                    time.sleep(self.delay_s)
                    yield step
            finally:
                gen.close()

        return slow()

    def vanilla(self, plan):
        return self._wrap(super().vanilla(plan))

    def medusa(self, plan, tree=None):
        return self._wrap(super().medusa(plan, tree))


def tiny_engine(recording: bool = False, max_positions: int = 4096, delay_s: float = 0.0) -> Engine:
    b = tiny_backbone(max_positions=max_positions)
    hs = HeadSet(random_heads(b), "random-test-heads", UNCALIBRATED_HIT_RATES, False)
    if recording:
        return Recording(lambda: (b, hs), delay_s=delay_s)
    return Engine(lambda: (b, hs))


def launched(demo):
    """Launch `demo` on a free local port without blocking; returns its URL."""
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    return url


def run_steps(engine: Engine, prompt: str = "hello", **settings) -> dict:
    from app.runner import record
    from app.settings import Settings

    return record(engine, engine.plan(prompt, None, Settings(**settings)))
