"""Vanilla and Medusa decoding as generators of Step records (one per forward pass).

Both lanes use the same model, cache type and dtype. A consumer cancels a run by no longer
iterating (or calling `.close()`); nothing runs between steps.
"""
from __future__ import annotations

import math
import platform
import time
from dataclasses import asdict, dataclass, replace
from typing import Iterable, Iterator

import torch

from .accept import accept, node_log_probs
from .backbone import Backbone
from .cpu_linear import argmax
from .decoder import BACKENDS, choose_backend, make_decoder
from .heads import MedusaHeads
from .trace import RunSummary, Step, Timing, TreeNode
from .tree import TreeSpec

MODES = ("greedy", "typical")


class DecodeError(ValueError):
    """Settings or inputs that cannot be decoded; the message says which and why."""


@dataclass(frozen=True)
class DecodeConfig:
    """How to decode. Typical acceptance uses temperature, epsilon and alpha (default sqrt(epsilon))."""

    mode: str = "greedy"
    max_new_tokens: int = 256
    temperature: float = 0.7
    epsilon: float = 0.09
    alpha: float | None = None
    top_k: int = 10
    seed: int = 0  # vanilla's sampling in typical mode
    backend: str = "auto"  # decoder backend (see decoder.py); "auto": the fast path where it pays

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise DecodeError(f"mode must be one of {MODES}, got {self.mode!r}")
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise DecodeError(f"max_new_tokens must be a positive integer, got {self.max_new_tokens!r}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 1:
            raise DecodeError(f"top_k must be a positive integer, got {self.top_k!r}")
        for name in ("temperature", "epsilon") + (("alpha",) if self.alpha is not None else ()):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise DecodeError(f"{name} must be a finite number, got {value!r}")
        if self.mode == "typical" and self.temperature <= 0:
            raise DecodeError("temperature must be > 0 for typical acceptance (use mode 'greedy' for T = 0)")
        if not 0 < self.epsilon <= 1:
            raise DecodeError(f"epsilon must lie in (0, 1], got {self.epsilon}")
        if self.alpha is not None and not 0 < self.alpha <= 1:
            raise DecodeError(f"alpha must lie in (0, 1], got {self.alpha}")
        if self.backend not in ("auto",) + BACKENDS:
            raise DecodeError(f"backend must be 'auto' or one of {BACKENDS}, got {self.backend!r}")

    @property
    def alpha_value(self) -> float:
        return self.alpha if self.alpha is not None else math.sqrt(self.epsilon)

    def for_device(self, device: torch.device) -> "DecodeConfig":
        """This config with "auto" resolved to the backend that will run on `device`."""
        return replace(self, backend=choose_backend(self.backend, device))

    def as_dict(self) -> dict:
        return asdict(self) | {"alpha": self.alpha_value}


class Detokenizer:
    """Incremental text: each push returns only the new characters, holding back an incomplete UTF-8 tail."""

    def __init__(self, tokenizer):
        self.tokenizer, self.ids, self.text = tokenizer, [], ""

    def push(self, ids: Iterable[int]) -> str:
        self.ids.extend(ids)
        full = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if full.endswith("\ufffd"):
            return ""
        new, self.text = full[len(self.text):], full
        return new


def clock(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def check_fits(backbone: Backbone, prompt_ids: list[int], config: DecodeConfig, tree_size: int = 1) -> None:
    """Raise DecodeError unless prompt + new tokens + one tree fit the model's context."""
    if not prompt_ids:
        raise DecodeError("prompt is empty")
    need = len(prompt_ids) + config.max_new_tokens + tree_size
    if need > backbone.max_context:
        raise DecodeError(f"prompt ({len(prompt_ids)} tokens) + max_new_tokens ({config.max_new_tokens}) + tree "
                          f"({tree_size}) = {need} tokens exceeds the model's context of {backbone.max_context}; "
                          f"shorten the prompt or lower max_new_tokens")


def _prefill(backbone: Backbone, prompt_ids: list[int], decoder) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the prompt; return the last hidden state (d,) and the base logits after it (V,)."""
    hidden = decoder.prefill(prompt_ids)[-1]  # (d,)
    return hidden, backbone.model.get_output_embeddings()(hidden)


def _prefill_step(lane: str, ms: float) -> Step:
    return Step(lane=lane, index=0, tokens=[], text="", timing=Timing(verify_ms=ms), kind="prefill")


def _finish(tokens: list[int], produced: int, config: DecodeConfig, eos: tuple[int, ...]) -> tuple[list[int], str | None]:
    """Cut `tokens` at the first EOS (kept) and at max_new_tokens; say why the run ends, if it does."""
    for i, t in enumerate(tokens):
        if t in eos:
            tokens = tokens[: i + 1]
            break
    room = config.max_new_tokens - produced
    if len(tokens) >= room:
        tokens = tokens[:room]
        return tokens, "eos" if tokens[-1] in eos else "max_new_tokens"
    return tokens, "eos" if tokens and tokens[-1] in eos else None


@torch.inference_mode()
def vanilla_steps(backbone: Backbone, prompt_ids: list[int], config: DecodeConfig) -> Iterator[Step]:
    """One token per forward. Greedy in greedy mode; sampling at `temperature` in typical mode."""
    check_fits(backbone, prompt_ids, config)
    decoder = make_decoder(backbone, choose_backend(config.backend, backbone.device),
                           len(prompt_ids) + config.max_new_tokens, 1)
    try:
        yield from _vanilla(backbone, decoder, prompt_ids, config)
    finally:
        decoder.close()


def _vanilla(backbone: Backbone, decoder, prompt_ids: list[int], config: DecodeConfig) -> Iterator[Step]:
    dev = backbone.device
    lm_head = backbone.model.get_output_embeddings()
    gen = torch.Generator(device=dev).manual_seed(config.seed)
    t0 = clock(dev)
    _, logits = _prefill(backbone, prompt_ids, decoder)
    yield _prefill_step("vanilla", (clock(dev) - t0) * 1e3)
    detok, produced, pos = Detokenizer(backbone.tokenizer), 0, len(prompt_ids)
    for index in range(1, config.max_new_tokens + 1):
        t0 = clock(dev)
        if config.mode == "greedy":
            token = argmax(logits)
        else:
            probs = torch.softmax(logits.float() / config.temperature, dim=-1)
            token = torch.multinomial(probs, 1, generator=gen)[0]
        token_id = int(token)  # host sync: the one per step
        tokens, stop = _finish([token_id], produced, config, backbone.eos_token_ids)
        if stop is None:
            hidden = decoder.step(token.view(1), torch.tensor([pos], device=dev), pos)  # (1, d)
            logits = lm_head(hidden[0])
            pos += 1
        ms = (clock(dev) - t0) * 1e3
        produced += 1
        yield Step(lane="vanilla", index=index, tokens=tokens, text=detok.push(tokens),
                   timing=Timing(verify_ms=ms), stop_reason=stop)
        if stop is not None:
            return


@torch.inference_mode()
def medusa_steps(backbone: Backbone, heads: MedusaHeads, tree: TreeSpec, prompt_ids: list[int],
                 config: DecodeConfig) -> Iterator[Step]:
    """Medusa decoding: heads' top-k -> tree candidates -> one tree-masked forward -> acceptance ->
    KV compaction. The next step's root logits and head input come from the same forward."""
    tree.check_fits(heads.num_heads, config.top_k)
    check_fits(backbone, prompt_ids, config, tree.size)
    decoder = make_decoder(backbone, choose_backend(config.backend, backbone.device),
                           len(prompt_ids) + config.max_new_tokens + tree.size, tree.size)
    try:
        yield from _medusa(backbone, decoder, heads, tree, prompt_ids, config)
    finally:
        decoder.close()


def _medusa(backbone: Backbone, decoder, heads: MedusaHeads, tree: TreeSpec, prompt_ids: list[int],
            config: DecodeConfig) -> Iterator[Step]:
    dev = backbone.device
    lm_head, embed = backbone.model.get_output_embeddings(), backbone.model.get_input_embeddings()
    buf = tree.buffers(config.top_k, dev)
    parents = torch.tensor([0] + tree.parents[1:], device=dev)  # (L,) root's parent is itself
    minus_inf = torch.finfo(backbone.dtype).min
    tree_bias = torch.zeros(tree.size, tree.size, dtype=backbone.dtype, device=dev).masked_fill(~buf.mask, minus_inf)
    alpha = config.alpha_value
    node_index, head_rows = heads.proposal_layout(buf)  # (L,) into [root, proposals], (D,) rows to show
    head_rows = head_rows.tolist()  # host copy, for the trace
    node_rows = [(i - 1) // config.top_k for i in node_index.tolist()]  # host copy: the row each node came from
    rows = [row[:n] for row, n in zip(buf.rows.tolist(), buf.row_lengths.tolist())]  # host copy: node ids per row
    first_nodes = list(range(tree.size))
    t0 = clock(dev)
    hidden, root_logits = _prefill(backbone, prompt_ids, decoder)
    yield _prefill_step("medusa", (clock(dev) - t0) * 1e3)
    detok, texts = Detokenizer(backbone.tokenizer), _TokenTexts(backbone.tokenizer)
    produced, pos, index = 0, len(prompt_ids), 0
    while True:
        index += 1
        t0 = clock(dev)
        root = argmax(root_logits)
        head_probs, head_tokens = heads.propose_tree(hidden, lm_head, buf, root, embed)  # (rows, k)
        tree_tokens = torch.cat([root[None], head_tokens.flatten()])[node_index]  # (L,)
        t1 = clock(dev)
        h = decoder.step(tree_tokens, pos + buf.depths, pos, tree_bias)  # (L, d)
        logits = lm_head(h)  # (L, V)
        t2 = clock(dev)
        acc = accept(logits, tree_tokens, parents, buf.rows, buf.row_lengths, config.mode,
                     config.temperature, config.epsilon, alpha)
        picked = torch.cat([acc.best[None], acc.accept_lengths[acc.best][None], tree_tokens[buf.rows[acc.best]]])
        best, n_acc, *row_tokens = picked.tolist()  # host sync: the one per step
        t3 = clock(dev)
        chosen = rows[best][: n_acc + 1]  # node ids, root first
        in_place = chosen == first_nodes[: n_acc + 1]  # the path is the tree's first nodes: nothing to move
        decoder.keep(pos, n_acc + 1 if in_place else buf.rows[best, : n_acc + 1] + pos)
        hidden, next_root_logits = h[chosen[-1]], logits[chosen[-1]]
        pos += n_acc + 1
        t4 = clock(dev)
        tokens, stop = _finish(row_tokens[: n_acc + 1], produced, config, backbone.eos_token_ids)
        produced += len(tokens)
        yield _medusa_record(index, tokens, detok.push(tokens), stop,
                             Timing(heads_ms=(t1 - t0) * 1e3, verify_ms=(t2 - t1) * 1e3,
                                    accept_ms=(t3 - t2) * 1e3, cache_ms=(t4 - t3) * 1e3),
                             tree, buf, best, n_acc, root_logits, head_tokens, head_probs, tree_tokens, acc,
                             config, texts, logits, parents, rows, node_index, head_rows, node_rows)
        if stop is not None:
            return
        root_logits = next_root_logits


class _TokenTexts:
    """Display text of single tokens, memoised."""

    def __init__(self, tokenizer):
        self.tokenizer, self.memo = tokenizer, {}

    def __call__(self, token: int) -> str:
        if token not in self.memo:
            self.memo[token] = self.tokenizer.decode([token])
        return self.memo[token]


def _medusa_record(index, tokens, text, stop, timing, tree, buf, best, n_acc, root_logits, head_tokens,
                   head_probs, tree_tokens, acc, config, texts, logits, parents, rows, node_index, head_rows,
                   node_rows) -> Step:
    """Build the step record (outside the timed region; the transfers below are trace-only syncs)."""
    scale = config.temperature if config.mode == "typical" else 1.0
    root_prob = torch.softmax(root_logits.float() / scale, dim=-1)[tree_tokens[0]]
    tok_list = tree_tokens.tolist()  # trace-only sync
    node_prob = (acc.node_prob if acc.node_prob is not None
                 else node_log_probs(logits, tree_tokens, parents).exp()).tolist()  # trace-only sync
    node_prob[0] = float(root_prob)  # trace-only sync
    thresholds = acc.threshold.tolist() if acc.threshold is not None else [None] * tree.size  # trace-only sync
    passes = acc.passes.tolist()  # trace-only sync
    shown = list(head_rows)  # per head, the row the trace shows: the one its accepted token came from, if any
    for depth, node in enumerate(rows[best][1 : n_acc + 1]):
        shown[depth] = node_rows[node]
    h_tok, h_prob = head_tokens[shown].tolist(), head_probs[shown].tolist()  # trace-only syncs
    proposed = torch.cat([head_probs.new_zeros(1), head_probs.flatten()])[node_index].tolist()  # trace-only sync
    nodes = [TreeNode(id=0, parent=-1, depth=0, rank=-1, token=tok_list[0], text=texts(tok_list[0]),
                      head_prob=None, base_prob=node_prob[0], threshold=None, passes=True)]
    for i, path in enumerate(tree.paths, start=1):
        d, r = len(path), path[-1]
        nodes.append(TreeNode(id=i, parent=tree.parents[i], depth=d, rank=r, token=tok_list[i],
                              text=texts(tok_list[i]), head_prob=proposed[i], base_prob=node_prob[i],
                              threshold=thresholds[i], passes=bool(passes[i])))
    return Step(lane="medusa", index=index, tokens=tokens, text=text, timing=timing, stop_reason=stop,
                root_token=tok_list[0], head_topk_tokens=h_tok,
                head_topk_texts=[[texts(t) for t in row] for row in h_tok], head_topk_probs=h_prob,
                nodes=nodes, rows=rows, accept_lengths=acc.accept_lengths.tolist(), chosen_row=best,
                chosen_nodes=rows[best][: n_acc + 1], mask=buf.mask.int().tolist())


def environment(backbone: Backbone, heads_name: str | None = None) -> dict:
    """Model, heads, device, dtype and library versions, for run summaries and exports."""
    import transformers

    return {"model": backbone.name, "model_source": backbone.source, "heads": heads_name,
            "device": str(backbone.device), "dtype": str(backbone.dtype).replace("torch.", ""),
            "matmuls": backbone.matmuls, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version(), "threads": torch.get_num_threads()}


def summarize(steps: list[Step], prompt: str, prompt_ids: list[int], config: DecodeConfig, env: dict) -> RunSummary:
    """Totals of one lane from its step records (a run whose last step did not finish was cancelled)."""
    decode = [s for s in steps if s.kind == "decode"]
    prefill = [s for s in steps if s.kind == "prefill"]
    ids = [t for s in decode for t in s.tokens]
    reason = decode[-1].stop_reason if decode and decode[-1].finished else "cancelled"
    return RunSummary(lane=steps[0].lane if steps else "", prompt=prompt, prompt_tokens=len(prompt_ids),
                      settings=config.as_dict(), environment=env, token_ids=ids,
                      text="".join(s.text for s in decode), steps=len(decode),
                      prefill_ms=prefill[0].timing.total_ms if prefill else 0.0,
                      decode_ms=sum(s.timing.total_ms for s in decode), stop_reason=reason)
