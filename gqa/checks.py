"""Measured checks of the cost model against a real model (the book's chapter 2, `gqa profile`).

- FLOPs: `torch.utils.flop_counter.FlopCounterMode` on the eager (math) path. The counter sees the full
  T×T products of a masked forward pass (it does not halve for causal masking), which is exactly Eq. 3
  at context T, times T tokens: per component, counted == B·T·`cost.components(shape, T)`.
- KV cache: the bytes of the model's own cache tensors after prefilling T tokens.
"""

from __future__ import annotations

import torch

from gqa import cost
from gqa.machine import TORCH_DTYPES
from gqa.shapes import Shape

# FlopCounterMode module names -> Table 2 component names
_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")


# --- FLOPs and KV cache, measured on a real model -------------------------------------------------


def counted_flops_by_component(model: torch.nn.Module, input_ids: torch.Tensor,
                               cache=None) -> dict[str, float]:
    """FLOPs counted by FlopCounterMode in one forward pass, grouped by Table 2 component."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False, depth=None) as counter, torch.no_grad():
        model(input_ids, cache=cache, use_cache=cache is not None)
    totals = {"attention projections": 0.0, "attention operator": 0.0, "FFN": 0.0,
              "output projection": 0.0}
    for module, ops in counter.get_flop_counts().items():
        flops = float(sum(ops.values()))
        leaf = module.rsplit(".", 1)[-1]
        if leaf in _PROJECTIONS:
            totals["attention projections"] += flops
        elif leaf == "self_attn":  # everything under self_attn that is not a projection
            totals["attention operator"] += flops
        elif leaf == "mlp":
            totals["FFN"] += flops
        elif leaf == "lm_head":
            totals["output projection"] += flops
    totals["attention operator"] -= totals["attention projections"]
    totals["total"] = float(counter.get_total_flops())
    return totals


def analytic_flops_by_component(shape: Shape, context: int, new_tokens: int,
                                batch: int = 1) -> dict[str, float]:
    """Eq. 3 per component at `context`, for `new_tokens` tokens each attending to `context` keys."""
    out = {c.name: batch * new_tokens * c.flops for c in cost.components(shape, context) if c.flops}
    out["total"] = sum(out.values())
    return out


def measure_prefill_flops(model: torch.nn.Module, shape: Shape, tokens: int,
                          batch: int = 1) -> tuple[dict[str, float], dict[str, float]]:
    """(counted, analytic) FLOPs of prefilling `tokens` tokens from an empty cache."""
    ids = torch.randint(0, shape.vocab, (batch, tokens), generator=torch.Generator().manual_seed(0))
    return (counted_flops_by_component(model, ids.to(model.device)),
            analytic_flops_by_component(shape, tokens, tokens, batch))


def measure_decode_flops(model: torch.nn.Module, shape: Shape, context: int,
                         batch: int = 1) -> tuple[dict[str, float], dict[str, float]]:
    """(counted, analytic) FLOPs of one decode step whose new token makes the context `context`."""
    ids = torch.randint(0, shape.vocab, (batch, context), generator=torch.Generator().manual_seed(0))
    ids = ids.to(model.device)
    with torch.no_grad():
        cache = model(ids[:, :-1], use_cache=True).cache
    return (counted_flops_by_component(model, ids[:, -1:], cache=cache),
            analytic_flops_by_component(shape, context, 1, batch))


def cache_bytes(cache) -> int:
    """Bytes held by a transformers cache's key and value tensors."""
    return sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))


def measure_kv_cache_bytes(model: torch.nn.Module, tokens: int, batch: int = 1) -> int:
    """Bytes of the real KV cache after prefilling `tokens` tokens."""
    ids = torch.randint(0, model.config.vocab_size, (batch, tokens),
                        generator=torch.Generator().manual_seed(0)).to(model.device)
    with torch.no_grad():
        return cache_bytes(model(ids, use_cache=True).cache)


# --- Machine description, timing, memory -----------------------------------------------------------


CHECK_SHAPES = [  # (shape, KV-cache dtype): n_kv = 1, n_kv = n_h, d_h != d/n_h, several dtypes
    (Shape(2, 128, 8, 1, head_dim=32, vocab=500), "fp32"),
    (Shape(2, 96, 6, 6, head_dim=16, vocab=300), "fp32"),
    (Shape(3, 128, 6, 2, head_dim=40, vocab=400, tied=False), "bf16"),
    (Shape(2, 64, 4, 4, head_dim=64, vocab=200), "fp16"),
]


def check_cost_model(device: str = "cpu", tokens: int = 64, batch: int = 2,
                     shapes: list[tuple[Shape, str]] | None = None) -> list[dict]:
    """Measured vs analytic: FLOPs of a prefill and a decode step per component, and KV-cache bytes, for
    each (shape, KV dtype) of `shapes` (default CHECK_SHAPES).

    FLOPs are counted on the eager backend in fp32; the KV cache is measured in each shape's dtype.
    """
    from gqa.model import build_model

    rows = []
    for shape, dtype in shapes or CHECK_SHAPES:
        label = f"L={shape.layers} d={shape.d_model} H=({shape.n_heads},{shape.n_kv_heads}) d_h={shape.head_dim}"
        model = build_model(shape, attention_backend="eager", device=device).eval()
        for phase, (counted, analytic) in (
                ("prefill", measure_prefill_flops(model, shape, tokens, batch)),
                ("decode", measure_decode_flops(model, shape, tokens + 1, batch))):
            for component, value in analytic.items():
                rows.append({"shape": label, "quantity": f"FLOPs, {phase}, {component}",
                             "measured": counted[component], "analytic": value})
        model = model.to(TORCH_DTYPES[dtype])
        rows.append({"shape": label, "quantity": f"KV-cache bytes ({dtype})",
                     "measured": float(measure_kv_cache_bytes(model, tokens, batch)),
                     "analytic": cost.kv_cache_bytes(shape, tokens, batch, dtype)})
    for row in rows:
        row["equal"] = row["measured"] == row["analytic"]
    return rows
