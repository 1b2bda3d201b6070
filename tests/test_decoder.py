"""The decoder backends: a static cache with fixed-shape (padded) steps must compute exactly what the
eager DynamicCache path computes; compiled steps the same; caches are reused across runs."""
import pytest
import torch

from conftest import random_heads, tiny_backbone
from medusa_engine.decode import DecodeConfig, DecodeError, medusa_steps, vanilla_steps
from medusa_engine.decoder import (CACHE_BUCKET, StaticDecoder, _CACHES, choose_backend, make_decoder,
                                   step_bucket)
from medusa_engine.tree import TreeSpec, chain, grow

HIT = [[0.5 * 0.6**k * 0.55**r for r in range(10)] for k in range(4)]
TREES = {"root-only": TreeSpec.from_paths([]), "chain": chain(4), "grown-12": grow(HIT, 12),
         "grown-33": grow(HIT, 33)}


def _ids(steps):
    return [t for s in steps if s.kind == "decode" for t in s.tokens]


def test_choose_backend():
    assert choose_backend("auto", torch.device("cpu")) == "eager"
    assert choose_backend(None, torch.device("cuda")) == "compiled"
    assert choose_backend("static", torch.device("cpu")) == "static"
    with pytest.raises(ValueError, match="backend must be"):
        choose_backend("turbo", torch.device("cpu"))
    with pytest.raises(DecodeError, match="backend must be"):
        DecodeConfig(backend="turbo")
    assert DecodeConfig().for_device(torch.device("cpu")).backend == "eager"


def test_zero_gpu_stays_eager(monkeypatch):
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert choose_backend("auto", torch.device("cuda")) == "eager"


def test_step_buckets():
    assert [step_bucket(n) for n in (1, 2, 4, 5, 16, 17, 64)] == [1, 4, 4, 8, 16, 32, 64]
    with pytest.raises(ValueError):
        step_bucket(65)


def test_padded_static_step_equals_eager_step():
    backbone = tiny_backbone(seed=3)
    prefix, tree = list(range(3, 40)), TREES["grown-12"]
    buf = tree.buffers(10)
    bias = torch.zeros(tree.size, tree.size).masked_fill(~buf.mask, torch.finfo(torch.float32).min)
    tokens = torch.randint(3, 128, (tree.size,))
    out = {}
    with torch.inference_mode():
        for backend in ("eager", "static"):
            dec = make_decoder(backbone, backend, 200, tree.size)
            dec.prefill(prefix)
            out[backend] = dec.step(tokens, len(prefix) + buf.depths, len(prefix), bias)
            dec.close()
    assert isinstance(dec, StaticDecoder) and dec.bucket == 16  # 12 nodes padded to 16
    torch.testing.assert_close(out["static"], out["eager"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("tree", list(TREES))
def test_greedy_medusa_on_static_cache_equals_eager_vanilla(tree):
    backbone = tiny_backbone(seed=1)
    prompt = list(range(3, 13))
    vanilla = _ids(vanilla_steps(backbone, prompt, DecodeConfig(max_new_tokens=40, backend="eager")))
    static = DecodeConfig(max_new_tokens=40, backend="static")
    assert _ids(vanilla_steps(backbone, prompt, static)) == vanilla
    assert _ids(medusa_steps(backbone, random_heads(backbone, seed=1), TREES[tree], prompt, static)) == vanilla


def test_static_caches_are_sized_to_the_run_and_reused():
    backbone = tiny_backbone(seed=2)
    prompt, config = list(range(3, 13)), DecodeConfig(max_new_tokens=300, backend="static")
    dec = make_decoder(backbone, "static", len(prompt) + 300, 1)
    assert dec.length == 2 * CACHE_BUCKET  # 311 positions (+ 1 step) rounded up, not the 512-position context
    dec.close()
    first = _ids(vanilla_steps(backbone, prompt, config))
    pooled = _CACHES.free[(id(backbone.model), 2 * CACHE_BUCKET)]
    assert len(pooled) == 1  # handed back when the run ended ...
    cache = pooled[0]
    gen = vanilla_steps(backbone, prompt, config)
    next(gen)
    assert not pooled  # ... taken by the next run, emptied first
    gen.close()  # a cancelled run hands it back too
    assert pooled == [cache]
    assert _ids(vanilla_steps(backbone, prompt, config)) == first


@pytest.mark.slow
def test_compiled_steps_equal_eager():
    """torch.compile (Inductor on CPU) of the fixed-shape steps: same greedy tokens in both lanes."""
    backbone = tiny_backbone(seed=4, layers=1)
    prompt, heads = list(range(3, 13)), random_heads(backbone, seed=4)
    vanilla = _ids(vanilla_steps(backbone, prompt, DecodeConfig(max_new_tokens=24, backend="eager")))
    compiled = DecodeConfig(max_new_tokens=24, backend="compiled")
    assert _ids(vanilla_steps(backbone, prompt, compiled)) == vanilla
    assert _ids(medusa_steps(backbone, heads, TREES["chain"], prompt, compiled)) == vanilla
