import pytest
import torch
import torch.nn.functional as F

from conftest import random_heads, tiny_backbone
from medusa_engine.backbone import BackboneError, load_backbone
from medusa_engine.cpu_linear import is_packed, pack_linears
from medusa_engine.decode import DecodeConfig, medusa_steps, vanilla_steps
from test_decode import TREES, _ids

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")


def _linear(bias: bool = True) -> torch.nn.Linear:
    torch.manual_seed(0)
    layer = torch.nn.Linear(48, 80, bias=bias).requires_grad_(False)
    assert pack_linears(layer) == 1 and is_packed(layer)
    return layer


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(4, 48), (1, 16, 48), (2, 3, 48)])
def test_packed_multi_row_matches_plain(bias, shape):
    layer, x = _linear(bias), torch.randn(shape)
    with torch.inference_mode():
        out = layer(x)
    assert out.shape == (*shape[:-1], 80)
    torch.testing.assert_close(out, F.linear(x, layer.weight, layer.bias), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bias", [True, False])
def test_one_row_reads_the_transposed_copy(bias):
    layer, row = _linear(bias), torch.randn(1, 1, 48)
    with torch.inference_mode():
        out = layer(row)
    expected = row @ layer.weight.t().contiguous() + (0 if layer.bias is None else layer.bias)
    assert out.shape == (1, 1, 80) and torch.equal(out, expected)  # bit-exact: the transposed copy, not oneDNN
    torch.testing.assert_close(out, F.linear(row, layer.weight, layer.bias), atol=1e-5, rtol=1e-5)


def test_training_and_changed_weights_take_the_plain_path():
    layer = _linear()
    x = torch.randn(5, 48, requires_grad=True)
    layer(x).sum().backward()  # autograd on: plain F.linear, gradients flow
    torch.testing.assert_close(x.grad, layer.weight.sum(0).expand(5, 48))
    with torch.no_grad():
        layer.weight.mul_(2)  # changed after packing: the stale packed copy must not be used
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))


@pytest.mark.parametrize("tree", ["chain", "grown-8", "grown-32", "wide"])
def test_greedy_medusa_equals_vanilla_with_packed_matmuls(tree):
    backbone = tiny_backbone(seed=1)
    assert pack_linears(backbone.model) == 2 * 7 + 1  # 7 per layer + lm_head
    cfg, prompt = DecodeConfig(max_new_tokens=40), list(range(3, 13))
    vanilla = _ids(vanilla_steps(backbone, prompt, cfg))
    assert _ids(medusa_steps(backbone, random_heads(backbone, seed=1), TREES[tree], prompt, cfg)) == vanilla


def test_load_backbone_packs_where_it_applies(tmp_path, monkeypatch, real):
    tiny = tiny_backbone(vocab=real.vocab_size)
    tiny.model.save_pretrained(tmp_path)
    real.tokenizer.save_pretrained(tmp_path)
    assert real.packed and is_packed(real.model.get_output_embeddings())  # the default on a CPU
    ids = torch.tensor([[5, 6, 7, 8]])
    packed = load_backbone(str(tmp_path), device="cpu", dtype="float32")
    with torch.inference_mode():
        torch.testing.assert_close(packed.model(ids).logits, tiny.model(ids).logits, atol=1e-4, rtol=1e-4)
    assert packed.packed and not load_backbone(str(tmp_path), device="cpu", dtype="bfloat16").packed
    monkeypatch.setenv("MEDUSA_LENS_PACK", "0")  # the debugging switch
    plain = load_backbone(str(tmp_path), device="cpu", dtype="float32")
    assert not plain.packed and not is_packed(plain.model.get_output_embeddings())
    with pytest.raises(BackboneError, match="packed matmuls need float32"):
        load_backbone(str(tmp_path), device="cpu", dtype="bfloat16", pack=True)


@pytest.mark.parametrize("design", [("shared", 0), ("lowrank", 4), ("per_head", 0)])
def test_inference_logits_equal_the_training_projection_on_a_packed_lm_head(design):
    """Decoding projects head states through the (packed) lm_head module, training through its weight
    (`logits_over`): both must give the same logits for every head design."""
    backbone = tiny_backbone()
    pack_linears(backbone.model)
    heads = random_heads(backbone, lm_head=design[0], rank=design[1])
    lm_head = backbone.model.get_output_embeddings()
    z = heads.hidden(torch.randn(3, 64))  # (K, 3, d)
    with torch.inference_mode():
        torch.testing.assert_close(heads.logits(z, lm_head), heads.logits_over(z, lm_head.weight),
                                   atol=1e-4, rtol=1e-4)
