"""Step and run records: the plain, JSON-serialisable contract between the engine and everything else.

One record per forward pass. The app, the benchmark, the CLI and the export consume these and
never touch tensors.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class TreeNode:
    """One token verified in a Medusa step. Node 0 is the root (the base model's own token)."""

    id: int
    parent: int  # -1 for the root
    depth: int  # 0 for the root; depth k holds a token proposed by head k
    rank: int  # rank of the token in head `depth`'s top-k (-1 for the root)
    token: int
    text: str
    head_prob: float | None  # the head's probability of the token over its (draft) vocabulary; None for the root
    base_prob: float  # the base model's probability of the token given its parent (at the acceptance temperature)
    threshold: float | None  # typical: min(eps, alpha*exp(-H)) at the parent; greedy: None (must be the argmax)
    passes: bool  # the token passes the acceptance test given its parent (the root always does)


@dataclass(frozen=True)
class Timing:
    """Compute time of one step, in milliseconds (excludes whatever the consumer does between steps)."""

    heads_ms: float = 0.0
    verify_ms: float = 0.0
    accept_ms: float = 0.0
    cache_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.heads_ms + self.verify_ms + self.accept_ms + self.cache_ms


@dataclass(frozen=True)
class Step:
    """One forward pass of one lane. `lane` is "vanilla" or "medusa"; the Medusa fields are empty for vanilla."""

    lane: str
    index: int  # 0 is the prefill (kind "prefill", no tokens); decode steps count from 1
    tokens: list[int]  # tokens emitted by this step, in order
    text: str  # their text (incrementally detokenised, so multi-token characters come out whole)
    timing: Timing
    stop_reason: str | None = None  # set on the step that ends the run: "eos" | "max_new_tokens"
    kind: str = "decode"  # "prefill" | "decode"
    # Medusa only ----------------------------------------------------------------------------
    root_token: int | None = None
    head_topk_tokens: list[list[int]] = field(default_factory=list)  # (tree depth, top_k): the heads the tree reads
    head_topk_texts: list[list[str]] = field(default_factory=list)  # (tree depth, top_k)
    head_topk_probs: list[list[float]] = field(default_factory=list)  # (tree depth, top_k)
    nodes: list[TreeNode] = field(default_factory=list)
    rows: list[list[int]] = field(default_factory=list)  # root-to-leaf node ids, one row per candidate
    accept_lengths: list[int] = field(default_factory=list)  # accepted tokens per row (root excluded)
    chosen_row: int = -1
    chosen_nodes: list[int] = field(default_factory=list)  # node ids emitted, root first
    mask: list[list[int]] = field(default_factory=list)  # tree attention mask (nodes x nodes, 1 = attends)

    @property
    def finished(self) -> bool:
        return self.stop_reason is not None

    @property
    def accepted(self) -> int:
        """Tokens accepted beyond the root (0 for vanilla)."""
        return max(len(self.chosen_nodes) - 1, 0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Step":
        d = dict(d)
        d["timing"] = Timing(**d["timing"])
        d["nodes"] = [TreeNode(**n) for n in d.get("nodes", [])]
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True)
class RunSummary:
    """Totals of one lane's run plus everything needed to reproduce it."""

    lane: str
    prompt: str
    prompt_tokens: int
    settings: dict[str, Any]
    environment: dict[str, Any]  # model, heads, device, dtype, library versions
    token_ids: list[int]
    text: str
    steps: int
    prefill_ms: float
    decode_ms: float  # sum of step compute times
    stop_reason: str  # "eos" | "max_new_tokens" | "cancelled"

    @property
    def tokens(self) -> int:
        return len(self.token_ids)

    @property
    def tokens_per_step(self) -> float:
        return self.tokens / self.steps if self.steps else 0.0

    @property
    def ms_per_token(self) -> float:
        return self.decode_ms / self.tokens if self.tokens else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(tokens=self.tokens, tokens_per_step=self.tokens_per_step, ms_per_token=self.ms_per_token)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunSummary":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
