"""Weight averaging of head sets: the exact mean, refused designs, and the CLI's checks before any load."""
import pytest
import torch

from conftest import run_cli
from medusa_engine.heads import HeadsConfig, HeadsError, MedusaHeads, save_heads, untrained_heads
from medusa_engine.train.average import average_heads


def _random_heads(seed: int, **design) -> MedusaHeads:
    torch.manual_seed(seed)
    heads = MedusaHeads(HeadsConfig(num_heads=3, hidden_size=8, vocab_size=32, **design))
    with torch.no_grad():
        for p in heads.parameters():
            p.normal_()
    return heads


@pytest.mark.parametrize("design", [{}, {"token_input": True}, {"lm_head": "lowrank", "rank": 2}])
def test_average_is_the_elementwise_mean_of_every_weight(design):
    sets = [_random_heads(seed, **design) for seed in range(3)]
    sets[1].set_draft_vocab(torch.tensor([3, 1, 4]))  # draft vocabularies may differ; the average has none
    avg = average_heads(sets)
    states = [h.state_dict() for h in sets]
    assert avg.state_dict().keys() == states[0].keys()
    for name, value in avg.state_dict().items():
        torch.testing.assert_close(value, (states[0][name] + states[1][name] + states[2][name]) / 3)
    assert avg.draft_ids is None and avg.config == sets[0].config


@pytest.mark.parametrize("other", [{"token_input": True}, {"lm_head": "lowrank", "rank": 2}, {"num_layers": 2}])
def test_sets_of_different_designs_are_refused(other):
    with pytest.raises(HeadsError, match="different designs cannot be averaged"):
        average_heads([_random_heads(0), _random_heads(1, **other)])


def test_one_set_is_not_an_average():
    with pytest.raises(HeadsError, match="at least two head sets"):
        average_heads([_random_heads(0)])


def _saved(path, delta: bytes | None = None):
    save_heads(untrained_heads(2, 8, 32), path)
    if delta is not None:
        (path / "backbone_delta.safetensors").write_bytes(delta)
    return str(path)


@pytest.mark.parametrize("case", ["missing", "twice", "out_is_input", "other_backbone", "other_delta"])
def test_average_cli_refuses_bad_sets_before_loading_anything(tmp_path, case):
    a = _saved(tmp_path / "a", b"delta-1" if case == "other_delta" else None)
    b = _saved(tmp_path / "b", b"delta-2" if case in ("other_backbone", "other_delta") else None)
    heads, out, expected = {
        "missing": ([a, str(tmp_path / "nope")], tmp_path / "o", "head set not found"),
        "twice": ([a, str(tmp_path / "x" / ".." / "a")], tmp_path / "o", "names the same set twice"),
        "out_is_input": ([a, b], tmp_path / "b", "is one of the sets being averaged"),
        "other_backbone": ([a, b], tmp_path / "o", "read different backbones"),
        "other_delta": ([a, b], tmp_path / "o", "read different backbones"),
    }[case]
    (tmp_path / "x").mkdir()
    code, stderr = run_cli(["train", "average", "--heads", *heads, "--data", str(tmp_path / "data"),
                            "--out", str(out)])
    assert code == 2 and expected in stderr, stderr
    assert not (tmp_path / "o").exists()


def test_model_cards_trace_an_average_and_the_sittings_after_it(tmp_path):
    """An averaged set's card lists each averaged set's sittings; a set trained further from it names it."""
    import json
    from pathlib import Path

    from medusa_engine.train.cli import write_model_card

    shipped = Path(__file__).resolve().parent.parent / "assets" / "heads" / "smollm2-135m-medusa1"
    (tmp_path / "medusa_lm_head.safetensors").symlink_to(shipped / "medusa_lm_head.safetensors")
    calib = json.loads((shipped / "calibration.json").read_text())
    averaged = [{"heads": "data/heads/a", "sittings": [{"train_examples": 10, "train_tokens": 900}]},
                {"heads": "data/heads/b", "sittings": [{"train_examples": 20, "prompt_sets": {"open": 20},
                                                        "train_tokens": 1800, "stage": "MEDUSA-1"}]}]
    report = {"method": "MEDUSA-1 (the weight average of 2 sets; no further training)", "train_minutes": 0.0,
              "train_config": {"average_of": ["data/heads/a", "data/heads/b"]}, "averaged": averaged}
    write_model_card(tmp_path, report, calib)
    card = (tmp_path / "README.md").read_text()
    assert ("A weight average: the element-wise mean of the weights of 2 sets, each trained as follows: "
            "data/heads/a (10 examples, 900 tokens); data/heads/b (MEDUSA-1: 20 examples (20 open), 1800 tokens)"
            in card)
    assert "none beyond the averaged sets' own" in card

    later = {"method": "MEDUSA-1 (frozen backbone, self-distilled data)", "train_minutes": 3.5, "train_examples": 5,
             "train_tokens": 400, "train_config": {"lr": 5e-4},
             "init": {"heads": "data/heads/avg", "sittings": [{"stage": "MEDUSA-1", "averaged": averaged}]}}
    write_model_card(tmp_path, later, calib)
    card = (tmp_path / "README.md").read_text()
    assert "continuing data/heads/avg (its earlier sittings: the element-wise mean of the weights of 2 sets" in card
    assert "3.5 min on a 2-core CPU" in card
