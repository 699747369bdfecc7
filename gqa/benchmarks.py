"""Benchmarks that print figures (never timed tests).

`training_throughput`: tokens/s of gqa's training step (our model and attention backend, fused loss,
foreach AdamW with the paper's decay groups) against a plain loop over transformers' `LlamaForCausalLM`
with eager attention and its built-in label loss, same shape, same batches, same device.
"""

from __future__ import annotations

import time

import torch

from gqa.train import TrainConfig, make_optimizer, next_token_loss, optimizer_step


def _time_steps(step, batches: list[torch.Tensor], warmup: int) -> float:
    for batch in batches[:warmup]:
        step(batch)
    start = time.perf_counter()
    for batch in batches[warmup:]:
        step(batch)
    return time.perf_counter() - start


def training_throughput(cfg: TrainConfig, vocab: int, *, steps: int = 20, warmup: int = 3,
                        backend: str | None = None) -> dict:
    """Tokens/s of gqa's training step and of a plain transformers eager loop on the same batches."""
    from transformers import LlamaForCausalLM

    from gqa.model import build_model, llama_config

    shape = cfg.shape(vocab)
    g = torch.Generator().manual_seed(cfg.seed)
    batches = [torch.randint(0, vocab, (cfg.batch_size, cfg.context + 1), generator=g)
               for _ in range(warmup + steps)]
    tokens = steps * cfg.batch_size * cfg.context

    ours = build_model(shape, attention_backend=backend or cfg.attention, seed=cfg.seed, device=cfg.device)
    ours_opt = make_optimizer(ours, cfg)
    ours_s = _time_steps(lambda b: optimizer_step(ours, ours_opt, next_token_loss(ours, b, cfg.device),
                                                  cfg.grad_clip), batches, warmup)

    config = llama_config(shape, attention_backend="eager", max_context=cfg.context)
    plain = LlamaForCausalLM(config)
    plain.set_attn_implementation("eager")  # transformers' own eager attention
    plain_opt = torch.optim.AdamW(plain.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)

    def plain_step(batch):
        loss = plain(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(plain.parameters(), cfg.grad_clip)
        plain_opt.step()
        plain_opt.zero_grad(set_to_none=True)

    plain_s = _time_steps(plain_step, batches, warmup)
    return {"shape": shape.describe(), "context": cfg.context, "batch": cfg.batch_size,
            "threads": torch.get_num_threads(), "tokens": tokens,
            "gqa_tokens_per_s": tokens / ours_s, "plain_eager_tokens_per_s": tokens / plain_s,
            "ratio": plain_s / ours_s}
