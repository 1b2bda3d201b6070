"""Run several decoding lanes on one device without ever computing two at once.

Each lane keeps its own clock, the sum of its steps' measured compute time (prefill included);
the scheduler always advances the lane whose clock is behind. Consumers (the app's race, the
benchmark) thus see each lane progress at its true speed, as if each had the device to itself.
"""
from __future__ import annotations

from typing import Iterator

from .trace import Step


def interleave(lanes: dict[str, Iterator[Step]]) -> Iterator[tuple[str, Step, dict[str, float]]]:
    """Yield (lane, step, clocks in ms) in the order the steps run. Every generator is closed when
    the lanes finish, on error, or when the consumer stops iterating (cancellation)."""
    clocks = {name: 0.0 for name in lanes}
    order = list(lanes)
    live = dict(lanes)
    try:
        while live:
            name = min(live, key=lambda n: (clocks[n], order.index(n)))
            try:
                step = next(live[name])
            except StopIteration:
                del live[name]
                continue
            clocks[name] += step.timing.total_ms
            yield name, step, dict(clocks)
            if step.stop_reason is not None:
                live.pop(name).close()
    finally:
        for gen in lanes.values():
            gen.close()


def run_interleaved(lanes: dict[str, Iterator[Step]]) -> dict[str, list[Step]]:
    """All steps of every lane, run interleaved."""
    steps: dict[str, list[Step]] = {name: [] for name in lanes}
    for name, step, _ in interleave(lanes):
        steps[name].append(step)
    return steps
