"""Acceptance rules: which tree tokens the base model agrees with, and which candidate row wins.

Greedy: a node passes if its token is the base argmax after its parent (exact, lossless).
Typical (Medusa paper): a node passes if p_T(token | parent) > min(eps, alpha * exp(-H(p_T))),
with p_T the base distribution at temperature T. The root is always the base argmax. A row's
accepted length is its longest passing prefix; the longest row wins, ties broken by the total
log-probability of its accepted tokens.

Greedy acceptance needs only each node's argmax; the nodes' base probabilities, which only the trace
shows, come from `node_log_probs` (decode.py calls it outside the timed step).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .cpu_linear import argmax


@dataclass(frozen=True)
class Acceptance:
    node_prob: torch.Tensor | None  # (L,) base probability of each node's token given its parent (root: 1);
    # None for greedy (see node_log_probs)
    threshold: torch.Tensor | None  # (L,) typical threshold at each node's parent; None for greedy
    passes: torch.Tensor  # (L,) bool, node passes the test given its parent (root: True)
    accept_lengths: torch.Tensor  # (P,) accepted tokens per row, root excluded
    best: torch.Tensor  # () index of the chosen row


def accept(
    logits: torch.Tensor,  # (L, V) base logits after each tree node
    tokens: torch.Tensor,  # (L,) tree tokens
    parents: torch.Tensor,  # (L,) parent node of each node (root: 0, ignored)
    rows: torch.Tensor,  # (P, D+1) node ids per candidate row, padded with the leaf
    row_lengths: torch.Tensor,  # (P,) real nodes per row
    mode: str,
    temperature: float = 1.0,
    epsilon: float = 0.09,
    alpha: float = 0.3,
) -> Acceptance:
    """Evaluate all candidate rows at once; no host sync."""
    if mode == "greedy":
        passes = argmax(logits)[parents] == tokens  # (L,)
        node_logp = threshold = None
    else:
        logp = torch.log_softmax(logits.float() / temperature, dim=-1)  # (L, V)
        node_logp = _gather_nodes(logp, tokens, parents)
        p = logp.exp()
        entropy = -(p * torch.log(p + 1e-5)).sum(-1)  # (L,)
        threshold = torch.clamp(alpha * torch.exp(-entropy), max=epsilon)[parents]  # (L,)
        passes = node_logp.exp() > threshold
    passes[0] = True
    depth_idx = torch.arange(rows.shape[1], device=rows.device)
    valid = depth_idx[None, 1:] < row_lengths[:, None]  # (P, D)
    row_pass = passes[rows[:, 1:]] & valid  # (P, D)
    accepted = torch.cumprod(row_pass.to(torch.int32), dim=1)  # (P, D)
    accept_lengths = accepted.sum(1)  # (P,)
    if mode == "greedy":
        best = accept_lengths.argmax()
    else:
        row_logp = (node_logp[rows[:, 1:]] * accepted).sum(1)  # (P,)
        longest = accept_lengths == accept_lengths.max()
        best = torch.where(longest, row_logp, torch.full_like(row_logp, -torch.inf)).argmax()
    return Acceptance(node_prob=None if node_logp is None else node_logp.exp(), threshold=threshold, passes=passes,
                      accept_lengths=accept_lengths, best=best)


def node_log_probs(logits: torch.Tensor, tokens: torch.Tensor, parents: torch.Tensor,
                   temperature: float = 1.0) -> torch.Tensor:
    """(L,) log p_T(token | parent) of each tree node, from the base logits (L, V) after each node; the
    root's is 0 (its probability comes from the previous step's logits)."""
    return _gather_nodes(torch.log_softmax(logits.float() / temperature, dim=-1), tokens, parents)


def _gather_nodes(logp: torch.Tensor, tokens: torch.Tensor, parents: torch.Tensor) -> torch.Tensor:
    node_logp = logp[parents, tokens]  # (L,)
    node_logp[0] = 0.0
    return node_logp
