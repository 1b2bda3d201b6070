"""Stop signals, one per session. Stop sets its session's signal and the running race checks it before
every engine step, so nothing runs after Stop beyond the step in flight.

Gradio's own cancel (which Stop also fires) takes effect only when the race next yields to the UI, and
the race yields at most a few times a second; between two yields it may run many engine steps.
"""
from __future__ import annotations

import threading


class StopSignals:
    """Thread-safe map session -> threading.Event."""

    def __init__(self):
        self._events: dict[str | None, threading.Event] = {}
        self._lock = threading.Lock()

    def arm(self, session: str | None) -> threading.Event:
        """A fresh, unset signal for a run of `session` that starts now (replaces any older one)."""
        event = threading.Event()
        with self._lock:
            self._events[session] = event
        return event

    def stop(self, session: str | None) -> None:
        """Signal the session's running race, if any, to stop."""
        with self._lock:
            event = self._events.get(session)
        if event is not None:
            event.set()

    def release(self, session: str | None, event: threading.Event) -> None:
        """The run that armed `event` is over: forget it (unless a newer run has armed its own)."""
        with self._lock:
            if self._events.get(session) is event:
                del self._events[session]

    def __len__(self) -> int:
        """Runs armed and not yet released."""
        with self._lock:
            return len(self._events)
