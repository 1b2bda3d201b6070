"""MEDUSA-2: heads and backbone trained together, the backbone through a LoRA delta.

L = KL(p_original || p_tuned) + lambda0 * sum_k 0.8^k CE(head k, response[i + k]). The KL term is
self-distillation: the teacher is the same network with the adapters switched off, so the tuned
backbone keeps the original's behaviour. The heads start from MEDUSA-1 heads (the heads-only
warm-up stage) and learn `heads_lr_multiplier` times faster than the backbone. The heads' loss uses
MEDUSA-1's restricted softmax (`vocab_subset` most frequent response tokens, the example's own tokens
and random negatives; 0 = full vocabulary); the KL term always spans the whole vocabulary. The learning
rate follows a cosine over the examples, or over `max_minutes` if that box ends first, so a time-boxed
run still ends at a low rate. A later sitting starts from an earlier one's adapters (`init_delta`); the
teacher's hidden states may come from the MEDUSA-1 feature cache (`teacher_hidden`), which skips the
teacher's forward pass.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..backbone import Backbone
from ..heads import MedusaHeads
from ..lora import add_lora, load_lora, lora_enabled, lora_state
from .medusa1 import frequent_tokens, previous_tokens, restricted_vocab


@dataclass(frozen=True)
class Medusa2Config:
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lr: float = 2e-4  # backbone (LoRA)
    heads_lr_multiplier: float = 4.0
    token_lr_multiplier: float = 3.0  # token-input heads' token projections, over the heads' rate
    lambda_heads: float = 0.2
    decay: float = 0.8
    max_len: int = 320
    accumulate: int = 4
    vocab_subset: int = 8192
    random_negatives: int = 2048
    max_minutes: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if (self.lora_rank < 1 or self.lr <= 0 or self.token_lr_multiplier <= 0 or self.accumulate < 1 or self.max_len < 8 or self.vocab_subset < 0
                or self.random_negatives < 0 or (self.max_minutes is not None and self.max_minutes <= 0)):
            raise ValueError(f"invalid MEDUSA-2 config: {self}")


def schedule_progress(step: int, total: int, elapsed_s: float, max_minutes: float | None) -> float:
    """Share of the run done, in [0, 1]: of the steps, or of the time box if that is further along."""
    done = step / total
    if max_minutes:
        done = max(done, elapsed_s / (60.0 * max_minutes))
    return min(1.0, done)


def _decode(model, ids: torch.Tensor) -> torch.Tensor:
    return model.get_decoder()(input_ids=ids, use_cache=False).last_hidden_state[0]  # (T, d)


def _response_slice(ex: dict, max_len: int) -> tuple[torch.Tensor, int]:
    ids = (ex["prompt_ids"] + ex["response_ids"])[:max_len]
    return torch.tensor([ids]), len(ex["prompt_ids"])


TeacherHidden = Callable[[dict, int], "torch.Tensor | None"]


def train(backbone: Backbone, heads: MedusaHeads, examples: list[dict], config: Medusa2Config, log=print,
          init_delta: dict[str, torch.Tensor] | None = None, teacher_hidden: TeacherHidden | None = None,
          ) -> tuple[MedusaHeads, dict[str, torch.Tensor], list[dict]]:
    """Tune `backbone.model` (LoRA, in place) and `heads`; returns heads, the LoRA delta and a log.
    `teacher_hidden(example, n)`: the original model's final hidden states at the n positions that
    predict the (truncated) response, (n, d), or None to run the teacher."""
    model = backbone.model
    add_lora(model, config.lora_rank, config.lora_alpha)
    if init_delta is not None:
        load_lora(model, init_delta)
    lm_head, embed_weight = model.get_output_embeddings(), model.get_input_embeddings().weight
    lora_params = [p for n, p in model.named_parameters() if "lora_" in n]
    heads.train()
    opt = torch.optim.AdamW([{"params": lora_params, "lr": config.lr},
                             *heads.optimizer_groups(config.lr * config.heads_lr_multiplier,
                                                     config.token_lr_multiplier)],
                            weight_decay=0.0)
    total = max(1, len(examples) // config.accumulate)
    start = time.time()
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(
        math.pi * schedule_progress(s, total, time.time() - start, config.max_minutes))))
    weights = [config.decay ** (k + 1) for k in range(heads.num_heads)]
    vocab = lm_head.weight.shape[0]
    responses = torch.tensor([t for ex in examples for t in ex["response_ids"]], dtype=torch.long)
    freq = frequent_tokens(responses, config.vocab_subset) if config.vocab_subset else None
    gen = torch.Generator().manual_seed(config.seed)
    history = []
    for i, ex in enumerate(examples):
        ids, p = _response_slice(ex, config.max_len)
        if ids.shape[1] <= p:
            continue
        with torch.no_grad(), lora_enabled(model, False):
            cached = teacher_hidden(ex, ids.shape[1] - p) if teacher_hidden else None
            teacher = torch.log_softmax(lm_head(_decode(model, ids)[p - 1 : -1] if cached is None else cached)
                                        .float(), -1)  # (n, V)
        h = _decode(model, ids)  # (T, d), grads flow into the adapters
        student = torch.log_softmax(lm_head(h[p - 1 : -1]).float(), -1)
        kl = F.kl_div(student, teacher, log_target=True, reduction="batchmean")
        resp = ids[0, p:]  # (n,)
        cols, target = restricted_vocab(freq, resp, vocab, config.random_negatives, gen) if freq is not None \
            else (None, resp)
        prev = heads.previous_embeddings(previous_tokens(resp, heads.num_heads), embed_weight)  # (K, n, d) or None
        z = heads.hidden(h[p - 1 : -1], prev)  # (K, n, d); row j predicts resp[j]; head k predicts resp[j + k]
        head_losses = []
        for k in range(1, heads.num_heads + 1):
            if len(resp) > k:
                logits = heads.logits_over(z[k - 1 : k, : len(resp) - k], lm_head.weight, cols)[0]  # (n - k, C)
                head_losses.append(weights[k - 1] * F.cross_entropy(logits.float(), target[k:]))
        loss = kl + config.lambda_heads * sum(head_losses)
        (loss / config.accumulate).backward()
        if (i + 1) % config.accumulate == 0:
            opt.step()
            opt.zero_grad(set_to_none=True)
            sched.step()
            entry = {"step": (i + 1) // config.accumulate, "of": total, "kl": round(kl.item(), 5),
                     "heads": round(float(sum(head_losses).detach()), 4), "minutes": round((time.time() - start) / 60, 2)}
            history.append(entry)
            log(entry)
            if config.max_minutes and time.time() - start > config.max_minutes * 60:
                break
    heads.eval()
    return heads, lora_state(model), history


@torch.no_grad()
def quality(tuned, original, examples: list[dict], max_len: int = 320) -> dict:
    """Perplexity of held-out responses, and the greedy (argmax) tokens at every response position,
    tuned vs original: agreement = share of positions with equal argmax. The two may be one LoRA
    model (adapters switched on for "tuned", off for "original")."""
    nll = {"tuned": 0.0, "original": 0.0}
    count, agree = 0, 0
    for ex in examples:
        ids, p = _response_slice(ex, max_len)
        if ids.shape[1] <= p:
            continue
        target = ids[0, p:]
        argmax = {}
        for name, model in (("tuned", tuned), ("original", original)):
            with lora_enabled(model, name == "tuned"):
                logits = model.get_output_embeddings()(_decode(model, ids)[p - 1 : -1]).float()
            nll[name] += F.cross_entropy(logits, target, reduction="sum").item()
            argmax[name] = logits.argmax(-1)
        count += len(target)
        agree += int((argmax["tuned"] == argmax["original"]).sum())
    return {"positions": count, "greedy_agreement": agree / max(count, 1),
            "perplexity_original": math.exp(nll["original"] / max(count, 1)),
            "perplexity_tuned": math.exp(nll["tuned"] / max(count, 1))}


def config_dict(config: Medusa2Config) -> dict:
    return asdict(config)
