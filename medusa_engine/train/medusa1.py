"""MEDUSA-1: heads trained on a frozen backbone from cached hidden states.

Loss = sum_k 0.8^k * CE(head k at row i, response[i + k]); AdamW with linear warm-up and cosine decay.
With `soft_weight` w > 0 each head's loss is (1 - w) * that hard-label CE + w * CE against the backbone's
own distribution over response[i + k] (self-distillation of soft targets): the lm_head of cached row
i + k, so the teacher costs one more projection and no extra backbone pass.
The lm_head projection dominates the cost, so training uses a restricted softmax: the most frequent
response tokens, every target of the batch and a few thousand random vocabulary ids as negatives
(`vocab_subset`; 0 = full vocabulary). The trained heads then propose from the `draft_vocab` most
frequent response tokens only (heads.py): measured on MT-Bench by replay, 4,096 ids give slightly more
tokens/step than the full vocabulary (rare tokens, seldom seen in training, stop crowding the top-k)
at a fifth of the projection's cost.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..heads import HeadsConfig, MedusaHeads
from .features import FeatureStore


@dataclass(frozen=True)
class TrainConfig:
    num_heads: int = 4
    lm_head: str = "shared"  # shared | lowrank | per_head
    rank: int = 0
    epochs: float = 2.0
    batch_rows: int = 1024
    lr: float = 3e-3
    warmup_steps: int = 30
    decay: float = 0.8
    vocab_subset: int = 8192
    draft_vocab: int = 4096  # the heads propose from this many most frequent response tokens (0: all)
    random_negatives: int = 2048  # extra uniformly drawn vocabulary ids per batch: keep unseen tokens down
    soft_weight: float = 0.0  # share of the loss on the backbone's distribution (0: hard labels only)
    token_input: bool = False  # heads also read the embedding of the token before their target (heads.py)
    token_lr_multiplier: float = 3.0  # the token projections' learning rate over `lr`
    max_minutes: float | None = None  # time box: stop early (the schedule still follows `epochs`)
    seed: int = 0

    def __post_init__(self) -> None:
        if (self.num_heads < 1 or self.batch_rows < 1 or self.epochs <= 0 or self.lr <= 0
                or self.token_lr_multiplier <= 0):
            raise ValueError(f"invalid training config: {self}")
        if self.draft_vocab < 0 or self.vocab_subset < 0:
            raise ValueError(f"draft_vocab and vocab_subset must be >= 0: {self}")
        if not 0.0 <= self.soft_weight <= 1.0:
            raise ValueError(f"soft_weight must lie in [0, 1], got {self.soft_weight}")


@dataclass
class Rows:
    """Training rows: hidden states (N, d) float16, targets (N, K) with -100 where the response ends,
    teacher (N, K): the row whose lm_head output is the backbone's distribution over that target (-1: none),
    and prev (N, K): the token before each target (what token-input heads read; 0 where there is none)."""

    hidden: torch.Tensor
    targets: torch.Tensor
    teacher: torch.Tensor
    prev: torch.Tensor

    def __len__(self) -> int:
        return self.hidden.shape[0]


def previous_tokens(response: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(n,) response ids -> (n, K): at row i (the row that predicts response[i]) the token before head k's
    target response[i + k], i.e. response[i + k - 1]; 0 past the end."""
    n = len(response)
    prev = torch.zeros(n, num_heads, dtype=torch.long)
    for k in range(1, num_heads + 1):
        prev[: max(n - k + 1, 0), k - 1] = response[k - 1 :]
    return prev


def build_rows(examples: list[dict], store: FeatureStore, num_heads: int) -> Rows:
    matrix = store.matrix()
    idx, tgt, teach, prev, start = [], [], [], [], 0
    for ex in examples:
        if ex["id"] not in store.index:
            continue
        offset, n = store.index[ex["id"]]
        resp = np.asarray(ex["response_ids"], dtype=np.int64)
        assert len(resp) == n, (ex["id"], len(resp), n)
        t = np.full((n, num_heads), -100, dtype=np.int64)
        teacher = np.full((n, num_heads), -1, dtype=np.int64)
        for k in range(1, num_heads + 1):
            t[: max(n - k, 0), k - 1] = resp[k:]
            teacher[: max(n - k, 0), k - 1] = start + np.arange(k, n)
        idx.append(np.arange(offset, offset + n))
        tgt.append(t)
        teach.append(teacher)
        prev.append(previous_tokens(torch.from_numpy(resp), num_heads))
        start += n
    if not idx:
        raise ValueError("no examples with cached features")
    rows = np.concatenate(idx)
    return Rows(hidden=torch.from_numpy(np.asarray(matrix[rows])), targets=torch.from_numpy(np.concatenate(tgt)),
                teacher=torch.from_numpy(np.concatenate(teach)), prev=torch.cat(prev))


def design_text(num_heads: int, lm_head: str, rank: int, token_input: bool) -> str:
    return f"{num_heads} x {lm_head} (rank {rank}{', token input' if token_input else ''})"


def frequent_tokens(tokens: torch.Tensor, count: int) -> torch.Tensor:
    """The `count` most frequent ids among `tokens` (negative ids ignored), most frequent first; fewer if
    fewer distinct ids occur."""
    counts = torch.bincount(tokens[tokens >= 0])
    return torch.argsort(counts, descending=True, stable=True)[: min(count, int((counts > 0).sum()))]


def restricted_vocab(freq: torch.Tensor, targets: torch.Tensor, vocab: int, negatives: int,
                     gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A restricted softmax's columns: the ids `freq`, every target id and `negatives` uniformly drawn ids.
    Returns (cols (C,) sorted, `targets` re-indexed into cols; -100 stays -100)."""
    drawn = torch.randint(vocab, (negatives,), generator=gen)
    cols = torch.unique(torch.cat([freq, targets[targets >= 0], drawn]))  # (C,)
    lookup = torch.full((vocab,), -100, dtype=torch.long)
    lookup[cols] = torch.arange(len(cols))
    return cols, torch.where(targets >= 0, lookup[targets.clamp(min=0)], targets)


def train(rows: Rows, lm_weight: torch.Tensor, config: TrainConfig, heads: MedusaHeads | None = None,
          log=print, embed_weight: torch.Tensor | None = None) -> tuple[MedusaHeads, list[dict]]:
    """Train heads on `rows` against the frozen shared lm_head weight (V, d): new ones, or `heads` further
    (e.g. heads of an earlier sitting on new data; their design must match `config`). Token-input heads
    need the backbone's input `embed_weight` (V, d). Returns heads and a log."""
    asked = (config.num_heads, config.lm_head, config.rank, config.token_input)
    if heads is not None and heads.design != asked:
        raise ValueError(f"heads to train further are {design_text(*heads.design)}, the config asks for "
                         f"{design_text(*asked)}")
    if config.token_input and embed_weight is None:
        raise ValueError("token-input heads train with the backbone's input embeddings (embed_weight)")
    torch.manual_seed(config.seed)
    vocab, d = lm_weight.shape
    if heads is None:
        heads = MedusaHeads(HeadsConfig(num_heads=config.num_heads, hidden_size=d, vocab_size=vocab,
                                        lm_head=config.lm_head, rank=config.rank, token_input=config.token_input))
        if heads.lm_heads is not None:
            with torch.no_grad():
                for lm in heads.lm_heads:
                    lm.weight.copy_(lm_weight)
    heads.train()
    lm_weight = lm_weight.detach().float()
    freq = frequent_tokens(rows.targets[:, 0], config.vocab_subset) if config.vocab_subset else None
    total = max(1, int(config.epochs * len(rows) / config.batch_rows))
    opt = torch.optim.AdamW(heads.optimizer_groups(config.lr, config.token_lr_multiplier), weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / config.warmup_steps) *
                                              0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    weights = torch.tensor([config.decay ** (k + 1) for k in range(config.num_heads)])
    history, start, step = [], time.time(), 0
    gen = torch.Generator().manual_seed(config.seed)
    done = False
    while not done:
        for batch in torch.randperm(len(rows), generator=gen).split(config.batch_rows):
            h = rows.hidden[batch].float()  # (B, d)
            tgt = rows.targets[batch]  # (B, K)
            z = heads.hidden(h, heads.previous_embeddings(rows.prev[batch], embed_weight))  # (K, B, d)
            cols = None
            if freq is not None:
                cols, tgt = restricted_vocab(freq, tgt, vocab, config.random_negatives, gen)  # (C,), (B, K)
            logits = heads.logits_over(z, lm_weight, cols)  # (K, B, C)
            per_head = torch.stack([F.cross_entropy(logits[k], tgt[:, k], ignore_index=-100)
                                    for k in range(config.num_heads)])
            if config.soft_weight:
                soft = soft_target_loss(logits, rows, batch, lm_weight, cols)
                per_head = (1 - config.soft_weight) * per_head + config.soft_weight * soft
            loss = (weights * per_head).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 25 == 0 or step == total:
                entry = {"step": step, "of": total, "loss": round(loss.item(), 4),
                         "head_loss": [round(x, 3) for x in per_head.tolist()],
                         "lr": sched.get_last_lr()[0], "minutes": round((time.time() - start) / 60, 2)}
                history.append(entry)
                log(entry)
            done = step >= total or bool(config.max_minutes and time.time() - start > config.max_minutes * 60)
            if done:
                break
    heads.set_draft_vocab(frequent_tokens(rows.targets[:, 0], config.draft_vocab) if config.draft_vocab else None)
    return heads.eval(), history


def soft_target_loss(logits: torch.Tensor, rows: Rows, batch: torch.Tensor, lm_weight: torch.Tensor,
                     cols: torch.Tensor | None) -> torch.Tensor:
    """(K,) cross-entropy of each head's `logits` (K, B, C) against the backbone's distribution over the
    same columns at the teacher rows of `batch`; rows without a teacher are left out."""
    teacher = rows.teacher[batch].T  # (K, B)
    weight = lm_weight if cols is None else lm_weight[cols]  # (C, d), gathered once for all heads
    losses = []
    for k in range(logits.shape[0]):
        valid = teacher[k] >= 0
        with torch.no_grad():
            h = rows.hidden[teacher[k][valid]].float()  # (b, d)
            target = torch.softmax(h @ weight.T, dim=-1)  # (b, C)
        losses.append(F.cross_entropy(logits[k][valid], target) if valid.any() else logits.sum() * 0)
    return torch.stack(losses)


@torch.no_grad()
def evaluate(heads: MedusaHeads, rows: Rows, lm_weight: torch.Tensor, ranks: int = 10,
             max_rows: int | None = 8000, embed_weight: torch.Tensor | None = None) -> dict:
    """Top-1 / top-5 accuracy per head and rank-specific hit rates [K][ranks] over the first `max_rows`
    rows (None: all), over the heads' vocabulary (the draft vocabulary if they have one, else all of it).
    Token-input heads read the true previous tokens (teacher forcing: the context every node that can
    be accepted is proposed in)."""
    n = len(rows) if max_rows is None else min(len(rows), max_rows)
    hits = torch.zeros(heads.num_heads, ranks)
    counts = torch.zeros(heads.num_heads)
    for batch in torch.arange(n).split(1024):
        z = heads.hidden(rows.hidden[batch].float(), heads.previous_embeddings(rows.prev[batch], embed_weight))
        top = heads.top_tokens(z, lm_weight.float(), ranks)  # (K, B, ranks)
        tgt = rows.targets[batch].T  # (K, B)
        valid = tgt >= 0
        hits += ((top == tgt[..., None]) & valid[..., None]).sum(1).float()
        counts += valid.sum(1).float()
    rates = hits / counts[:, None].clamp(min=1)
    return {"rows": int(counts[0]), "top1": rates[:, 0].tolist(), "top5": rates[:, :5].sum(1).tolist(),
            "hit_rates": rates.tolist()}


def config_dict(config: TrainConfig) -> dict:
    return asdict(config)
