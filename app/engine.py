"""The app's one door to the engine: load once (lazily), plan a run, hand out step generators.

Everything the UI needs from `medusa_engine` goes through `Engine`, so tests can build one from
a tiny model (`Engine.from_parts`) and the rest of the app stays free of tensors.
"""
from __future__ import annotations

import os
import platform
import re
import threading
from dataclasses import dataclass, replace
from typing import Callable, Iterator

from .settings import Settings

# Bounds the tokenizer's work before the context check: the default model's context of 8192 tokens
# holds roughly this many characters of English.
MAX_PROMPT_CHARS = 32_000


@dataclass(frozen=True)
class Plan:
    """One run, ready to decode: the exact prompt ids and the engine objects behind them."""

    prompt: str
    system: str | None
    prompt_ids: list[int]
    prompt_text: str  # the templated prompt, exactly as the model sees it
    config: object  # medusa_engine.decode.DecodeConfig
    tree: object  # medusa_engine.tree.TreeSpec
    settings: Settings


class Engine:
    """A backbone + head set, loaded on first use (thread-safe, once). Read-only after loading."""

    def __init__(self, loader: Callable[[], tuple[object, object]]):
        self._loader, self._lock, self._parts = loader, threading.Lock(), None

    @classmethod
    def default(cls, device: str | None = None, dtype: str | None = None) -> "Engine":
        """The embedded default model with its shipped heads."""
        from medusa_engine.backbone import load_backbone

        return cls.for_heads(None, lambda delta: load_backbone(None, device=device, dtype=dtype, delta=delta))

    @classmethod
    def for_heads(cls, source: str | None, backbone_for: Callable[[str | None], object]) -> "Engine":
        """The head set at `source` (a directory, "untrained", or None for the shipped default) on the
        backbone `backbone_for(delta)` returns: delta is the set's MEDUSA-2 directory, or None."""

        def load():
            from medusa_engine.bundle import delta_for, load_head_set

            backbone = backbone_for(delta_for(source))
            head_set = load_head_set(source, backbone)
            _warm_up(backbone, head_set)
            return backbone, head_set

        return cls(load)

    @classmethod
    def from_parts(cls, backbone, head_set) -> "Engine":
        return cls(lambda: (backbone, head_set))

    # ---------------------------------------------------------------- loading
    @property
    def parts(self):
        if self._parts is None:
            with self._lock:
                if self._parts is None:
                    self._parts = self._loader()
        return self._parts

    @property
    def backbone(self):
        return self.parts[0]

    @property
    def head_set(self):
        return self.parts[1]

    @property
    def num_heads(self) -> int:
        return self.head_set.heads.num_heads

    def info(self) -> dict:
        """Model, heads, device, dtype and versions, for the header and the export."""
        import gradio
        import torch
        import transformers

        b, h = self.backbone, self.head_set
        try:
            file_hash = b.file_hash()
        except OSError:
            file_hash = None
        device = str(b.device)
        if b.device.type == "cuda":
            device += f" ({torch.cuda.get_device_name(b.device)})"
        return {"model": b.name, "model_hash": file_hash, "heads": h.name, "heads_calibrated": bool(h.calibrated),
                "num_heads": h.heads.num_heads, "device": device, "dtype": str(b.dtype).replace("torch.", ""),
                "threads": torch.get_num_threads(), "matmuls": b.matmuls,
                "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                             "gradio": gradio.__version__, "python": platform.python_version()}}

    def default_system(self) -> str:
        """The system prompt the chat template adds when none is given ("" if there is none)."""
        tok = self.backbone.tokenizer
        if not getattr(tok, "chat_template", None):
            return ""
        text = tok.apply_chat_template([{"role": "user", "content": "x"}], add_generation_prompt=True,
                                       tokenize=False)
        m = re.search(r"<\|im_start\|>system\n(.*?)<\|im_end\|>", text, re.S)
        return m.group(1) if m else ""

    # ---------------------------------------------------------------- runs
    def plan(self, prompt: str, system: str | None, settings: Settings) -> Plan:
        """Encode the prompt and build config + tree; raises ValueError with a readable message."""
        from medusa_engine.backbone import encode_chat
        from medusa_engine.decode import check_fits
        from medusa_engine.inputs import check_text

        check_text(prompt)
        if len(prompt) > MAX_PROMPT_CHARS:
            raise ValueError(f"prompt is too long: {len(prompt)} characters, at most {MAX_PROMPT_CHARS}")
        if system is not None:
            check_text(system, "system prompt")
            if len(system) > MAX_PROMPT_CHARS:
                raise ValueError(f"system prompt is too long: {len(system)} characters, at most {MAX_PROMPT_CHARS}")
        backend = os.environ.get("MEDUSA_LENS_BACKEND", "auto")  # "eager" turns the fast path off (debugging)
        config = replace(settings.decode_config(), backend=backend).for_device(self.backbone.device)
        if system is not None and system == self.default_system():
            system = None  # exactly the template's own default
        ids = encode_chat(self.backbone, prompt, system)
        tree = self.tree(settings)
        check_fits(self.backbone, ids, config, tree.size)
        text = self.backbone.tokenizer.decode(ids)
        return Plan(prompt, system, ids, text, config, tree, settings)

    def tree(self, settings: Settings, width: int | None = None):
        """The tree for these settings: the calibrated tree of `width` nodes grown with at most
        `heads_used` heads, or the top-1 chain of `heads_used` heads. ValueError if the head set has
        fewer than `heads_used` heads."""
        if settings.heads_used > self.num_heads:
            raise ValueError(f"Heads used must be a whole number in 1..{self.num_heads} (this head set has "
                             f"{self.num_heads} heads), got {settings.heads_used}")
        choice = "chain" if settings.tree_shape == "chain" else (settings.width if width is None else width)
        return self.head_set.tree(choice, settings.top_k, max_depth=settings.heads_used)

    def vanilla(self, plan: Plan) -> Iterator:
        from medusa_engine.decode import vanilla_steps

        return vanilla_steps(self.backbone, plan.prompt_ids, plan.config)

    def medusa(self, plan: Plan, tree=None) -> Iterator:
        from medusa_engine.decode import medusa_steps

        return medusa_steps(self.backbone, self.head_set.heads, tree or plan.tree, plan.prompt_ids, plan.config)


def _warm_up(backbone, head_set) -> None:
    """A 2-token decode in both lanes, so a visitor's first Run does not pay first-call costs."""
    from medusa_engine.backbone import encode_chat
    from medusa_engine.decode import DecodeConfig, medusa_steps, vanilla_steps

    ids = encode_chat(backbone, "Hi")
    config = DecodeConfig(max_new_tokens=2)
    for gen in (vanilla_steps(backbone, ids, config),
                medusa_steps(backbone, head_set.heads, head_set.tree(16, config.top_k), ids, config)):
        for _ in gen:
            pass
