import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from medusa_engine.heads import HeadsConfig, HeadsError, MedusaHeads, load_heads, save_heads, untrained_heads

D, V = 16, 50


def _ref_state(k=5, per_head=True):
    torch.manual_seed(0)
    sd = {}
    for i in range(k):
        sd[f"{i}.0.linear.weight"] = torch.randn(D, D)
        sd[f"{i}.0.linear.bias"] = torch.randn(D)
        if per_head:
            sd[f"{i}.1.weight"] = torch.randn(V, D)
    return sd


def test_untrained_heads_predict_what_the_base_predicts():
    heads = untrained_heads(3, D, V)
    lm = torch.nn.Linear(D, V, bias=False)
    h = torch.randn(2, D)
    out = heads(h, lm)
    assert out.shape == (3, 2, V)
    for k in range(3):
        torch.testing.assert_close(out[k], lm(h))
    assert heads.blocks[0] is not heads.blocks[1]  # no `[Module()] * n` aliasing


def test_reference_medusa1_pt_with_understated_config(tmp_path):
    sd = _ref_state(5, per_head=True)
    torch.save(sd, tmp_path / "medusa_lm_head.pt")
    (tmp_path / "config.json").write_text(json.dumps({"medusa_num_heads": 2, "medusa_num_layers": 1,
                                                      "base_model_name_or_path": "x"}))
    heads = load_heads(tmp_path, D, V)
    assert heads.num_heads == 5 and heads.config.lm_head == "per_head"
    torch.testing.assert_close(heads.lm_heads[4].weight, sd["4.1.weight"])
    torch.testing.assert_close(heads.blocks[2][0].linear.bias, sd["2.0.linear.bias"])


def test_version2_safetensors_shared_lm_head(tmp_path):
    sd = _ref_state(3, per_head=False)
    save_file(sd, str(tmp_path / "medusa_lm_head.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"medusa_num_heads": 3, "version": "2"}))
    heads = load_heads(tmp_path, D, V)
    assert heads.num_heads == 3 and heads.config.lm_head == "shared" and heads.lm_heads is None
    torch.testing.assert_close(heads.blocks[1][0].linear.weight, sd["1.0.linear.weight"])


def test_full_medusa2_checkpoint(tmp_path):
    sd = {f"medusa_head.{k}": v for k, v in _ref_state(4, per_head=True).items()}
    sd["model.embed_tokens.weight"] = torch.randn(V, D)
    save_file(sd, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "medusa_num_heads": 4}))
    heads = load_heads(tmp_path, D, V)
    assert heads.num_heads == 4 and heads.config.lm_head == "per_head"


def test_save_roundtrip_all_designs(tmp_path):
    for mode, rank in (("shared", 0), ("per_head", 0), ("lowrank", 4)):
        heads = MedusaHeads(HeadsConfig(num_heads=2, hidden_size=D, vocab_size=V, lm_head=mode, rank=rank))
        with torch.no_grad():
            for p in heads.parameters():
                p.normal_()
        out = save_heads(heads, tmp_path / mode)
        loaded = load_heads(out, D, V)
        assert loaded.config == heads.config
        lm = torch.nn.Linear(D, V, bias=False)
        h = torch.randn(3, D)
        torch.testing.assert_close(loaded(h, lm), heads(h, lm))


def test_pickle_carrying_code_is_refused(tmp_path):
    marker = tmp_path / "code_ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))  # creates `marker` if the pickle is executed

    with open(tmp_path / "medusa_lm_head.pt", "wb") as f:
        pickle.dump({"0.0.linear.weight": Evil()}, f, protocol=2)
    with pytest.raises(HeadsError, match="refused"):
        load_heads(tmp_path, D, V)
    assert not marker.exists()


@pytest.mark.parametrize("hidden,vocab,match", [(D + 1, V, "hidden size"), (D, V + 1, "vocabulary")])
def test_heads_for_another_model(tmp_path, hidden, vocab, match):
    torch.save(_ref_state(2, per_head=True), tmp_path / "medusa_lm_head.pt")
    with pytest.raises(HeadsError, match=match):
        load_heads(tmp_path, hidden, vocab)


def test_count_mismatch_and_missing_heads(tmp_path):
    torch.save(_ref_state(2, per_head=True), tmp_path / "medusa_lm_head.pt")
    with pytest.raises(HeadsError, match="2 heads, 3 were asked"):
        load_heads(tmp_path, D, V, num_heads=3)
    (tmp_path / "config.json").write_text(json.dumps({"medusa_num_heads": 4}))
    with pytest.raises(HeadsError, match="promises 4"):
        load_heads(tmp_path, D, V)


def test_incomplete_head_is_an_error(tmp_path):
    sd = _ref_state(2, per_head=True)
    del sd["1.0.linear.bias"]
    torch.save(sd, tmp_path / "medusa_lm_head.pt")
    with pytest.raises(HeadsError, match="missing"):
        load_heads(tmp_path, D, V)


def test_corrupt_and_truncated_and_missing(tmp_path):
    save_file(_ref_state(2, per_head=False), str(tmp_path / "medusa_lm_head.safetensors"))
    data = (tmp_path / "medusa_lm_head.safetensors").read_bytes()
    (tmp_path / "medusa_lm_head.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(HeadsError, match="corrupt or truncated"):
        load_heads(tmp_path, D, V)
    (tmp_path / "medusa_lm_head.safetensors").write_bytes(b"garbage")
    with pytest.raises(HeadsError, match="corrupt or truncated"):
        load_heads(tmp_path, D, V)
    with pytest.raises(HeadsError, match="not found"):
        load_heads(tmp_path / "nope", D, V)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(HeadsError, match="no Medusa heads"):
        load_heads(empty, D, V)


def test_config_validation():
    with pytest.raises(HeadsError):
        HeadsConfig(num_heads=0, hidden_size=D, vocab_size=V)
    with pytest.raises(HeadsError):
        HeadsConfig(num_heads=1, hidden_size=D, vocab_size=V, lm_head="lowrank")
    with pytest.raises(HeadsError):
        HeadsConfig(num_heads=1, hidden_size=D, vocab_size=V, lm_head="weird")
