"""The paper's cost model (Eq. 3-5, Table 2, Appendix C) and named extensions beyond it.

Paper-exact quantities are per token with T tokens of context:
  Eq. 3  C = 2N + 4·T·L·d_h·n_h                    FLOPs (counts, multiply-add = 2)
  Eq. 4  M = N + 2·T·L·d_h·n_kv                     memory in values (weights + KV cache)
  Eq. 5  Z = λ·M^α + (1 − λ)·C^β                    λ = 0.9, α = 1/2, β = 1/3
Which N goes into Eq. 3-4 is an explicit choice, `params="total"` (default) or `"non_embedding"`.
With `"total"` the time-invariant FLOPs are the Table 2 sum, 2·N_total for a tied embedding; an untied
input embedding is a lookup and costs no FLOPs. Anything else (a whole causal prefill, batches, a KV
dtype that differs from the weights) is a separate function or option whose default is the paper's.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

from gqa.shapes import Shape

ParamsConvention = Literal["total", "non_embedding"]
FlopsPer = Literal["token", "context"]

# Bytes per stored value. Figures in the paper use BF16 for weights and KV cache.
DTYPE_BYTES: dict[str, float] = {
    "fp32": 4, "float32": 4, "tf32": 4,
    "bf16": 2, "bfloat16": 2, "fp16": 2, "float16": 2,
    "fp8": 1, "int8": 1,
    "int4": 0.5, "fp4": 0.5,
}


def bytes_per_value(dtype: str) -> float:
    try:
        return DTYPE_BYTES[dtype.lower()]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; known: {', '.join(DTYPE_BYTES)}") from None


def _check_context(context: float) -> None:
    if not context >= 0:
        raise ValueError(f"context must be a non-negative number of tokens, got {context!r}")


# --- The paper's equations on plain numbers --------------------------------------------------------


def eq3_flops(n_params: float, layers: float, n_heads: int, head_dim: int, context: float) -> float:
    """Eq. 3: inference FLOPs per token at context T, 2N + 4·T·L·d_h·n_h."""
    return 2 * n_params + 4 * context * layers * head_dim * n_heads


def eq4_memory(n_params: float, layers: float, n_kv_heads: int, head_dim: int,
               context: float) -> float:
    """Eq. 4: inference memory in values, N + 2·T·L·d_h·n_kv (weights + K and V caches)."""
    return n_params + 2 * context * layers * head_dim * n_kv_heads


@dataclass(frozen=True)
class HardwareWeights:
    """Eq. 5's constants, chosen by the paper from A800 utilisation tests."""

    lam: float = 0.9
    alpha: float = 0.5
    beta: float = 1 / 3

    def __post_init__(self) -> None:
        for name, value in (("lambda", self.lam), ("alpha", self.alpha), ("beta", self.beta)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if not 0 <= self.lam <= 1:
            raise ValueError(f"lambda must lie in [0, 1], got {self.lam}")
        for name, value in (("alpha", self.alpha), ("beta", self.beta)):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")


def eq5_z(memory: float, flops: float, hw: HardwareWeights = HardwareWeights()) -> float:
    """Eq. 5: hardware-aware cost Z = λ·M^α + (1 − λ)·C^β (units as given; the paper's M is values)."""
    if not 0 <= hw.lam <= 1:
        raise ValueError(f"lambda must lie in [0, 1], got {hw.lam}")
    return hw.lam * memory**hw.alpha + (1 - hw.lam) * flops**hw.beta


# --- Per-shape cost ---------------------------------------------------------------------------------


def cost_params(shape: Shape, params: ParamsConvention = "total") -> tuple[int, int]:
    """(N stored in memory, N taking part in per-token matmuls) under a parameter convention."""
    counts = shape.params()
    if params == "total":
        lookup_only = 0 if shape.tied else counts.embedding  # untied input embedding: no FLOPs
        return counts.total, counts.total - lookup_only
    if params == "non_embedding":
        return counts.non_embedding, counts.non_embedding
    raise ValueError(f"params must be 'total' or 'non_embedding', got {params!r}")


@dataclass(frozen=True)
class InferenceCost:
    """Inference cost of one shape at one context length. FLOPs are counts, memory is in values."""

    context: int
    batch: int
    flops_time_invariant: float  # 2N (weights), per token
    flops_time_variant: float  # 4·T·L·d_h·n_h (attention operator), per token
    memory_weights: float  # N values
    memory_kv_cache: float  # 2·T·L·d_h·n_kv values per sequence, times batch
    weight_bytes: float  # bytes per weight value
    kv_bytes: float  # bytes per KV-cache value
    z: float
    flops_per: FlopsPer = "token"

    @property
    def flops(self) -> float:
        return self.flops_time_invariant + self.flops_time_variant

    @property
    def memory(self) -> float:
        return self.memory_weights + self.memory_kv_cache

    @property
    def bytes_weights(self) -> float:
        return self.memory_weights * self.weight_bytes

    @property
    def bytes_kv_cache(self) -> float:
        return self.memory_kv_cache * self.kv_bytes

    @property
    def bytes_total(self) -> float:
        return self.bytes_weights + self.bytes_kv_cache

    @property
    def kv_share_of_memory(self) -> float:
        """Share of memory bytes taken by the KV cache."""
        return self.bytes_kv_cache / self.bytes_total

    def to_dict(self) -> dict:
        return {**asdict(self), "flops": self.flops, "memory": self.memory,
                "bytes_weights": self.bytes_weights, "bytes_kv_cache": self.bytes_kv_cache,
                "bytes_total": self.bytes_total}


def inference_cost(
    shape: Shape,
    context: int,
    *,
    params: ParamsConvention = "total",
    dtype: str = "bf16",
    kv_dtype: str | None = None,
    batch: int = 1,
    flops_per: FlopsPer = "token",
    z_memory: Literal["values", "bytes"] = "values",
    hw: HardwareWeights = HardwareWeights(),
) -> InferenceCost:
    """Eq. 3-5 for `shape` at `context` tokens.

    Paper defaults: per token, batch 1, Z on memory in values. Extensions, each explicit:
    `kv_dtype` (defaults to `dtype`); `batch` B sequences share the weights, each with its own cache,
    and FLOPs become per decode step (B tokens); `flops_per="context"` charges every one of T tokens
    at the context-T rate (Eq. 3 × T, not a causal prefill; see `prefill_flops`); `z_memory="bytes"`.
    """
    _check_context(context)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    if flops_per not in ("token", "context"):
        raise ValueError(f"flops_per must be 'token' or 'context', got {flops_per!r}")
    if z_memory not in ("values", "bytes"):
        raise ValueError(f"z_memory must be 'values' or 'bytes', got {z_memory!r}")
    stored, matmul = cost_params(shape, params)
    w_bytes = bytes_per_value(dtype)
    kv_bytes = bytes_per_value(kv_dtype or dtype)

    tokens = batch * (context if flops_per == "context" else 1)
    flops_inv = tokens * eq3_flops(matmul, shape.layers, shape.n_heads, shape.head_dim, 0)
    flops_var = tokens * (eq3_flops(0, shape.layers, shape.n_heads, shape.head_dim, context))
    mem_w = float(stored)
    mem_kv = batch * eq4_memory(0, shape.layers, shape.n_kv_heads, shape.head_dim, context)

    memory_for_z = mem_w + mem_kv if z_memory == "values" else mem_w * w_bytes + mem_kv * kv_bytes
    return InferenceCost(
        context=context, batch=batch,
        flops_time_invariant=float(flops_inv), flops_time_variant=float(flops_var),
        memory_weights=mem_w, memory_kv_cache=float(mem_kv),
        weight_bytes=w_bytes, kv_bytes=kv_bytes,
        z=eq5_z(memory_for_z, flops_inv + flops_var, hw),
        flops_per=flops_per,
    )


@dataclass(frozen=True)
class Component:
    """One row of the paper's Table 2, extended with memory (values) at context T."""

    name: str
    params: int
    flops: float  # per token at context T
    memory: float  # values held in memory


def components(shape: Shape, context: int, *, params: ParamsConvention = "total",
               batch: int = 1) -> list[Component]:
    """Table 2 per component, with SwiGLU's three FFN matrices and the KV cache as a memory row.

    FLOPs (per token) sum to `inference_cost(shape, context, params=params, batch=batch).flops / batch`
    and memory to its `.memory`: under `params="non_embedding"` the embedding and output rows are zero,
    and the KV cache row holds `batch` sequences.
    """
    _check_context(context)
    if params not in ("total", "non_embedding"):
        raise ValueError(f"params must be 'total' or 'non_embedding', got {params!r}")
    c = shape.params()
    L, d_h = shape.layers, shape.head_dim
    embeddings = params == "total"
    output_flops = 2 * shape.d_model * shape.vocab if embeddings else 0  # runs whether tied or not
    embedding, output = (c.embedding, c.output) if embeddings else (0, 0)
    return [
        Component("input embedding", embedding, 0.0, float(embedding)),
        Component("attention projections", c.attention, 2.0 * c.attention, float(c.attention)),
        Component("attention operator", 0, 4.0 * L * context * shape.n_heads * d_h, 0.0),
        Component("FFN", c.ffn, 2.0 * c.ffn, float(c.ffn)),
        Component("output projection", output, float(output_flops), float(output)),
        Component("KV cache", 0, 0.0, 2.0 * batch * context * L * d_h * shape.n_kv_heads),
    ]


# --- Beyond the paper: named, separate functions ---------------------------------------------------


def kv_cache_values(shape: Shape, context: int, batch: int = 1) -> int:
    """Values in the K and V caches after `context` tokens: 2·B·T·L·n_kv·d_h."""
    _check_context(context)
    return 2 * batch * context * shape.layers * shape.n_kv_heads * shape.head_dim


def kv_cache_bytes(shape: Shape, context: int, batch: int = 1, dtype: str = "bf16") -> float:
    return kv_cache_values(shape, context, batch) * bytes_per_value(dtype)


def attention_flops(shape: Shape, tokens: int, *, causal: bool = True) -> float:
    """FLOPs of the attention operator (QKᵀ and AV) when prefilling `tokens` tokens from scratch.

    Causal: query i attends to i keys, 4·L·n_h·d_h·T(T+1)/2. Non-causal (the full T×T products, which is
    what a FLOP counter sees on a masked math kernel): 4·L·n_h·d_h·T².
    """
    _check_context(tokens)
    pairs = tokens * (tokens + 1) / 2 if causal else tokens * tokens
    return 4.0 * shape.layers * shape.n_heads * shape.head_dim * pairs


def prefill_flops(shape: Shape, tokens: int, *, causal: bool = True, batch: int = 1) -> float:
    """Forward FLOPs of prefilling `batch` sequences of `tokens` tokens (matmuls + attention)."""
    _, matmul = cost_params(shape, "total")
    return batch * (2.0 * matmul * tokens + attention_flops(shape, tokens, causal=causal))


def decode_step_flops(shape: Shape, context: int, batch: int = 1) -> float:
    """FLOPs of one decode step: each of `batch` new tokens attends to `context` cached tokens."""
    return inference_cost(shape, context, batch=batch).flops


def training_flops(shape: Shape, tokens: float, context: int,
                   params: ParamsConvention = "total") -> float:
    """Appendix C: C_train ≈ 6·D·(N + 2·L·T̄·d_h·n_h), T̄ = T/2 for fixed-length chunks of T tokens."""
    _check_context(context)
    _, matmul = cost_params(shape, params)
    mean_context = context / 2
    return 6.0 * tokens * (matmul + 2 * shape.layers * mean_context * shape.head_dim * shape.n_heads)


def training_memory(shape: Shape, context: int, params: ParamsConvention = "total") -> float:
    """Appendix C: M_train ≈ 4N + T·d·L values (weights, gradients, two Adam moments; activations)."""
    _check_context(context)
    stored, _ = cost_params(shape, params)
    return 4.0 * stored + context * shape.d_model * shape.layers


def component_shares(shape: Shape, contexts: list[int],
                     quantity: Literal["flops", "memory"]) -> dict[str, list[float]]:
    """Share of per-token FLOPs or of memory taken by each Table 2 component, at each context.

    Components with nothing to share (zero at every context) are left out; shares at one context sum to 1.
    """
    if quantity not in ("flops", "memory"):
        raise ValueError(f"quantity must be 'flops' or 'memory', got {quantity!r}")
    rows = [components(shape, t) for t in contexts]
    names = [c.name for c in rows[0]]
    shares: dict[str, list[float]] = {}
    for i, name in enumerate(names):
        series = [getattr(r[i], quantity) / sum(getattr(c, quantity) for c in r) for r in rows]
        if any(series):
            shares[name] = series
    return shares
