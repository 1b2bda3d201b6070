import pytest
import torch

from medusa_engine.tree import TreeError, TreeSpec, chain, expected_accepted, grow, growth_order

REFERENCE = [[0], [1], [0, 0], [0, 1], [1, 0], [0, 0, 0]]  # medusa_reference.md §2.3


def test_reference_example_buffers():
    buf = TreeSpec.from_paths(REFERENCE).buffers(top_k=10)
    assert buf.flat_index.tolist() == [0, 1, 2, 11, 12, 11, 21]
    assert buf.depths.tolist() == [0, 1, 1, 2, 2, 2, 3]
    attends = [sorted(torch.nonzero(row).flatten().tolist()) for row in buf.mask]
    assert attends == [[0], [0, 1], [0, 2], [0, 1, 3], [0, 1, 4], [0, 2, 5], [0, 1, 3, 6]]
    rows = sorted(tuple(r[:n]) for r, n in zip(buf.rows.tolist(), buf.row_lengths.tolist()))
    assert rows == [(0, 1, 3, 6), (0, 1, 4), (0, 2, 5)]
    assert buf.rows.shape == (3, 4)


def test_root_only_tree():
    spec = TreeSpec.from_paths([])
    buf = spec.buffers(top_k=10)
    assert spec.size == 1 and buf.rows.tolist() == [[0]] and buf.mask.tolist() == [[True]]


def test_validation():
    with pytest.raises(TreeError, match="prefix-closed"):
        TreeSpec.from_paths([[0], [1, 0]])
    with pytest.raises(TreeError, match="twice"):
        TreeSpec.from_paths([[0], [0]])
    with pytest.raises(TreeError, match="ranks >= 0"):
        TreeSpec.from_paths([[-1]])
    spec = TreeSpec.from_paths([[0], [0, 0], [0, 0, 0]])
    with pytest.raises(TreeError, match="exceeds the 2 heads"):
        spec.check_fits(num_heads=2, top_k=10)
    with pytest.raises(TreeError, match="top-3"):
        TreeSpec.from_paths([[3]]).check_fits(num_heads=4, top_k=3)


def test_chain():
    spec = chain(3)
    assert spec.paths == ((0,), (0, 0), (0, 0, 0)) and spec.size == 4
    assert spec.buffers(10).rows.tolist() == [[0, 1, 2, 3]]


HIT = [[0.5, 0.2, 0.1], [0.4, 0.15, 0.05], [0.3, 0.1, 0.05]]


def test_growth_is_greedy_by_expected_acceptance_and_prefix_closed():
    order = growth_order(HIT, 9)
    # values: (0)=.5 (0,0)=.2 (1)=.2 (2)=.1 (1,0)=.08 (0,1)=.075 (0,0,0)=.06 (1,1)=.03 (2,0)=.04
    assert order[:8] == [(0,), (0, 0), (1,), (2,), (1, 0), (0, 1), (0, 0, 0), (2, 0)]
    for n in range(1, 10):
        TreeSpec.from_paths(order[:n])  # every prefix is a valid tree
    values = [expected_accepted(TreeSpec.from_paths(order[:n]), HIT) for n in range(10)]
    gains = [b - a for a, b in zip(values, values[1:])]
    assert all(g1 >= g2 - 1e-12 for g1, g2 in zip(gains, gains[1:]))  # non-increasing gains


def test_grow_beats_every_other_tree_of_same_size():
    import itertools

    best = expected_accepted(grow(HIT, 4), HIT)
    universe = [p for d in range(1, 4) for p in itertools.product(range(3), repeat=d)]
    for combo in itertools.combinations(universe, 3):
        try:
            spec = TreeSpec.from_paths(combo)
        except TreeError:
            continue
        assert expected_accepted(spec, HIT) <= best + 1e-12


def test_grow_errors():
    with pytest.raises(TreeError):
        grow([[0.5]], 5)  # a 1x1 table has one path only
