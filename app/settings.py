"""The run settings the UI controls, validated; presets. Pure Python (the engine is imported lazily)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

TREE_SHAPES = ("calibrated", "chain")
MAX_WIDTH = 64


@dataclass(frozen=True)
class Settings:
    mode: str = "greedy"
    temperature: float = 0.7
    epsilon: float = 0.09
    alpha: float = 0.0  # 0 means sqrt(epsilon)
    width: int = 16  # tree nodes, root included
    heads_used: int = 4
    tree_shape: str = "calibrated"
    max_new_tokens: int = 96
    top_k: int = 10

    def __post_init__(self) -> None:
        if self.tree_shape not in TREE_SHAPES:
            raise ValueError(f"tree shape must be one of {TREE_SHAPES}, got {self.tree_shape!r}")
        if not 1 <= int(self.width) <= MAX_WIDTH:
            raise ValueError(f"tree width must lie in 1..{MAX_WIDTH}, got {self.width}")
        if int(self.heads_used) < 1:
            raise ValueError(f"heads used must be at least 1, got {self.heads_used}")

    @classmethod
    def from_ui(cls, mode, temperature, epsilon, alpha, width, heads_used, tree_shape, max_new_tokens) -> "Settings":
        return cls(mode=str(mode), temperature=float(temperature), epsilon=float(epsilon),
                   alpha=float(alpha or 0.0), width=int(width), heads_used=int(heads_used),
                   tree_shape=str(tree_shape), max_new_tokens=int(max_new_tokens))

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
