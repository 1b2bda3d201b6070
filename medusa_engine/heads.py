"""Medusa heads: K residual blocks on the backbone's last hidden state, each followed by an lm_head.

Head k (1-based) reads h_t and predicts token t+k+1. The block is `h + SiLU(W h + b)` with W and b
zero-initialised, so an untrained head predicts exactly what the base model predicts. The lm_head is
the backbone's (shared, default), a per-head copy (reference Medusa-1 checkpoints), or the shared one
plus a per-head low-rank correction.

Token-input heads (`token_input`; Hydra's sequentially dependent heads, Ankner et al. 2024, on one
token) also read the embedding of the token just before their target: `h + SiLU(W h + b + U e)`, U
zero-initialised. In a tree, head j runs once for each node of depth j-1 with children and reads that
node's token (head 1: the root, the base model's own next token), so every candidate is guessed after
its own parent. A node can only be accepted if its parent was, i.e. if the parent's token is the true
one: teacher-forced training and teacher-forced hit rates are therefore exactly what decoding meets.

Checkpoint formats read (validated: head count, hidden size and vocab must fit the backbone):
  (a) reference Medusa-1: config.json + medusa_lm_head.pt (`{i}.0.linear.weight|bias`, `{i}.1.weight`)
  (b) head-only safetensors without lm_heads: medusa_lm_head.safetensors (reference "version 2")
  (c) full Medusa-2 model checkpoints holding `medusa_head.{i}...` keys
Token-input heads add `{i}.token.weight` (d, d) per head to layout (b).
Saved as config.json + medusa_lm_head.safetensors in the layout of (b), readable by (b)'s loaders.

A head set may carry a draft vocabulary (draft_vocab.safetensors): the token ids its heads propose
from. Proposals only choose which candidates are verified, so greedy output is unchanged; on a CPU
projecting onto the 4,096 tokens answers use most instead of all 49,152 costs ~3 ms a step, not ~21.
"""
from __future__ import annotations

import json
import pickle
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn

from .tree import TreeBuffers

HEADS_FILE = "medusa_lm_head.safetensors"
STORAGE_DTYPE = torch.float16  # saved weights (half the bytes of float32; rounding ~2e-4 relative); loaded as float32
LEGACY_FILE = "medusa_lm_head.pt"
DRAFT_FILE = "draft_vocab.safetensors"
LM_HEAD_MODES = ("shared", "per_head", "lowrank")


class HeadsError(ValueError):
    """Heads that cannot be loaded or do not fit the backbone; the message says which and why."""


@dataclass(frozen=True)
class HeadsConfig:
    num_heads: int
    hidden_size: int
    vocab_size: int
    num_layers: int = 1
    lm_head: str = "shared"  # one of LM_HEAD_MODES
    rank: int = 0  # low-rank correction rank (lm_head == "lowrank")
    base_model: str = ""
    draft_vocab: int = 0  # how many token ids the heads propose from (0: the whole vocabulary)
    token_input: bool = False  # each head also reads the embedding of the token before its target

    def __post_init__(self) -> None:
        for name in ("num_heads", "hidden_size", "vocab_size", "num_layers"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise HeadsError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.lm_head not in LM_HEAD_MODES:
            raise HeadsError(f"lm_head must be one of {LM_HEAD_MODES}, got {self.lm_head!r}")
        if (self.lm_head == "lowrank") != (self.rank > 0):
            raise HeadsError("a positive rank goes with lm_head='lowrank', and only with it")
        if not isinstance(self.draft_vocab, int) or not 0 <= self.draft_vocab <= self.vocab_size:
            raise HeadsError(f"draft_vocab must be an integer in [0, {self.vocab_size}], got {self.draft_vocab!r}")
        if not isinstance(self.token_input, bool):
            raise HeadsError(f"token_input must be true or false, got {self.token_input!r}")


class ResBlock(nn.Module):
    def __init__(self, hidden_size: int):
        super().__init__()
        self.linear = nn.Linear(hidden_size, hidden_size)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """x + SiLU(W x + b [+ extra]): `extra` is a token-input head's projected token embedding."""
        pre = self.linear(x)
        return x + self.act(pre if extra is None else pre + extra)


class MedusaHeads(nn.Module):
    def __init__(self, config: HeadsConfig):
        super().__init__()
        self.config = config
        d, v, k = config.hidden_size, config.vocab_size, config.num_heads
        self.blocks = nn.ModuleList(
            [nn.Sequential(*[ResBlock(d) for _ in range(config.num_layers)]) for _ in range(k)]
        )
        self.lm_heads = (
            nn.ModuleList([nn.Linear(d, v, bias=False) for _ in range(k)]) if config.lm_head == "per_head" else None
        )
        self.tokens = nn.ModuleList([nn.Linear(d, d, bias=False) for _ in range(k)]) if config.token_input else None
        for lin in self.tokens or ():
            nn.init.zeros_(lin.weight)  # zero: a new token input changes nothing until trained
        if config.lm_head == "lowrank":
            self.down = nn.Parameter(torch.randn(k, d, config.rank) * d**-0.5)  # (K, d, r)
            self.up = nn.Parameter(torch.zeros(k, config.rank, v))  # (K, r, V): zero, so init == base
        else:
            self.down = self.up = None
        if config.draft_vocab:
            raise HeadsError("build heads without a draft vocabulary and give its ids to set_draft_vocab()")
        self.register_buffer("draft_ids", None, persistent=False)  # set_draft_vocab(); saved in DRAFT_FILE
        self._decoding_linears: dict[str, tuple[tuple, nn.Linear]] = {}  # name -> (source key, linear)

    @property
    def num_heads(self) -> int:
        return self.config.num_heads

    def optimizer_groups(self, lr: float, token_lr_multiplier: float) -> list[dict]:
        """AdamW parameter groups: the token projections (new, zero-initialised, when a trained set gains
        them) learn `token_lr_multiplier` times faster than the rest."""
        if self.tokens is None:
            return [{"params": list(self.parameters()), "lr": lr}]
        token_ids = {id(p) for p in self.tokens.parameters()}
        return [{"params": [p for p in self.parameters() if id(p) not in token_ids], "lr": lr},
                {"params": list(self.tokens.parameters()), "lr": lr * token_lr_multiplier}]

    @property
    def design(self) -> tuple[int, str, int, bool]:
        """(heads, lm_head mode, low rank, token input): what a further sitting must keep."""
        return self.num_heads, self.config.lm_head, self.config.rank, self.config.token_input

    def set_draft_vocab(self, ids: torch.Tensor | None) -> "MedusaHeads":
        """Propose only from token `ids` (1-D, distinct, in the vocabulary); None: the whole vocabulary."""
        if ids is not None:
            ids = torch.as_tensor(ids, dtype=torch.long).flatten()
            if ids.numel() == 0 or ids.min() < 0 or ids.max() >= self.config.vocab_size:
                raise HeadsError(f"a draft vocabulary needs 1 to {self.config.vocab_size} ids in [0, "
                                 f"{self.config.vocab_size}), got {ids.numel()} ids")
            if ids.unique().numel() != ids.numel():
                raise HeadsError("the draft vocabulary repeats token ids")
            ids = ids.to(self.blocks[0][0].linear.weight.device)
        self.draft_ids = ids
        self.config = replace(self.config, draft_vocab=0 if ids is None else int(ids.numel()))
        self._decoding_linears.pop("draft", None)
        return self

    def hidden(self, h: torch.Tensor, prev: torch.Tensor | None = None) -> torch.Tensor:
        """(..., d) -> (K, ..., d): each head's residual-block output. Token-input heads need `prev`
        (K, ..., d): the embedding of the token before each head's target."""
        if self.tokens is None:
            return torch.stack([block(h) for block in self.blocks])
        if prev is None or prev.shape != (self.num_heads, *h.shape):
            raise HeadsError(f"token-input heads need the previous tokens' embeddings, shape "
                             f"{(self.num_heads, *h.shape)}, got {None if prev is None else tuple(prev.shape)}")
        return torch.stack([block[1:](block[0](h, self.tokens[k](prev[k]))) for k, block in enumerate(self.blocks)])

    def previous_embeddings(self, prev_tokens: torch.Tensor, embed_weight: torch.Tensor | None) -> torch.Tensor | None:
        """(..., K) ids of the token before each head's target -> (K, ..., d) embeddings for `hidden`
        (None for heads without token input)."""
        if self.tokens is None:
            return None
        if embed_weight is None:
            raise HeadsError("token-input heads need the backbone's input embeddings")
        return embed_weight[prev_tokens.clamp(min=0)].movedim(-2, 0).to(self.blocks[0][0].linear.weight.dtype)

    def logits(self, z: torch.Tensor, lm_head: nn.Module) -> torch.Tensor:
        """(K, ..., d) head hiddens -> (K, ..., V) logits. The shared projection is one call of the
        backbone's lm_head over every head's rows (so it takes the packed path on a CPU, cpu_linear.py)."""
        if self.lm_heads is not None:
            return torch.stack([lm(z[k]) for k, lm in enumerate(self.lm_heads)])
        out = lm_head(z)
        if self.up is not None:
            flat = z.reshape(z.shape[0], -1, z.shape[-1])  # (K, N, d)
            out = out + torch.bmm(torch.bmm(flat, self.down), self.up).reshape(out.shape)
        return out

    def logits_over(self, z: torch.Tensor, lm_weight: torch.Tensor, cols: torch.Tensor | None = None,
                    first: int = 0) -> torch.Tensor:
        """(K', N, d) hiddens of heads first..first+K'-1 -> (K', N, C) logits over vocabulary ids `cols`
        (None: all V). Training uses a restricted vocabulary; inference the full one."""
        heads = range(first, first + z.shape[0])
        if self.lm_heads is not None:
            return torch.stack([z[i] @ (self.lm_heads[k].weight if cols is None else self.lm_heads[k].weight[cols]).T
                                for i, k in enumerate(heads)])
        out = z @ (lm_weight if cols is None else lm_weight[cols]).T
        if self.up is not None:
            up = self.up[first : first + z.shape[0]]
            out = out + torch.bmm(torch.bmm(z, self.down[first : first + z.shape[0]]),
                                  up if cols is None else up[:, :, cols])
        return out

    def forward(self, h: torch.Tensor, lm_head: nn.Module) -> torch.Tensor:
        """(..., d) -> (K, ..., V)."""
        return self.logits(self.hidden(h), lm_head)

    def top_tokens(self, z: torch.Tensor, lm_weight: torch.Tensor, k: int, first: int = 0) -> torch.Tensor:
        """(K', N, d) hiddens of heads first.. -> (K', N, k) each head's k likeliest token ids in its (draft)
        vocabulary."""
        idx = self.logits_over(z, lm_weight, self.draft_ids, first).topk(k, dim=-1).indices
        return idx if self.draft_ids is None else self.draft_ids[idx]

    def propose(self, h: torch.Tensor, lm_head: nn.Module, k: int, depth: int | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoding, heads without token input: hidden state (d,) -> the top-k probabilities and token ids of
        heads 1..depth (all K if None), both (depth, k); the probabilities are over the heads' vocabulary
        (the draft vocabulary if there is one). One-layer heads run their residual blocks as one (K*d, d)
        matrix product."""
        if self.tokens is not None:
            raise HeadsError("token-input heads propose per tree node: use propose_tree")
        n = self.num_heads if depth is None else max(0, min(depth, self.num_heads))
        if n == 0:
            return _no_proposals(k, h.device)
        if self.config.num_layers == 1:
            d = self.config.hidden_size
            z = h + torch.nn.functional.silu(self._stacked_blocks(lm_head)(h)).view(-1, d)  # (K, d)
        else:
            z = self.hidden(h)  # (K, d)
        probs, ids = self._top_probs(z[:n, None], lm_head, k)  # (n, 1, k) each
        return probs[:, 0], ids[:, 0]

    def propose_tree(self, h: torch.Tensor, lm_head: nn.Module, tree: TreeBuffers, root: torch.Tensor,
                     embed: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoding: the proposals a tree reads, as a (rows, top_k) table of probabilities and one of token
        ids, laid out as `proposal_layout(tree)` says. Heads without token input: one row per head (what
        `propose` gives; `root` and `embed` unused). Token-input heads: head j runs once for every node of
        depth j-1 that has children in the tree, reading that node's token (`root`, the base model's next
        token, for head 1) through the backbone's input `embed`ding, so each node's children are guesses
        made after that very node."""
        if self.tokens is None:
            return self.propose(h, lm_head, tree.top_k, tree.spec.depth)
        if not tree.expansions:  # a root-only tree reads no head
            return _no_proposals(tree.top_k, h.device)
        d = self.config.hidden_size
        stacked = self._stacked_blocks(lm_head)(h).view(-1, d) if self.config.num_layers == 1 else None  # (K, d)
        probs, ids, flat = [], [], root.reshape(1)  # flat: [root, rows so far flattened]
        for j, parents in enumerate(tree.expansions):
            projection = self._decoding_linear(f"token{j}", [self.tokens[j]], lm_head,
                                               lambda j=j: (self.tokens[j].weight, None))
            extra = projection(embed(flat[parents]))  # (E_j, d)
            if stacked is not None:
                z = h + torch.nn.functional.silu(stacked[j] + extra)
            else:
                z = self.blocks[j][1:](self.blocks[j][0](h.expand_as(extra), extra))
            p, i = self._top_probs(z[None], lm_head, tree.top_k, first=j)  # (1, E_j, k) each
            probs.append(p[0])
            ids.append(i[0])
            flat = torch.cat([flat, i[0].flatten()])
        return torch.cat(probs), torch.cat(ids)

    def proposal_layout(self, tree: TreeBuffers) -> tuple[torch.Tensor, torch.Tensor]:
        """For `propose_tree`'s table: (L,) each node's index in [root, table flattened], and (D,) each
        head's first row (one row per head to show: after the top-1 chain's node where the tree has it)."""
        if self.tokens is None:
            return tree.flat_index, torch.arange(tree.spec.depth, device=tree.flat_index.device)
        return tree.node_index, tree.first_rows

    def _top_probs(self, z: torch.Tensor, lm_head: nn.Module, k: int, first: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(K', N, d) hiddens of heads first.. -> their top-k probabilities and token ids, (K', N, k) each."""
        if self.lm_heads is None and self.up is None:
            logits = lm_head(z) if self.draft_ids is None else self._draft_projection(lm_head)(z)
        else:
            logits = self.logits_over(z, lm_head.weight, self.draft_ids, first)
        probs, idx = torch.softmax(logits.float(), dim=-1).topk(k)  # (K', N, k)
        return probs, idx if self.draft_ids is None else self.draft_ids[idx]

    def _stacked_blocks(self, lm_head: nn.Module) -> nn.Linear:
        """The K residual blocks' linears as one (K*d, d) projection (one-layer heads)."""
        linears = [block[0].linear for block in self.blocks]
        return self._decoding_linear("blocks", linears, lm_head, lambda: (
            torch.cat([lin.weight for lin in linears]), torch.cat([lin.bias for lin in linears])))

    def _draft_projection(self, lm_head: nn.Module) -> nn.Linear:
        """The shared lm_head's rows of the draft vocabulary."""
        return self._decoding_linear("draft", [lm_head], lm_head, lambda: (lm_head.weight[self.draft_ids], None),
                                     extra=(self.draft_ids.data_ptr(),))

    def _decoding_linear(self, name: str, sources: list[nn.Module], lm_head: nn.Module, build, extra=()) -> nn.Linear:
        """A linear made by `build()` -> (weight, bias or None) from the `sources`' weights, made once per
        state of those weights and packed like the lm_head (cpu_linear.py)."""
        from .cpu_linear import is_packed, pack_linears

        key = tuple((p.data_ptr(), p._version, p.device, p.dtype) for m in sources for p in m.parameters()) + (
            is_packed(lm_head),) + extra
        if name not in self._decoding_linears or self._decoding_linears[name][0] != key:
            with torch.inference_mode(False), torch.no_grad():  # decoding runs in inference mode; packing
                # needs a normal tensor (a version counter) as the weight
                weight, bias = build()
                proj = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device=weight.device,
                                 dtype=weight.dtype).requires_grad_(False)
                proj.weight.copy_(weight)
                if bias is not None:
                    proj.bias.copy_(bias)
                if is_packed(lm_head):
                    pack_linears(proj)
            self._decoding_linears[name] = (key, proj)
        return self._decoding_linears[name][1]

    # ---- checkpoint layout ---------------------------------------------------------------------
    def reference_state_dict(self) -> dict[str, torch.Tensor]:
        """State dict in the reference key layout: `{i}.{l}.linear.weight|bias`, `{i}.{L}.weight`."""
        out = {}
        n = self.config.num_layers
        for i, block in enumerate(self.blocks):
            for l, res in enumerate(block):
                out[f"{i}.{l}.linear.weight"] = res.linear.weight
                out[f"{i}.{l}.linear.bias"] = res.linear.bias
            if self.lm_heads is not None:
                out[f"{i}.{n}.weight"] = self.lm_heads[i].weight
            if self.up is not None:
                out[f"{i}.lowrank.down"] = self.down[i]
                out[f"{i}.lowrank.up"] = self.up[i]
            if self.tokens is not None:
                out[f"{i}.token.weight"] = self.tokens[i].weight
        return {k: v.detach().contiguous() for k, v in out.items()}

    def load_reference_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        """Strict inverse of `reference_state_dict` with shape checks (errors name the key)."""
        expected = self.reference_state_dict()
        missing = sorted(set(expected) - set(sd))
        unexpected = sorted(set(sd) - set(expected))
        if missing or unexpected:
            raise HeadsError(f"checkpoint keys do not match {self.config.num_heads} heads "
                             f"(missing {missing[:4]}, unexpected {unexpected[:4]})")
        for key, ref in expected.items():
            if tuple(sd[key].shape) != tuple(ref.shape):
                raise HeadsError(f"{key}: shape {tuple(sd[key].shape)} != expected {tuple(ref.shape)}")
        with torch.no_grad():
            n = self.config.num_layers
            for i, block in enumerate(self.blocks):
                for l, res in enumerate(block):
                    res.linear.weight.copy_(sd[f"{i}.{l}.linear.weight"])
                    res.linear.bias.copy_(sd[f"{i}.{l}.linear.bias"])
                if self.lm_heads is not None:
                    self.lm_heads[i].weight.copy_(sd[f"{i}.{n}.weight"])
                if self.up is not None:
                    self.down[i].copy_(sd[f"{i}.lowrank.down"])
                    self.up[i].copy_(sd[f"{i}.lowrank.up"])
                if self.tokens is not None:
                    self.tokens[i].weight.copy_(sd[f"{i}.token.weight"])


def _no_proposals(k: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Empty (0, k) probability and token-id tables: a tree that reads no head."""
    return torch.empty(0, k, device=device), torch.empty(0, k, dtype=torch.long, device=device)


def with_token_input(heads: MedusaHeads) -> MedusaHeads:
    """A token-input copy of `heads` (same weights, draft vocabulary and config, zero token projections):
    it proposes exactly what `heads` propose until trained further."""
    if heads.tokens is not None:
        return heads
    out = MedusaHeads(replace(heads.config, token_input=True, draft_vocab=0))
    out.load_state_dict(heads.state_dict(), strict=False)
    return out.set_draft_vocab(heads.draft_ids).to(heads.blocks[0][0].linear.weight.device)


def untrained_heads(num_heads: int, hidden_size: int, vocab_size: int, base_model: str = "") -> MedusaHeads:
    """Zero-initialised residual heads on the shared lm_head: each predicts what the base predicts."""
    return MedusaHeads(HeadsConfig(num_heads=num_heads, hidden_size=hidden_size, vocab_size=vocab_size,
                                   base_model=base_model))


def save_heads(heads: MedusaHeads, directory: str | Path, extra_config: dict | None = None) -> Path:
    """Write config.json + medusa_lm_head.safetensors (reference 'version 2' layout, in STORAGE_DTYPE)."""
    from safetensors.torch import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    cfg = asdict(heads.config)
    cfg.update(medusa_num_heads=heads.config.num_heads, medusa_num_layers=heads.config.num_layers,
               base_model_name_or_path=heads.config.base_model, version="2", **(extra_config or {}))
    tmp = out / (HEADS_FILE + ".tmp")
    save_file({k: v.to(STORAGE_DTYPE).cpu() for k, v in heads.reference_state_dict().items()}, str(tmp))
    tmp.replace(out / HEADS_FILE)
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    save_draft_vocab(heads, out)
    return out


def save_draft_vocab(heads: MedusaHeads, directory: str | Path) -> None:
    """Write (or, without one, remove) the heads' draft vocabulary file and state its size in config.json."""
    from safetensors.torch import save_file

    out = Path(directory)
    if heads.draft_ids is not None:
        save_file({"ids": heads.draft_ids.cpu().contiguous()}, str(out / (DRAFT_FILE + ".tmp")))
        (out / (DRAFT_FILE + ".tmp")).replace(out / DRAFT_FILE)
    else:
        (out / DRAFT_FILE).unlink(missing_ok=True)
    config_path = out / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    config_path.write_text(json.dumps(config | {"draft_vocab": heads.config.draft_vocab}, indent=2) + "\n")


def load_heads(source: str | Path, hidden_size: int, vocab_size: int, num_heads: int | None = None) -> MedusaHeads:
    """Load heads from a local directory (formats a, b, c) or a hub id, validated against the
    backbone's `hidden_size` and `vocab_size`. `num_heads`, if given, must match the checkpoint."""
    directory = _resolve_dir(source)
    sd, config = _read_state_dict(directory)
    cfg = _infer_config(sd, config, directory, vocab_size)
    if cfg.hidden_size != hidden_size:
        raise HeadsError(f"heads in {source} have hidden size {cfg.hidden_size}, the backbone has {hidden_size}: "
                         f"they were trained for another model")
    if cfg.vocab_size != vocab_size:
        raise HeadsError(f"heads in {source} have a vocabulary of {cfg.vocab_size}, the backbone has "
                         f"{vocab_size}: they were trained for another model")
    if num_heads is not None and num_heads != cfg.num_heads:
        raise HeadsError(f"{source} holds {cfg.num_heads} heads, {num_heads} were asked for")
    heads = MedusaHeads(cfg)
    heads.load_reference_state_dict({k: v.float() for k, v in sd.items()})
    if (directory / DRAFT_FILE).is_file():
        heads.set_draft_vocab(_read_draft_vocab(directory, config))
    elif config.get("draft_vocab"):
        raise HeadsError(f"{directory}: config.json states a draft vocabulary of {config['draft_vocab']} ids but "
                         f"{DRAFT_FILE} is missing")
    return heads.eval()


def _read_draft_vocab(directory: Path, config: dict) -> torch.Tensor:
    from safetensors.torch import load_file

    try:
        ids = load_file(str(directory / DRAFT_FILE))["ids"]
    except Exception as err:
        raise HeadsError(f"cannot read the draft vocabulary {directory / DRAFT_FILE}: it is corrupt or truncated "
                         f"({err.__class__.__name__}: {str(err)[:200]})") from err
    stated = config.get("draft_vocab")
    if stated and stated != ids.numel():
        raise HeadsError(f"{directory}: config.json states a draft vocabulary of {stated} ids, "
                         f"{DRAFT_FILE} holds {ids.numel()}")
    return ids


def _resolve_dir(source: str | Path) -> Path:
    path = Path(source)
    if path.is_dir():
        return path
    if str(source).startswith(("/", ".", "~")) or path.suffix:
        raise HeadsError(f"heads directory not found: {source}")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(source), allow_patterns=["*.json", "*.safetensors", "*.pt"]))
    except Exception as err:  # offline, unknown id, gated repo: all mean "not available"
        raise HeadsError(f"cannot fetch heads '{source}' from the Hugging Face Hub "
                         f"({err.__class__.__name__}); pass a local directory") from err


def _read_state_dict(directory: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Head tensors in the reference layout `{i}....`, plus the config.json (or {})."""
    config = json.loads((directory / "config.json").read_text()) if (directory / "config.json").is_file() else {}
    try:
        if (directory / HEADS_FILE).is_file():
            from safetensors.torch import load_file

            return load_file(str(directory / HEADS_FILE)), config
        if (directory / LEGACY_FILE).is_file():
            return _torch_load(directory / LEGACY_FILE), config
        full = _read_full_checkpoint(directory)
        if full:
            return full, config
    except HeadsError:
        raise
    except Exception as err:
        raise HeadsError(f"cannot read the heads checkpoint in {directory}: it is corrupt or truncated "
                         f"({err.__class__.__name__}: {str(err)[:200]})") from err
    raise HeadsError(f"no Medusa heads in {directory}: expected {HEADS_FILE}, {LEGACY_FILE}, or a model "
                     f"checkpoint with medusa_head.* weights")


def _torch_load(path: Path) -> dict[str, torch.Tensor]:
    try:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise HeadsError(f"refused to load {path}: it is not a plain tensor checkpoint (a pickle that "
                         f"would run code). Only weights-only files and safetensors are accepted.") from err
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise HeadsError(f"{path} does not hold a state dict of tensors")
    return sd


def _read_full_checkpoint(directory: Path) -> dict[str, torch.Tensor]:
    """`medusa_head.*` tensors from a full model checkpoint (safetensors shards or .bin), renamed."""
    prefix = "medusa_head."
    out: dict[str, torch.Tensor] = {}
    shards = sorted(directory.glob("*.safetensors"))
    if shards:
        from safetensors import safe_open

        for shard in shards:
            with safe_open(str(shard), framework="pt") as f:
                for key in f.keys():
                    if key.startswith(prefix):
                        out[key[len(prefix):]] = f.get_tensor(key)
    else:
        for shard in sorted(directory.glob("*.bin")):
            out.update({k[len(prefix):]: v for k, v in _torch_load(shard).items() if k.startswith(prefix)})
    return out


def _infer_config(sd: dict[str, torch.Tensor], config: dict, directory: Path, backbone_vocab: int) -> HeadsConfig:
    """Head count, layers and lm_head mode from the tensors themselves (published configs understate
    the head count). Heads on the shared lm_head carry no vocabulary of their own: theirs is the
    backbone's unless config.json states one."""
    heads = {int(m.group(1)) for k in sd if (m := re.match(r"(\d+)\.", k))}
    if not heads:
        raise HeadsError(f"no head tensors found in {directory}")
    k = max(heads) + 1
    if heads != set(range(k)):
        raise HeadsError(f"{directory}: head indices {sorted(heads)} are not 0..{k - 1}")
    stated = config.get("medusa_num_heads", config.get("num_heads"))
    if isinstance(stated, int) and stated > k:
        raise HeadsError(f"{directory}: config promises {stated} heads but the weights hold {k}")
    layers = 1 + max(int(m.group(1)) for key in sd if (m := re.match(r"0\.(\d+)\.linear\.weight$", key)))
    w = sd.get("0.0.linear.weight")
    if w is None or w.dim() != 2:
        raise HeadsError(f"{directory}: head 0 has no residual block weight")
    d = w.shape[1]
    lm = sd.get(f"0.{layers}.weight")
    if lm is not None:
        mode, vocab, rank = "per_head", lm.shape[0], 0
    elif "0.lowrank.up" in sd:
        mode, vocab, rank = "lowrank", sd["0.lowrank.up"].shape[1], sd["0.lowrank.up"].shape[0]
    else:
        vocab = config.get("vocab_size", backbone_vocab)
        mode, rank = "shared", 0
    return HeadsConfig(num_heads=k, hidden_size=d, vocab_size=vocab, num_layers=layers, lm_head=mode, rank=rank,
                       token_input="0.token.weight" in sd,
                       base_model=str(config.get("base_model", config.get("base_model_name_or_path", ""))))
