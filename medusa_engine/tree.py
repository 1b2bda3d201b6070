"""Candidate trees: a tree is a prefix-closed list of paths of head ranks.

Path [2, 0] is the rank-2 token of head 1 followed by the rank-0 token of head 2. The implicit root
(node 0) is the base model's own next token. "Size" counts every token verified in one forward,
root included: a tree of 64 nodes has 63 paths (the reference's `mc_sim_7b_63`).
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from functools import cached_property

import torch


class TreeError(ValueError):
    """An invalid tree; the message names the offending path."""


@dataclass(frozen=True)
class TreeSpec:
    """A validated tree. `paths` are sorted by (depth, ranks); node i+1 is paths[i]."""

    paths: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        seen = set()
        for p in self.paths:
            if not p or any((not isinstance(r, int)) or r < 0 for r in p):
                raise TreeError(f"path {list(p)} must be a non-empty list of ranks >= 0")
            if p in seen:
                raise TreeError(f"path {list(p)} appears twice")
            seen.add(p)
        for p in self.paths:
            if len(p) > 1 and p[:-1] not in seen:
                raise TreeError(f"tree is not prefix-closed: {list(p)} needs its parent {list(p[:-1])}")
        object.__setattr__(self, "paths", tuple(sorted(self.paths, key=lambda p: (len(p), p))))

    @classmethod
    def from_paths(cls, paths) -> "TreeSpec":
        """A tree from a list of paths, each a list of integer ranks (as in a JSON tree file)."""
        if not isinstance(paths, (list, tuple)) or not all(isinstance(p, (list, tuple)) for p in paths):
            raise TreeError("a tree must be a list of paths, each a list of ranks, e.g. [[0], [1], [0, 0]]")
        for p in paths:
            if not all(isinstance(r, int) and not isinstance(r, bool) for r in p):
                raise TreeError(f"path {list(p)} must hold whole-number ranks")
        return cls(tuple(tuple(int(r) for r in p) for p in paths))

    @property
    def size(self) -> int:
        """Tokens verified per step, root included."""
        return len(self.paths) + 1

    @property
    def depth(self) -> int:
        return max((len(p) for p in self.paths), default=0)

    @property
    def max_rank(self) -> int:
        return max((r for p in self.paths for r in p), default=-1)

    def check_fits(self, num_heads: int, top_k: int) -> None:
        """Raise TreeError unless every path is reachable with `num_heads` heads and their top-`top_k`."""
        if self.depth > num_heads:
            raise TreeError(f"tree depth {self.depth} exceeds the {num_heads} heads available")
        if self.max_rank >= top_k:
            raise TreeError(f"tree uses rank {self.max_rank} but heads only propose their top-{top_k}")

    @cached_property
    def parents(self) -> list[int]:
        """Parent node id of every node (root: -1)."""
        index = {p: i + 1 for i, p in enumerate(self.paths)}
        return [-1] + [index.get(p[:-1], 0) for p in self.paths]

    def buffers(self, top_k: int, device: torch.device | str = "cpu") -> "TreeBuffers":
        return TreeBuffers.build(self, top_k, torch.device(device))


@dataclass(frozen=True)
class TreeBuffers:
    """Tensors for one tree, built once. L = tree size, P = candidate rows (leaves), D = depth."""

    spec: TreeSpec
    top_k: int
    mask: torch.Tensor  # (L, L) bool, True where node i may attend to node j (its ancestors and itself)
    depths: torch.Tensor  # (L,) position offset of each node = its depth
    flat_index: torch.Tensor  # (L,) index of each node's token in [root, head1 top-k, head2 top-k, ...]
    rows: torch.Tensor  # (P, D+1) node ids of each root-to-leaf path, padded with the row's leaf
    row_lengths: torch.Tensor  # (P,) real nodes per row (root included)
    # Per-parent proposals (token-input heads: head j runs once per node of depth j-1 that has children,
    # reading that node's token). Their rows, head by head and parent by parent in node order, form an
    # (R, top_k) table; E_j = how many nodes head j expands.
    node_index: torch.Tensor  # (L,) index of each node's token in [root, that table flattened]
    expansions: tuple[torch.Tensor, ...]  # per head j: (E_j,) node_index of the nodes it expands
    first_rows: torch.Tensor  # (D,) each head's first row in the table (after the top-1 chain's node, if any)

    @classmethod
    def build(cls, spec: TreeSpec, top_k: int, device: torch.device) -> "TreeBuffers":
        n = spec.size
        parents = spec.parents
        mask = torch.eye(n, dtype=torch.bool)
        for i in range(1, n):
            j = parents[i]
            while j >= 0:
                mask[i, j] = True
                j = parents[j]
        depths = torch.tensor([0] + [len(p) for p in spec.paths])
        flat = torch.tensor([0] + [1 + top_k * (len(p) - 1) + p[-1] for p in spec.paths])
        children = {parents[i] for i in range(1, n)}
        leaves = [i for i in range(n) if i not in children]
        width = spec.depth + 1
        rows, lengths = [], []
        for leaf in leaves:
            chain = []
            j = leaf
            while j >= 0:
                chain.append(j)
                j = parents[j]
            chain.reverse()
            lengths.append(len(chain))
            rows.append(chain + [leaf] * (width - len(chain)))
        expanded = [sorted({parents[i] for i in range(1, n) if depths[i] == d}) for d in range(1, spec.depth + 1)]
        offsets = [sum(len(e) for e in expanded[:j]) for j in range(len(expanded))]  # first row of each head
        node_index = [0] * n
        for i in range(1, n):  # nodes come in (depth, ranks) order: a parent's index is set before its children's
            d = len(spec.paths[i - 1])
            node_index[i] = 1 + (offsets[d - 1] + expanded[d - 1].index(parents[i])) * top_k + spec.paths[i - 1][-1]
        return cls(spec=spec, top_k=top_k, mask=mask.to(device), depths=depths.to(device),
                   flat_index=flat.to(device), rows=torch.tensor(rows, device=device),
                   row_lengths=torch.tensor(lengths, device=device),
                   node_index=torch.tensor(node_index, device=device),
                   expansions=tuple(torch.tensor([node_index[p] for p in e], device=device) for e in expanded),
                   first_rows=torch.tensor(offsets, dtype=torch.long, device=device))


def chain(depth: int) -> TreeSpec:
    """The top-1 chain: the argmax of heads 1..depth, one candidate row."""
    return TreeSpec.from_paths([[0] * d for d in range(1, depth + 1)])


def grow(hit_rates: list[list[float]], size: int, max_depth: int | None = None) -> TreeSpec:
    """The tree of `size` nodes (root included) with the largest expected accepted length, where
    hit_rates[k][r] is the chance that head k+1's rank-r token is right (paper App. C; greedy
    growth is optimal because a node's value never exceeds its parent's or its left sibling's).
    Every prefix of the growth order is itself a tree, so smaller widths are prefixes."""
    return TreeSpec.from_paths(growth_order(hit_rates, size - 1, max_depth))


def growth_order(hit_rates: list[list[float]], count: int, max_depth: int | None = None) -> list[tuple[int, ...]]:
    """The first `count` paths in order of decreasing expected acceptance (ties: shallower, lower rank)."""
    depth_cap = min(len(hit_rates), max_depth or len(hit_rates))
    if count < 0:
        raise TreeError(f"tree size must be >= 1, got {count + 1}")
    if depth_cap == 0 and count > 0:
        raise TreeError("no heads to grow a tree from")
    order: list[tuple[int, ...]] = []
    # heap of (-value, path, parent's value); value = product of hit rates along the path
    frontier = [(-hit_rates[0][0], (0,), 1.0)] if depth_cap else []
    while frontier and len(order) < count:
        neg, path, parent_value = heapq.heappop(frontier)
        order.append(path)
        d, r = len(path) - 1, path[-1]
        if r + 1 < len(hit_rates[d]):  # next sibling
            heapq.heappush(frontier, (-parent_value * hit_rates[d][r + 1], path[:-1] + (r + 1,), parent_value))
        if d + 1 < depth_cap:  # first child
            heapq.heappush(frontier, (neg * hit_rates[d + 1][0], path + (0,), -neg))
    if len(order) < count:
        raise TreeError(f"cannot grow {count + 1} nodes from a {depth_cap}-head x {len(hit_rates[0])}-rank table")
    return order


def expected_accepted(spec: TreeSpec, hit_rates: list[list[float]]) -> float:
    """Expected tokens per step under independent hit rates: 1 (root) + sum of path products."""
    total = 1.0
    for p in spec.paths:
        v = 1.0
        for d, r in enumerate(p):
            v *= hit_rates[d][r] if d < len(hit_rates) and r < len(hit_rates[d]) else 0.0
        total += v
    return total
