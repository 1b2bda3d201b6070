"""The run settings the UI controls, validated; presets. Pure Python (the engine is imported lazily).

Values may come straight from the API (the race does not let Gradio preprocess them), so every
field is checked here: its type, that it is finite, and that it lies in the range its control offers.
Errors are ValueErrors that name the control, e.g. "Tree width must be a whole number in 1..64, got 2.5".
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

MODES = ("greedy", "typical")
TREE_SHAPES = ("calibrated", "chain")
MAX_WIDTH = 64
MAX_NEW_TOKENS = 512
MAX_TEMPERATURE = 2.0
MAX_TOP_K = 10  # calibrations hold hit rates for ranks 0..9
MAX_HEADS = 16  # more than any head set holds; the engine checks its own head count


def _number(label: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{label} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{label} must be a finite number, got {value!r}")
    return float(value)


def real_in(label: str, value: object, low: float, high: float, open_low: bool = False) -> float:
    """`value` as a float in [low, high] ((low, high] with `open_low`), else a ValueError naming `label`."""
    x = _number(label, value)
    if x < low or (open_low and x == low) or x > high:
        raise ValueError(f"{label} must lie in {'(' if open_low else '['}{low:g}, {high:g}], got {x:g}")
    return x


def whole_in(label: str, value: object, low: int, high: int) -> int:
    """`value` as an int in low..high (an integral float such as 16.0 is accepted), else a ValueError."""
    x = _number(label, value)
    if not x.is_integer() or not low <= x <= high:
        raise ValueError(f"{label} must be a whole number in {low}..{high}, got {value!r}")
    return int(x)


def choice_in(label: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{label} must be one of {', '.join(choices)}; got {value!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """One run's knobs. Construction validates and normalises every field (ValueError otherwise)."""

    mode: str = "greedy"
    temperature: float = 0.7
    epsilon: float = 0.09
    alpha: float = 0.0  # 0 means sqrt(epsilon)
    width: int = 16  # tree nodes, root included
    heads_used: int = 4  # at most the head set's head count (the engine checks that bound)
    tree_shape: str = "calibrated"
    max_new_tokens: int = 96
    top_k: int = 10

    def __post_init__(self) -> None:
        checked = {
            "mode": choice_in("Acceptance", self.mode, MODES),
            "temperature": real_in("Temperature", self.temperature, 0.0, MAX_TEMPERATURE),
            "epsilon": real_in("ε (epsilon)", self.epsilon, 0.0, 1.0, open_low=True),
            "alpha": real_in("α (alpha; 0 = √ε)", self.alpha, 0.0, 1.0),
            "width": whole_in("Tree width", self.width, 1, MAX_WIDTH),
            "heads_used": whole_in("Heads used", self.heads_used, 1, MAX_HEADS),
            "tree_shape": choice_in("Tree shape", self.tree_shape, TREE_SHAPES),
            "max_new_tokens": whole_in("Max new tokens", self.max_new_tokens, 1, MAX_NEW_TOKENS),
            "top_k": whole_in("top-k", self.top_k, 1, MAX_TOP_K),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_ui(cls, mode, temperature, epsilon, alpha, width, heads_used, tree_shape, max_new_tokens) -> "Settings":
        """Settings from the controls' raw values, in the race's input order (alpha None means 0)."""
        return cls(mode=mode, temperature=temperature, epsilon=epsilon, alpha=0.0 if alpha is None else alpha,
                   width=width, heads_used=heads_used, tree_shape=tree_shape, max_new_tokens=max_new_tokens)

    @property
    def alpha_value(self) -> float:
        return self.alpha if self.alpha > 0 else math.sqrt(self.epsilon)

    def decode_config(self):
        """The engine's DecodeConfig (raises DecodeError, a ValueError, with a clear message)."""
        from medusa_engine.decode import DecodeConfig

        return DecodeConfig(mode=self.mode, max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                            epsilon=self.epsilon, alpha=self.alpha if self.alpha > 0 else None, top_k=self.top_k)

    def as_dict(self) -> dict:
        return asdict(self) | {"alpha_value": self.alpha_value}


# name -> (mode, temperature, epsilon, alpha, width, heads_used, tree_shape)
PRESETS = {
    "lossless greedy": ("greedy", 0.7, 0.09, 0.0, 16, 4, "calibrated"),
    "aggressive typical": ("typical", 0.7, 0.3, 0.0, 32, 4, "calibrated"),
    "top-1 chain": ("greedy", 0.7, 0.09, 0.0, 5, 4, "chain"),
}
