import json

import pytest

from medusa_engine.bundle import UNCALIBRATED_HIT_RATES, HeadSet
from medusa_engine.heads import untrained_heads
from medusa_engine.tree import TreeError


def _set(num_heads=4, size=16):
    return HeadSet(untrained_heads(num_heads, 8, 20), "h", UNCALIBRATED_HIT_RATES, True, size)


def test_tree_choices():
    hs = _set()
    assert hs.tree("chain").paths == ((0,), (0, 0), (0, 0, 0), (0, 0, 0, 0))
    assert hs.tree("chain", max_depth=2).depth == 2
    assert hs.tree(None).size == 16 and _set(size=5).tree(None).size == 5
    assert hs.tree(64).size == 64 and hs.tree(1).size == 1
    assert hs.tree(64, max_depth=1).size == 11  # one head with a top-10 holds 10 paths + root
    assert set(hs.tree(8).paths) < set(hs.tree(9).paths)  # width N is a prefix of the growth order


def test_tree_errors(tmp_path):
    hs = _set()
    for bad in (0, 65, "wide", 2.5):
        with pytest.raises(TreeError):
            hs.tree(bad)
    (tmp_path / "t.json").write_text(json.dumps([[0], [0, 0], [0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0, 0]]))
    with pytest.raises(TreeError, match="exceeds the 4 heads"):
        hs.tree(str(tmp_path / "t.json"))
    (tmp_path / "ok.json").write_text(json.dumps([[1], [1, 0]]))
    assert hs.tree(str(tmp_path / "ok.json")).size == 3
    (tmp_path / "bad.json").write_text("[[")
    with pytest.raises(TreeError, match="cannot read"):
        hs.tree(str(tmp_path / "bad.json"))
