"""The head sets the app offers (an allow-list of names, never paths) and one Engine per set.

Each Engine is created on first request and loads on first use; engines whose head sets read the
same backbone (no MEDUSA-2 delta, or the same delta) share one loaded backbone.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable, Mapping, Sequence

from .engine import Engine

HEADS_DIR = Path(__file__).resolve().parent.parent / "assets" / "heads"
DEFAULT_HEAD_SET = "smollm2-135m-medusa1"  # the shipped MEDUSA-1 set: the first (default) choice
UNTRAINED = "untrained"


def head_set_names(heads_dir: Path = HEADS_DIR) -> list[str]:
    """Names of the head sets under `heads_dir` (directories holding a config.json), the shipped
    default first, then the rest sorted, then "untrained"."""
    heads_dir = Path(heads_dir)
    found = sorted(p.name for p in heads_dir.iterdir() if (p / "config.json").is_file()) if heads_dir.is_dir() else []
    first = [DEFAULT_HEAD_SET] if DEFAULT_HEAD_SET in found else []
    return first + [n for n in found if n != DEFAULT_HEAD_SET] + [UNTRAINED]


class Engines:
    """An allow-list of head-set names and the Engine of each, made by `build(name)` once (thread-safe)."""

    def __init__(self, names: Sequence[str], build: Callable[[str], Engine]):
        if not names:
            raise ValueError("no head sets to offer")
        self.names: tuple[str, ...] = tuple(names)
        self._build, self._engines, self._lock = build, {}, threading.Lock()

    @property
    def default(self) -> str:
        return self.names[0]

    def get(self, name: object) -> Engine:
        """The Engine for head set `name`; ValueError unless `name` is one of `names`."""
        if not isinstance(name, str) or name not in self.names:
            raise ValueError(f"unknown head set {name!r}: choose one of {', '.join(self.names)}")
        with self._lock:
            if name not in self._engines:
                self._engines[name] = self._build(name)
            return self._engines[name]

    @classmethod
    def fixed(cls, engines: Mapping[str, Engine]) -> "Engines":
        """Ready-made engines under the given names (tests, scripts); the first is the default."""
        return cls(list(engines), engines.__getitem__)

    @classmethod
    def shipped(cls, heads_dir: Path = HEADS_DIR, device: str | None = None, dtype: str | None = None) -> "Engines":
        """The head sets under `heads_dir` (plus "untrained") on the embedded default model."""
        backbones = _Backbones(device, dtype)

        def build(name: str) -> Engine:
            return Engine.for_heads(UNTRAINED if name == UNTRAINED else str(Path(heads_dir) / name), backbones)

        return cls(head_set_names(heads_dir), build)


class _Backbones:
    """The default model, loaded once per MEDUSA-2 delta (None: the original weights)."""

    def __init__(self, device: str | None, dtype: str | None):
        self.device, self.dtype, self._loaded, self._lock = device, dtype, {}, threading.Lock()

    def __call__(self, delta: str | None):
        from medusa_engine.backbone import load_backbone

        with self._lock:
            if delta not in self._loaded:
                self._loaded[delta] = load_backbone(None, device=self.device, dtype=self.dtype, delta=delta)
            return self._loaded[delta]


_SHIPPED: Engines | None = None
_SHIPPED_LOCK = threading.Lock()


def shipped_engines() -> Engines:
    """The process-wide engines of the shipped head sets (device and dtype from MEDUSA_LENS_DEVICE
    and MEDUSA_LENS_DTYPE); nothing loads until a head set is first used."""
    global _SHIPPED
    with _SHIPPED_LOCK:
        if _SHIPPED is None:
            # float32 even on a GPU by default: in bfloat16, greedy Medusa and greedy vanilla part ways
            # within ~22 tokens on most MT-Bench prompts (near-ties flip; see README), which would hide
            # the lossless property the race is there to show. MEDUSA_LENS_DTYPE=bfloat16 opts in.
            _SHIPPED = Engines.shipped(device=os.environ.get("MEDUSA_LENS_DEVICE"),
                                       dtype=os.environ.get("MEDUSA_LENS_DTYPE", "float32"))
        return _SHIPPED
