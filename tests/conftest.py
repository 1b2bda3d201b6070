"""Shared fixtures: a tiny random Llama backbone (milliseconds) and the real embedded default (seconds)."""
from __future__ import annotations

import contextlib
import io

import pytest
import torch

from medusa_engine.backbone import Backbone, load_backbone
from medusa_engine.heads import HeadsConfig, MedusaHeads


class CharTokenizer:
    """Stand-in tokenizer for tiny models: token i is one printable character; 2 is EOS."""

    eos_token_id = 2
    chat_template = None

    def decode(self, ids, skip_special_tokens=False):
        return "".join("" if (skip_special_tokens and i == 2) else chr(35 + i % 90) for i in ids)

    def __call__(self, text):
        return {"input_ids": [3 + ord(c) % 120 for c in text]}


def tiny_backbone(vocab: int = 128, layers: int = 2, seed: int = 0, max_positions: int = 512) -> Backbone:
    from transformers import LlamaConfig, LlamaForCausalLM

    from medusa_engine.attention import register as register_attention

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_positions,
                         eos_token_id=2, pad_token_id=2, bos_token_id=1,
                         attn_implementation=register_attention())
    model = LlamaForCausalLM(config).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return Backbone(model=model, tokenizer=CharTokenizer(), name="tiny-random-llama", source="tiny",
                    device=torch.device("cpu"), dtype=torch.float32)


def random_heads(backbone: Backbone, num_heads: int = 4, lm_head: str = "shared", seed: int = 0,
                 rank: int = 0, token_input: bool = False) -> MedusaHeads:
    """Heads with non-zero random weights, so their guesses differ from the base model's."""
    torch.manual_seed(seed)
    heads = MedusaHeads(HeadsConfig(num_heads=num_heads, hidden_size=backbone.hidden_size,
                                    vocab_size=backbone.vocab_size, lm_head=lm_head, rank=rank,
                                    token_input=token_input))
    with torch.no_grad():
        for p in heads.parameters():
            p.normal_(0, 0.3)
    return heads.eval()


@pytest.fixture
def tiny() -> Backbone:
    return tiny_backbone()


@pytest.fixture(scope="session")
def real() -> Backbone:
    """The embedded default model (SmolLM2-135M-Instruct) in float32 on CPU."""
    return load_backbone(None, device="cpu", dtype="float32")


def run_cli(argv: list[str]) -> tuple[int, str]:
    """`python -m medusa_engine ARGV` in-process: (exit code, stderr)."""
    from medusa_engine.__main__ import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
    return code, err.getvalue()
