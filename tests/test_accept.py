import math

import torch

from medusa_engine.accept import accept, node_log_probs
from medusa_engine.tree import TreeSpec

# tree: root(0) -> a(1, rank0), b(2, rank1); a -> c(3)
SPEC = TreeSpec.from_paths([[0], [1], [0, 0]])
BUF = SPEC.buffers(top_k=2)
PARENTS = torch.tensor([0, 0, 0, 1])
V = 5


def _logits(rows):
    return torch.log(torch.tensor(rows, dtype=torch.float32))


def test_greedy_accepts_longest_argmax_prefix():
    tokens = torch.tensor([4, 1, 2, 3])
    # after root: argmax 1 (so node a=1 passes, b=2 fails); after a: argmax 3 (c passes)
    probs = [[.1, .5, .2, .1, .1], [.1, .1, .1, .6, .1], [.2] * 5, [.2] * 5]
    acc = accept(_logits(probs), tokens, PARENTS, BUF.rows, BUF.row_lengths, "greedy")
    assert acc.passes.tolist() == [True, True, False, True]
    assert int(acc.accept_lengths[acc.best]) == 2
    rows = BUF.rows[acc.best].tolist()
    assert rows == [0, 1, 3]
    assert acc.threshold is None and acc.node_prob is None  # greedy needs no probabilities
    node_prob = node_log_probs(_logits(probs), tokens, PARENTS).exp()  # the trace's
    assert math.isclose(float(node_prob[1]), 0.5, rel_tol=1e-5) and float(node_prob[0]) == 1.0
    assert math.isclose(float(node_prob[3]), 0.6, rel_tol=1e-5)


def test_greedy_rejects_everything():
    tokens = torch.tensor([4, 0, 2, 3])
    probs = [[.1, .5, .2, .1, .1], [.1, .1, .1, .1, .6], [.2] * 5, [.2] * 5]
    acc = accept(_logits(probs), tokens, PARENTS, BUF.rows, BUF.row_lengths, "greedy")
    assert int(acc.accept_lengths.max()) == 0


def test_typical_threshold_hand_computed():
    tokens = torch.tensor([4, 1, 2, 3])
    probs = [[.1, .5, .3, .05, .05], [.05, .05, .05, .8, .05], [.2] * 5, [.2] * 5]
    eps, alpha = 0.09, 0.3
    acc = accept(_logits(probs), tokens, PARENTS, BUF.rows, BUF.row_lengths, "typical", 1.0, eps, alpha)
    p = torch.tensor(probs[0])
    h = float(-(p * torch.log(p + 1e-5)).sum())
    thr = min(eps, alpha * math.exp(-h))
    assert math.isclose(float(acc.threshold[1]), thr, rel_tol=1e-4)
    # 0.5 and 0.3 both beat the threshold after the root; 0.8 beats it after a
    assert acc.passes.tolist() == [True, True, True, True]
    assert int(acc.accept_lengths[acc.best]) == 2 and BUF.rows[acc.best].tolist() == [0, 1, 3]


def test_typical_tie_broken_by_log_probability():
    spec = TreeSpec.from_paths([[0], [1]])  # two rows of length 1
    buf = spec.buffers(top_k=2)
    parents = torch.tensor([0, 0, 0])
    tokens = torch.tensor([4, 1, 2])
    probs = [[.1, .3, .5, .05, .05], [.2] * 5, [.2] * 5]
    acc = accept(_logits(probs), tokens, parents, buf.rows, buf.row_lengths, "typical", 1.0, 0.09, 0.3)
    assert acc.accept_lengths.tolist() == [1, 1]
    assert buf.rows[acc.best].tolist()[-1] == 2  # token 2 (p=.5) wins over token 1 (p=.3)


def test_typical_low_temperature_is_stricter():
    tokens = torch.tensor([4, 2, 2, 3])
    probs = [[.05, .5, .35, .05, .05], [.2] * 5, [.2] * 5, [.2] * 5]
    hot = accept(_logits(probs), tokens, PARENTS, BUF.rows, BUF.row_lengths, "typical", 2.0, 0.3, 0.3)
    cold = accept(_logits(probs), tokens, PARENTS, BUF.rows, BUF.row_lengths, "typical", 0.1, 0.3, 0.3)
    assert bool(hot.passes[1]) and not bool(cold.passes[1])
