import pytest
import torch

from conftest import tiny_backbone
from medusa_engine import backbone as bb
from medusa_engine.backbone import BackboneError, load_backbone


def test_default_resolves_to_wheel_or_hub(monkeypatch):
    assert bb.resolve_source(None).endswith(".gguf")  # the wheel is a project requirement
    monkeypatch.setattr(bb, "embedded_gguf_path", lambda: None)
    assert bb.resolve_source(None) == bb.DEFAULT_HUB_ID
    assert bb.resolve_source("default") == bb.DEFAULT_HUB_ID


def test_local_directory(tmp_path, real):
    tiny = tiny_backbone(vocab=real.vocab_size)
    tiny.model.save_pretrained(tmp_path)
    real.tokenizer.save_pretrained(tmp_path)
    loaded = load_backbone(str(tmp_path), device="cpu", dtype="float32")
    assert loaded.hidden_size == 64 and loaded.vocab_size == real.vocab_size
    ids = torch.tensor([[1, 2, 3]])
    torch.testing.assert_close(loaded.model(ids).logits, tiny.model(ids).logits)
    assert len(loaded.file_hash()) == 16


def test_gguf_file_path(real):
    loaded = load_backbone(real.source, device="cpu", dtype="bfloat16")
    assert loaded.dtype == torch.bfloat16 and next(loaded.model.parameters()).dtype == torch.bfloat16
    assert loaded.name == bb.DEFAULT_HUB_ID


def test_bad_sources(tmp_path, monkeypatch):
    with pytest.raises(BackboneError, match="not found"):
        load_backbone(str(tmp_path / "missing.gguf"))
    with pytest.raises(BackboneError, match="not found"):
        load_backbone(str(tmp_path / "missing_dir"))
    with pytest.raises(BackboneError, match="without config.json"):
        load_backbone(str(tmp_path))
    with pytest.raises(BackboneError, match="unknown dtype"):
        load_backbone(None, dtype="float8")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneError, match="Hub could not be reached"):
        load_backbone("nobody-here/no-such-model-xyz")
