"""Per-lane statistics of a race (pure Python on step records). The scheduler itself, `race`, is the
engine's `interleave`: it always advances the lane whose own clock is behind."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from medusa_engine.interleave import interleave as race  # noqa: F401  (the scheduler, re-exported)

LANES = ("vanilla", "medusa")


def _total_ms(step) -> float:
    """Compute ms of a Step or of a step dict."""
    t = step["timing"] if isinstance(step, dict) else step.timing
    return t.total_ms if hasattr(t, "total_ms") else sum(t.values())


@dataclass
class Lane:
    """Running totals of one lane, updated step by step from step dicts (Step.to_dict())."""

    name: str
    steps: list = field(default_factory=list)  # decode steps only
    prefill_ms: float = 0.0
    decode_ms: float = 0.0
    token_ids: list[int] = field(default_factory=list)
    text: str = ""
    stop_reason: str | None = None

    def add(self, step: dict) -> None:
        if step["kind"] == "prefill":
            self.prefill_ms = _total_ms(step)
            return
        self.steps.append(step)
        self.decode_ms += _total_ms(step)
        self.token_ids.extend(step["tokens"])
        self.text += step["text"]
        self.stop_reason = step["stop_reason"]

    @property
    def clock_ms(self) -> float:
        return self.prefill_ms + self.decode_ms

    @property
    def tokens(self) -> int:
        return len(self.token_ids)

    @property
    def tokens_per_s(self) -> float:
        return 1e3 * self.tokens / self.decode_ms if self.decode_ms else 0.0

    @property
    def ms_per_token(self) -> float:
        return self.decode_ms / self.tokens if self.tokens else 0.0

    @property
    def ms_per_step(self) -> float:
        return self.decode_ms / len(self.steps) if self.steps else 0.0

    @property
    def tokens_per_step(self) -> float:
        return self.tokens / len(self.steps) if self.steps else 0.0

    @property
    def finished(self) -> bool:
        return self.stop_reason is not None


def lanes_from_steps(steps: Iterable[dict]) -> dict[str, Lane]:
    lanes = {name: Lane(name) for name in LANES}
    for s in steps:
        lanes.setdefault(s["lane"], Lane(s["lane"])).add(s)
    return lanes


def compare(vanilla: list[int], medusa: list[int], complete: bool) -> tuple[bool, int | None]:
    """(identical, first differing token index). With `complete` False only the common prefix counts."""
    n = min(len(vanilla), len(medusa))
    for i in range(n):
        if vanilla[i] != medusa[i]:
            return False, i
    if complete and len(vanilla) != len(medusa):
        return False, n
    return True, None


def badge(vanilla: Lane, medusa: Lane, mode: str) -> str:
    """'identical to vanilla' or 'diverges at token i' (plus a note for typical acceptance)."""
    complete = vanilla.finished and medusa.finished
    same, at = compare(vanilla.token_ids, medusa.token_ids, complete)
    if same:
        text = "✓ identical to vanilla" + ("" if complete else " so far")
    else:
        text = f"✗ diverges at token {at}"
    if mode == "typical":
        text += " (typical acceptance samples: the texts are not expected to match)"
    return text


def speedup(vanilla: Lane, medusa: Lane) -> float | None:
    """vanilla time / Medusa time for the same number of tokens (= ratio of ms/token)."""
    if not (vanilla.ms_per_token and medusa.ms_per_token):
        return None
    return vanilla.ms_per_token / medusa.ms_per_token


def overhead(vanilla: Lane, medusa: Lane) -> float | None:
    """Medusa step time / vanilla step time."""
    if not (vanilla.ms_per_step and medusa.ms_per_step):
        return None
    return medusa.ms_per_step / vanilla.ms_per_step

