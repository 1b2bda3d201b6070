import pytest

from medusa_engine.tree import TreeSpec, chain
from medusa_engine.tree_cost import measure


@pytest.mark.parametrize("backend", ["eager", "static"])
def test_measure_times_every_shape_against_a_one_token_step(tiny, backend):
    trees = {"chain-3": chain(3), "fan-4": TreeSpec.from_paths([(0,), (1,), (2,), (0, 0)])}
    result = measure(tiny, trees, prefix_len=20, reps=3, backend=backend)
    assert set(result) == {"1-token step", "chain-3", "fan-4"}
    assert result["1-token step"] == {"nodes": 1, "ms": result["1-token step"]["ms"], "ratio": 1.0}
    assert result["chain-3"]["nodes"] == 4 and result["fan-4"]["nodes"] == 5
    for r in result.values():
        assert r["ms"] > 0 and r["ratio"] == pytest.approx(r["ms"] / result["1-token step"]["ms"])
