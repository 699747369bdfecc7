"""Benchmarks that print figures (never timed tests).

`training_throughput`: tokens/s of gqa's training step (our model and attention backend, fused loss,
fused AdamW with the paper's decay groups) against a plain loop over transformers' `LlamaForCausalLM`
with eager attention and its built-in label loss, same shape, same batches, same device.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from gqa.config import TrainConfig
from gqa.train import make_optimizer, next_token_loss, optimizer_step


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


TRAINING_OPTIONS = ("fp32, fused AdamW", "fp32, foreach AdamW", "bf16 autocast", "torch.compile")


def training_options(cfg: TrainConfig, vocab: int, *, steps: int = 20, warmup: int = 3,
                     options: tuple[str, ...] = TRAINING_OPTIONS) -> list[dict]:
    """Tokens/s of gqa's training step under each option, as ratios to the first (what `gqa train` runs),
    with the mean loss over the timed steps (same weights, same batches), so that an option that changes
    the arithmetic shows it. bf16 autocast runs on CPUs too (fast only with AMX or AVX512-BF16);
    torch.compile's compile time is in the warm-up steps, not in the figure."""
    from gqa.model import build_model

    shape = cfg.shape(vocab)
    g = torch.Generator().manual_seed(cfg.seed)
    batches = [torch.randint(0, vocab, (cfg.batch_size, cfg.context + 1), generator=g)
               for _ in range(warmup + steps)]
    tokens = steps * cfg.batch_size * cfg.context
    rows = []
    for option in options:
        if option not in TRAINING_OPTIONS:
            raise ValueError(f"unknown option {option!r}; known: {', '.join(TRAINING_OPTIONS)}")
        model = build_model(shape, attention_backend=cfg.attention, seed=cfg.seed, device=cfg.device)
        if option == "fp32, foreach AdamW":
            from gqa.train import param_groups

            opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas, eps=1e-8,
                                    foreach=True)
        else:
            opt = make_optimizer(model, cfg)
        forward = torch.compile(model) if option == "torch.compile" else model
        losses = []

        def step(batch, forward=forward, opt=opt, option=option, losses=losses):
            with torch.autocast(cfg.device.split(":")[0], dtype=torch.bfloat16, enabled=option == "bf16 autocast"):
                loss = next_token_loss(forward, batch, cfg.device)
            losses.append(float(loss.detach()))
            optimizer_step(model, opt, loss, cfg.grad_clip)

        seconds = _time_steps(step, batches, warmup)
        rows.append({"option": option, "tokens_per_s": tokens / seconds,
                     "mean_loss": float(np.mean(losses[warmup:]))})
    for row in rows:
        row["ratio"] = row["tokens_per_s"] / rows[0]["tokens_per_s"]
        row["loss_difference"] = row["mean_loss"] - rows[0]["mean_loss"]
    return rows


def fitting_speed(resamples: int = 1000, seed: int = 0) -> dict:
    """Seconds to fit and bootstrap 21 head configurations, to fill an 8 x 5 Table-4 grid, and for a
    whole `gqa plan` process (import included) on synthetic runs with a known law."""
    import json
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from gqa import search
    from gqa.scaling import PowerLaw, bootstrap, fit_family

    rng = np.random.default_rng(seed)
    sizes = np.geomspace(3e6, 1.2e9, 8)
    truth = {h: PowerLaw(3e8 * (32 / h[0]) ** 0.35 * (32 / h[1]) ** 0.08, 0.33, 1.9)
             for h in search.candidate_heads(32)}
    data = {h: (sizes, law.predict(sizes) * np.exp(rng.normal(0, 0.003, sizes.size))) for h, law in truth.items()}
    start = time.perf_counter()
    fits = fit_family(data)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    bootstrap(data, resamples=resamples, seed=seed, point=fits)
    boot_s = time.perf_counter() - start
    start = time.perf_counter()
    search.grid(fits, [3.0, 2.9, 2.8, 2.7, 2.6, 2.5, 2.4, 2.35], [8192, 16384, 32768, 65536, 131072])
    grid_s = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        records = Path(tmp) / "runs.jsonl"
        lines = []
        for (n_h, n_kv), (n, loss) in data.items():
            if (n_h, n_kv) not in ((8, 8), (8, 4), (8, 2), (8, 1), (4, 1), (2, 1), (1, 1)):
                continue  # the paper's Figure-2 set: a run store of 56 records
            for i, (ni, li) in enumerate(zip(n, loss)):
                lines.append(json.dumps({"run_id": f"{n_h}-{n_kv}-{i}", "n_heads": n_h, "n_kv_heads": n_kv,
                                         "head_dim": 64, "vocab": 50304, "layers": 4 + 4 * i,
                                         "d_model": 256 * (i + 1), "n_non_embedding": ni, "val_loss": li}))
        records.write_text("\n".join(lines) + "\n")
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "gqa.cli", "plan", "--runs", str(records), "--context",
                               "128k", "--target-loss", "2.615", "--baseline", "8,8", "--json"],
                              capture_output=True, text=True)
        plan_s = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"gqa plan failed: {proc.stderr.strip()[-300:]}")
    paper = {}  # whole processes on the paper's Figure 2 fits, as a user runs them (the budgets:
    # plan 1.5 s with its default 1000 resamples, table4 3 s with its default 200)
    for name, args in (("plan_figure2_process_s", ["plan", "--context", "128k", "--target-loss", "2.615",
                                                   "--baseline", "32,8"]),
                       ("table4_figure2_process_s", ["table4"]),
                       ("table4_batch128_fp8_process_s", ["table4", "--batch", "128", "--kv-dtype", "fp8"])):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "gqa.cli", *args], capture_output=True, text=True)
        paper[name] = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"gqa {' '.join(args)} failed: {proc.stderr.strip()[-300:]}")
    return {"fit_21_s": fit_s, f"bootstrap_21x{resamples}_s": boot_s, "grid_8x5_s": grid_s,
            "plan_process_s": plan_s, **paper}


def decode_throughput(shape, context: int, *, steps: int = 32, batch: int = 1, backend: str = "sdpa",
                      seed: int = 0, warmup: int = 4, device: str = "cpu", dtype: str = "fp32") -> dict:
    """A whole model with random weights, prefilled to `context` tokens, then `steps` greedy decode
    steps with its KV cache: decode tokens/s (batch over the median step, which a stray slow step does not
    move), each step's time (median and the 10th-90th percentile spread), prefill seconds, cache bytes.
    The cache is transformers' dynamic cache, which appends each step's K/V with a concatenation: a step
    also copies the cache it reads. A batch prefills one sequence (the last position's logits only) and copies
    its cache to every sequence: a decode step's cost does not depend on what the caches hold, and a batch
    that fits for decoding need not fit a batched prefill's activations."""
    from gqa.checks import cache_bytes
    from gqa.machine import TORCH_DTYPES, sync
    from gqa.model import build_model

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but torch sees no CUDA device")
    model = build_model(shape, attention_backend=backend, seed=seed,
                        max_context=context + steps + warmup + 1).eval().to(device=device, dtype=TORCH_DTYPES[dtype])
    ids = torch.randint(0, shape.vocab, (1, context), generator=torch.Generator().manual_seed(seed)).to(device)
    step_s = []
    with torch.no_grad():
        start = time.perf_counter()
        out = model(ids, use_cache=True, logits_to_keep=1)
        sync(device)
        prefill_s = time.perf_counter() - start
        cache, token = out.cache, out.logits[:, -1:].argmax(-1)
        if batch > 1:
            for layer in cache.layers:
                layer.keys, layer.values = layer.keys.repeat(batch, 1, 1, 1), layer.values.repeat(batch, 1, 1, 1)
            token = token.repeat(batch, 1)
        for i in range(warmup + steps):
            sync(device)
            start = time.perf_counter()
            out = model(token, cache=cache, use_cache=True)
            cache, token = out.cache, out.logits[:, -1:].argmax(-1)
            sync(device)
            if i >= warmup:
                step_s.append(time.perf_counter() - start)
    decode_s = sum(step_s)
    p10, p50, p90 = np.percentile(step_s, [10, 50, 90])
    return {"shape": shape.describe(), "context": context, "batch": batch, "steps": steps, "backend": backend,
            "threads": torch.get_num_threads(), "prefill_s": prefill_s, "decode_s": decode_s,
            "tokens_per_s": batch / p50, "step_ms_median": p50 * 1e3, "step_ms_p10": p10 * 1e3,
            "step_ms_p90": p90 * 1e3, "kv_cache_bytes": cache_bytes(cache),
            "weights_bytes": sum(p.numel() * p.element_size() for p in model.parameters())}
