"""One-call decoding for scripts and the CLI: load, encode, decode, summarise."""
from __future__ import annotations

from typing import Callable

from .backbone import encode_chat, load_backbone
from .bundle import delta_for, load_head_set
from .decode import DecodeConfig, environment, medusa_steps, summarize, vanilla_steps
from .inputs import check_device, check_text
from .trace import RunSummary


def generate(prompt: str, *, model: str | None = None, heads: str | None = None, tree: str | int | None = None,
             vanilla: bool = False, system: str | None = None, device: str | None = None, dtype: str | None = None,
             on_text: Callable[[str], None] | None = None, **decode) -> RunSummary:
    """Decode `prompt` (chat template applied) and return the run summary; `decode` holds
    DecodeConfig fields. `on_text` receives each step's new text as it is produced."""
    config = DecodeConfig(**{k: v for k, v in decode.items() if v is not None})
    check_text(prompt)
    if system is not None:
        check_text(system, "system prompt")
    check_device(device)
    backbone = load_backbone(model, device=device, dtype=dtype, delta=delta_for(heads))
    config = config.for_device(backbone.device)  # the summary records the backend that ran
    prompt_ids = encode_chat(backbone, prompt, system)
    if vanilla:
        steps_iter, env = vanilla_steps(backbone, prompt_ids, config), environment(backbone)
    else:
        head_set = load_head_set(heads, backbone)
        spec = head_set.tree(tree, config.top_k)
        steps_iter = medusa_steps(backbone, head_set.heads, spec, prompt_ids, config)
        env = environment(backbone, head_set.name) | {"tree_size": spec.size}
    steps = []
    for step in steps_iter:
        steps.append(step)
        if on_text and step.text:
            on_text(step.text)
    return summarize(steps, prompt, prompt_ids, config, env)
