"""Stop signals: armed per run, set by Stop for that session only, released when the run ends."""
from __future__ import annotations

from app.stops import StopSignals


def test_stop_reaches_only_its_session_and_runs_release_their_signal():
    stops = StopSignals()
    a, b = stops.arm("a"), stops.arm("b")
    stops.stop("a")
    stops.stop("nobody")
    assert a.is_set() and not b.is_set()
    newer = stops.arm("b")  # a new run of session b replaces the old signal
    stops.release("b", b)  # the old run ending must not drop the newer run's signal
    stops.stop("b")
    assert newer.is_set() and not b.is_set()
    stops.release("a", a)
    stops.release("b", newer)
    assert len(stops) == 0
