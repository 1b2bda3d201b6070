import logging

import pytest
import torch
import torch.nn.functional as F

from conftest import random_heads, tiny_backbone
from medusa_engine import cpu_linear
from medusa_engine.backbone import BackboneError, load_backbone
from medusa_engine.cpu_linear import is_packed, matmul_path, pack_linears, row_kernel, to_panels
from medusa_engine.decode import DecodeConfig, medusa_steps, vanilla_steps
from test_decode import TREES, _ids

PATHS = [pytest.param("row kernel", marks=pytest.mark.skipif(row_kernel() is None, reason="no row kernel here "
                                                               "(needs x86-64 with AVX2 and a C++ compiler)")),
         pytest.param("oneDNN", marks=pytest.mark.skipif(not torch.backends.mkldnn.is_available(),
                                                         reason="torch built without oneDNN"))]


@pytest.fixture(params=PATHS)
def path(request, monkeypatch) -> str:
    """Each packed layout in turn: the row kernel, then oneDNN (the kernel switched off)."""
    monkeypatch.setenv("MEDUSA_LENS_KERNEL", "1" if request.param == "row kernel" else "0")
    return request.param


def _linear(bias: bool = True, out_features: int = 80) -> torch.nn.Linear:
    torch.manual_seed(0)
    layer = torch.nn.Linear(48, out_features, bias=bias).requires_grad_(False)
    assert pack_linears(layer) == 1 and is_packed(layer)
    return layer


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(4, 48), (1, 16, 48), (2, 3, 48), (1, 1, 48)])
@pytest.mark.parametrize("out_features", [80, 70])  # 70: the last 16-column panel is padded
def test_packed_matmuls_match_plain(path, bias, shape, out_features):
    layer, x = _linear(bias, out_features), torch.randn(shape)
    assert matmul_path(layer) == path
    with torch.inference_mode():
        out = layer(x)
    assert out.shape == (*shape[:-1], out_features)
    torch.testing.assert_close(out, F.linear(x, layer.weight, layer.bias), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bias", [True, False])
def test_one_row_on_onednn_reads_the_transposed_copy(bias, monkeypatch):
    monkeypatch.setenv("MEDUSA_LENS_KERNEL", "0")
    layer, row = _linear(bias), torch.randn(1, 1, 48)
    with torch.inference_mode():
        out = layer(row)
    expected = row @ layer.weight.t().contiguous() + (0 if layer.bias is None else layer.bias)
    assert out.shape == (1, 1, 80) and torch.equal(out, expected)  # bit-exact: the transposed copy, not oneDNN


@pytest.mark.skipif(row_kernel() is None, reason="no row kernel here (needs x86-64 with AVX2 and a C++ compiler)")
def test_row_kernel_computes_each_row_the_same_whatever_the_row_count():
    """A row alone (a vanilla step) and the same row among others (a tree verify) give identical bits."""
    torch.manual_seed(0)
    weight, x = torch.randn(200, 96), torch.randn(20, 96)
    panels = to_panels(weight)
    assert panels.shape == (13, 96, 16) and torch.equal(panels[-1, :, 8:], torch.zeros(96, 8))  # 200 = 12*16 + 8
    alone = torch.cat([row_kernel()(x[i:i + 1].contiguous(), panels) for i in range(20)])  # (20, 208)
    for m in range(1, 21):  # chunks of 6 rows and every remainder
        assert torch.equal(row_kernel()(x[:m].contiguous(), panels), alone[:m]), m
    torch.testing.assert_close(alone[:, :200], x @ weight.T, atol=1e-4, rtol=1e-4)
    with pytest.raises(RuntimeError, match="x has 95 columns, the weight 96"):
        row_kernel()(torch.randn(2, 95), panels)
    with pytest.raises(RuntimeError, match="contiguous 2-D float32"):
        row_kernel()(x.double(), panels)


@pytest.mark.parametrize("kernel", ["1", "0"])
def test_argmax_is_torch_argmax(kernel, monkeypatch):
    """The kernel's argmax (and, switched off, torch's) on widths around its 8-lane blocks, ties, -inf and NaN."""
    monkeypatch.setenv("MEDUSA_LENS_KERNEL", kernel)
    torch.manual_seed(0)
    for width in (1, 7, 8, 9, 31, 49152):
        x = torch.randn(5, width)
        assert torch.equal(cpu_linear.argmax(x), x.argmax(-1)), width
    x = torch.randn(4, 37)
    x[0, [3, 20, 36]] = 9.0  # a three-way tie: the first index
    x[1] = -torch.inf
    x[2, [5, 30]] = torch.nan  # torch.argmax answers the first NaN
    x[3, [11, 12]] = torch.inf
    assert cpu_linear.argmax(x).tolist() == x.argmax(-1).tolist() == [3, 0, 5, 11]
    assert cpu_linear.argmax(x[0]).shape == () and int(cpu_linear.argmax(x[0])) == 3  # one row: a 0-d index
    assert torch.equal(cpu_linear.argmax(x.view(2, 2, 37)), x.view(2, 2, 37).argmax(-1))
    assert torch.equal(cpu_linear.argmax(x[:, ::2]), x[:, ::2].argmax(-1))  # a strided view
    assert torch.equal(cpu_linear.argmax(x.double()), x.argmax(-1))  # other dtypes: torch's own


def test_a_kernel_that_cannot_be_built_falls_back_to_onednn(monkeypatch, caplog):
    import torch.utils.cpp_extension

    def no_compiler(**kwargs):
        raise RuntimeError("Ninja is required to load C++ extensions")

    monkeypatch.setattr(torch.utils.cpp_extension, "load", no_compiler)
    monkeypatch.setattr(cpu_linear, "_built_kernel", cpu_linear._built_kernel.__wrapped__)
    monkeypatch.setattr(cpu_linear.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    with caplog.at_level(logging.WARNING, logger="medusa_engine.cpu_linear"):
        assert row_kernel() is None
    assert "Ninja is required" in caplog.text and "using oneDNN" in caplog.text
    assert matmul_path(_linear()) == "oneDNN"


def test_training_and_changed_weights_take_the_plain_path(path):
    layer = _linear()
    x = torch.randn(5, 48, requires_grad=True)
    layer(x).sum().backward()  # autograd on: plain F.linear, gradients flow
    torch.testing.assert_close(x.grad, layer.weight.sum(0).expand(5, 48))
    with torch.no_grad():
        layer.weight.mul_(2)  # changed after packing: the stale packed copy must not be used
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias))


@pytest.mark.parametrize("tree", ["chain", "grown-8", "grown-32", "wide"])
def test_greedy_medusa_equals_vanilla_with_packed_matmuls(path, tree):
    backbone = tiny_backbone(seed=1)
    assert pack_linears(backbone.model) == 2 * 7 + 1  # 7 per layer + lm_head
    cfg, prompt = DecodeConfig(max_new_tokens=40), list(range(3, 13))
    vanilla = _ids(vanilla_steps(backbone, prompt, cfg))
    assert _ids(medusa_steps(backbone, random_heads(backbone, seed=1), TREES[tree], prompt, cfg)) == vanilla


def test_load_backbone_packs_where_it_applies(tmp_path, monkeypatch, real):
    tiny = tiny_backbone(vocab=real.vocab_size)
    tiny.model.save_pretrained(tmp_path)
    real.tokenizer.save_pretrained(tmp_path)
    assert real.matmuls == matmul_path(real.model) != "plain"  # the default on a CPU
    assert is_packed(real.model.get_output_embeddings())
    ids = torch.tensor([[5, 6, 7, 8]])
    packed = load_backbone(str(tmp_path), device="cpu", dtype="float32")
    with torch.inference_mode():
        torch.testing.assert_close(packed.model(ids).logits, tiny.model(ids).logits, atol=1e-4, rtol=1e-4)
    assert packed.matmuls == ("row kernel" if row_kernel() else "oneDNN")
    assert load_backbone(str(tmp_path), device="cpu", dtype="bfloat16").matmuls == "plain"
    monkeypatch.setenv("MEDUSA_LENS_PACK", "0")  # the debugging switch
    plain = load_backbone(str(tmp_path), device="cpu", dtype="float32")
    assert plain.matmuls == "plain" and not is_packed(plain.model.get_output_embeddings())
    with pytest.raises(BackboneError, match="packed matmuls need float32 weights on a CPU"):
        load_backbone(str(tmp_path), device="cpu", dtype="bfloat16", pack=True)


@pytest.mark.parametrize("design", [("shared", 0), ("lowrank", 4), ("per_head", 0)])
def test_inference_logits_equal_the_training_projection_on_a_packed_lm_head(path, design):
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
