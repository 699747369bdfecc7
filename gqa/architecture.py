"""Any decoder's inference cost: layers that differ, sliding windows, mixtures of experts, latent caches.

The paper's `Shape` is one Llama-style layer repeated L times. Released models depart from it in ways
that change the cost, and `Architecture` describes each departure by what it does to the three things
the cost model counts:

  parameters   total (held in memory) and active (taking part in one token's matmuls): every expert of
               a mixture is held, `experts_per_token` of them (and any shared expert) run per token
  KV cache     per layer, the values one token adds to the cache (K and V of every KV head, or MLA's
               compressed latent) and how many tokens the layer keeps: all of them, or the last
               `window` for a sliding-window layer (what a serving engine allocates)
  attention    per layer and cached token, the multiply-adds of the scores and of the weighted values,
               2·n_h·(score_dim + value_dim) FLOPs

Conventions are those of `gqa.cost` (FLOPs are counts with a multiply-add = 2, memory in values):
per token at context T, C = 2·N_active(matmul) + Σ_l 2·n_h·(score_dim + value_dim)·min(T, window_l) and
M = N_total + Σ_l cache_values_l·min(T, window_l). For a `Shape` (`Architecture.from_shape`) these are
Eq. 3 and Eq. 4 exactly. Norm gains are kept apart (`norms`), as in the paper's Table 2; a mixture's
router is a matmul and is counted. Time-invariant FLOPs leave out an untied input embedding (a lookup).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gqa.shapes import Shape


@dataclass(frozen=True)
class LayerAttention:
    """The attention of one layer, as the cost model sees it."""

    n_heads: int  # query heads
    cache_values: int  # values one token adds to this layer's cache (2·n_kv·d_h for GQA)
    score_dim: int  # per query head and cached token: the length of the q·k dot product
    value_dim: int  # per query head and cached token: the length of the value vector
    window: int | None = None  # a sliding-window layer keeps the last `window` tokens; None: all

    def __post_init__(self) -> None:
        for name in ("n_heads", "cache_values", "score_dim", "value_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive whole number, got {value!r}")
        if self.window is not None and (isinstance(self.window, bool) or not isinstance(self.window, int)
                                        or self.window < 1):
            raise ValueError(f"window must be a positive whole number of tokens or None, got {self.window!r}")

    def cached_tokens(self, context: float) -> float:
        """Tokens this layer holds after `context` tokens."""
        return context if self.window is None else min(context, self.window)

    def operator_flops(self, context: float) -> float:
        """FLOPs of the attention operator for one new token with `context` tokens before it."""
        return 2.0 * self.n_heads * (self.score_dim + self.value_dim) * self.cached_tokens(context)


@dataclass(frozen=True)
class Experts:
    """A mixture of experts: how many there are and how many run per token (shared experts apart)."""

    routed: int  # experts per MoE layer
    per_token: int  # routed experts each token runs
    moe_layers: int  # layers whose FFN is a mixture
    shared: int = 0  # experts every token runs as well (DeepSeek, Qwen2-MoE)


@dataclass(frozen=True)
class Architecture:
    """A decoder's parameter counts by component and its per-layer attention (see the module doc)."""

    name: str
    family: str
    d_model: int
    vocab: int
    tied: bool
    layers: tuple[LayerAttention, ...]
    attention: int  # attention projections of every layer (biases included)
    ffn: int  # FFNs of every layer, every expert included
    ffn_active: int  # the FFN parameters one token runs (routed experts it picks, shared experts)
    router: int = 0  # mixtures' routers (and Qwen2-MoE's shared-expert gate)
    norms: int = 0  # every norm gain (layer, final, query/key and latent norms)
    experts: Experts | None = None
    max_position: int | None = None  # the longest context the model was built for, if the config says
    alternative_cache: tuple[str, tuple[LayerAttention, ...]] | None = None  # a named other cache layout
    notes: tuple[str, ...] = field(default=())  # what the description simplifies, said in reports

    @classmethod
    def from_shape(cls, shape: Shape) -> Architecture:
        """The paper's Shape: L identical layers, no window, no experts."""
        counts = shape.params()
        layer = LayerAttention(shape.n_heads, 2 * shape.n_kv_heads * shape.head_dim, shape.head_dim, shape.head_dim)
        return cls(name=shape.name, family="llama", d_model=shape.d_model, vocab=shape.vocab, tied=shape.tied,
                   layers=(layer,) * shape.layers, attention=counts.attention, ffn=counts.ffn,
                   ffn_active=counts.ffn, norms=counts.norms)

    # --- parameters ---------------------------------------------------------------------------------
    @property
    def embedding(self) -> int:
        return self.d_model * self.vocab

    @property
    def output(self) -> int:
        return 0 if self.tied else self.d_model * self.vocab

    @property
    def non_embedding(self) -> int:
        return self.attention + self.ffn + self.router

    @property
    def total(self) -> int:
        """Every weight matrix held, a tied embedding counted once, norms apart (Table 2's sum)."""
        return self.embedding + self.output + self.non_embedding

    @property
    def active(self) -> int:
        """The weights one token uses: total less the experts it does not run."""
        return self.total - (self.ffn - self.ffn_active)

    @property
    def numel(self) -> int:
        """Every value a built model holds (total + norms)."""
        return self.total + self.norms

    def matmul_params(self, params: str = "total") -> int:
        """The parameters one token multiplies by: active ones, less an untied input embedding (a lookup);
        under `params="non_embedding"` neither embedding nor output projection."""
        if params == "non_embedding":
            return self.active - self.embedding - self.output
        if params != "total":
            raise ValueError(f"params must be 'total' or 'non_embedding', got {params!r}")
        return self.active - (0 if self.tied else self.embedding)

    def stored_params(self, params: str = "total") -> int:
        if params == "non_embedding":
            return self.non_embedding
        if params != "total":
            raise ValueError(f"params must be 'total' or 'non_embedding', got {params!r}")
        return self.total

    # --- per-token cost at a context -------------------------------------------------------------------
    def kv_values(self, context: float, batch: int = 1, *, cache: str = "default") -> float:
        """Values in the caches of `batch` sequences after `context` tokens."""
        return batch * sum(layer.cache_values * layer.cached_tokens(context) for layer in self.cache_layers(cache))

    def operator_flops(self, context: float, *, cache: str = "default") -> float:
        """Attention-operator FLOPs of one new token at `context` (Eq. 3's 4·T·L·d_h·n_h for a Shape)."""
        return sum(layer.operator_flops(context) for layer in self.cache_layers(cache))

    def cache_layers(self, cache: str = "default") -> tuple[LayerAttention, ...]:
        if cache == "default":
            return self.layers
        if self.alternative_cache and cache == self.alternative_cache[0]:
            return self.alternative_cache[1]
        known = ["default"] + ([self.alternative_cache[0]] if self.alternative_cache else [])
        raise ValueError(f"cache {cache!r} is not one of {self.name or self.family}'s caches: {', '.join(known)}")

    @property
    def windows(self) -> tuple[int | None, ...]:
        return tuple(layer.window for layer in self.layers)

    def describe(self) -> str:
        """One line: the family, layers, width, heads, windows, experts, parameters."""
        first = self.layers[0]
        windows = sorted({w for w in self.windows if w is not None})
        parts = [f"{self.family}", f"L={len(self.layers)}", f"d={self.d_model}", f"n_h={first.n_heads}",
                 f"V={self.vocab}", "tied" if self.tied else "untied"]
        if windows:
            sliding = sum(w is not None for w in self.windows)
            parts.append(f"{sliding} of {len(self.layers)} layers slide over {'/'.join(map(str, windows))} tokens")
        if self.experts:
            e = self.experts
            parts.append(f"{e.routed} experts, {e.per_token} per token"
                         + (f" + {e.shared} shared" if e.shared else "") + f" in {e.moe_layers} layers")
        return ", ".join(parts)


# --- The cost model on an Architecture (gqa.cost's functions, for any decoder) -----------------------


def inference_cost(arch: Architecture, context: int, *, params: str = "total", dtype: str = "bf16",
                   kv_dtype: str | None = None, batch: int = 1, hw=None, cache: str = "default"):
    """Eq. 3-5 of `arch` at `context` (a `gqa.cost.InferenceCost`, per token, `batch` sequences' caches);
    for `Architecture.from_shape(s)` it equals `gqa.cost.inference_cost(s, ...)`."""
    from gqa import cost

    cost._check_context(context)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    hw = hw or cost.HardwareWeights()
    flops_inv = float(batch * 2 * arch.matmul_params(params))
    flops_var = float(batch * arch.operator_flops(context, cache=cache))
    mem_w = float(arch.stored_params(params))
    mem_kv = float(arch.kv_values(context, batch, cache=cache))
    return cost.InferenceCost(context=context, batch=batch, flops_time_invariant=flops_inv,
                              flops_time_variant=flops_var, memory_weights=mem_w, memory_kv_cache=mem_kv,
                              weight_bytes=cost.bytes_per_value(dtype),
                              kv_bytes=cost.bytes_per_value(kv_dtype or dtype),
                              z=cost.eq5_z(mem_w + mem_kv, flops_inv + flops_var, hw))


def components(arch: Architecture, context: int, *, params: str = "total", batch: int = 1,
               cache: str = "default") -> list:
    """Table 2's rows for `arch` (FLOPs per token, memory in values): a mixture's FFN row holds every expert
    and computes with the active ones; its router is a row of its own."""
    from gqa.cost import Component

    embeddings = params == "total"
    embedding, output = (arch.embedding, arch.output) if embeddings else (0, 0)
    output_flops = 2 * arch.d_model * arch.vocab if embeddings else 0  # runs whether tied or not
    rows = [Component("input embedding", embedding, 0.0, float(embedding)),
            Component("attention projections", arch.attention, 2.0 * arch.attention, float(arch.attention)),
            Component("attention operator", 0, float(arch.operator_flops(context, cache=cache)), 0.0),
            Component("FFN" if arch.experts is None else "FFN (all experts)", arch.ffn,
                      2.0 * arch.ffn_active, float(arch.ffn))]
    if arch.router:
        rows.append(Component("router", arch.router, 2.0 * arch.router, float(arch.router)))
    return rows + [Component("output projection", output, float(output_flops), float(output)),
                   Component("KV cache", 0, 0.0, float(arch.kv_values(context, batch, cache=cache)))]


def prefill_attention_flops(arch: Architecture, tokens: int, *, cache: str = "default") -> float:
    """Attention-operator FLOPs of prefilling `tokens` tokens causally: query i sees min(i, window) keys."""
    total = 0.0
    for layer in arch.cache_layers(cache):
        w = tokens if layer.window is None else min(tokens, layer.window)
        pairs = w * (w + 1) / 2 + (tokens - w) * w
        total += 2.0 * layer.n_heads * (layer.score_dim + layer.value_dim) * pairs
    return total


def experts_read(arch: Architecture, tokens: int) -> float:
    """Expected routed experts per MoE layer that `tokens` tokens touch, with uniform routing:
    E·(1 − (1 − k/E)^tokens) (k for one token, every expert for many)."""
    if arch.experts is None:
        return 0.0
    e = arch.experts
    return e.routed * (1 - (1 - e.per_token / e.routed) ** tokens)


def weights_read(arch: Architecture, tokens: int) -> float:
    """Weight values a forward pass over `tokens` tokens reads: every matrix but an untied input embedding
    (looked up, a row per token), and of a mixture's routed experts only those the tokens touch."""
    held = float(arch.total - (0 if arch.tied else arch.embedding))
    e = arch.experts
    if e is None or e.routed == e.per_token:
        return held
    # ffn − ffn_active = (routed − per_token)·(one expert's parameters over every MoE layer)
    per_expert = (arch.ffn - arch.ffn_active) / (e.routed - e.per_token)
    return held - (e.routed - experts_read(arch, tokens)) * per_expert


@dataclass(frozen=True)
class Roofline:
    """The ideal time of one phase on one accelerator: the longer of moving its bytes and doing its FLOPs."""

    phase: str  # "decode" (one step of `batch` new tokens) or "prefill" (`batch` prompts of `tokens`)
    tokens: int  # tokens the phase produces or reads in (batch for decode, batch·T for prefill)
    bytes: float
    flops: float
    seconds: float  # ideal, at the hardware's peaks
    bound: str  # "memory" or "compute"
    efficiency: float = 1.0  # the share of the peaks real kernels reach (given by the user)

    @property
    def seconds_at_efficiency(self) -> float:
        return self.seconds / self.efficiency

    @property
    def tokens_per_s(self) -> float:
        """Tokens per second at the efficiency, across the batch."""
        return self.tokens / self.seconds_at_efficiency

    @property
    def seconds_per_token(self) -> float:
        """Seconds per token at the efficiency (the phase's time over its tokens)."""
        return self.seconds_at_efficiency / self.tokens


def _roofline(phase: str, tokens: int, bytes_moved: float, flops: float, device, efficiency: float) -> Roofline:
    from gqa.hardware import decode_step_time

    if not 0 < efficiency <= 1:
        raise ValueError(f"efficiency must lie in (0, 1], got {efficiency!r}")
    seconds = decode_step_time(bytes_moved, flops, device)  # the roofline, whichever phase
    bound = "memory" if bytes_moved / device.bandwidth >= flops / device.peak_flops else "compute"
    return Roofline(phase, tokens, bytes_moved, flops, seconds, bound, efficiency)


def decode_roofline(arch: Architecture, context: int, device, *, batch: int = 1, dtype: str = "bf16",
                    kv_dtype: str | None = None, efficiency: float = 1.0, cache: str = "default") -> Roofline:
    """One decode step of `batch` sequences at `context`: reads the weights the step uses and every cache,
    computes `batch` tokens' FLOPs (Eq. 3 with active parameters)."""
    c = inference_cost(arch, context, dtype=dtype, kv_dtype=kv_dtype, batch=batch, cache=cache)
    read = weights_read(arch, batch) * c.weight_bytes + c.bytes_kv_cache
    return _roofline("decode", batch, read, c.flops_time_invariant + c.flops_time_variant, device, efficiency)


def prefill_roofline(arch: Architecture, tokens: int, device, *, batch: int = 1, dtype: str = "bf16",
                     kv_dtype: str | None = None, efficiency: float = 1.0, cache: str = "default") -> Roofline:
    """Prefilling `batch` prompts of `tokens` tokens: reads the weights once (every expert a long prompt
    touches) and writes the caches, computes 2·N_active per token plus the causal attention. The attention
    is computed in the cheapest form the model has: an MLA model prefills with per-head K and V (the
    `expanded` form, as serving engines do) and stores its latent; it decodes over the latent."""
    from gqa.cost import bytes_per_value

    moved = (weights_read(arch, batch * tokens) * bytes_per_value(dtype)
             + arch.kv_values(tokens, batch, cache=cache) * bytes_per_value(kv_dtype or dtype))
    forms = [cache] + ([arch.alternative_cache[0]] if arch.alternative_cache else [])
    attention = min(prefill_attention_flops(arch, tokens, cache=form) for form in forms)
    flops = batch * (2.0 * arch.matmul_params() * tokens + attention)
    return _roofline("prefill", batch * tokens, moved, flops, device, efficiency)


def memory_bytes(arch: Architecture, context: int, batch: int = 1, *, dtype: str = "bf16",
                 kv_dtype: str | None = None, cache: str = "default") -> float:
    """Weights (every expert) and `batch` caches at `context`, in bytes."""
    from gqa.cost import bytes_per_value

    return (arch.total * bytes_per_value(dtype)
            + arch.kv_values(context, batch, cache=cache) * bytes_per_value(kv_dtype or dtype))


def max_batch(arch: Architecture, context: int, memory: float, **kw) -> int:
    """The most sequences of `context` tokens whose caches fit beside the weights in `memory` bytes."""
    room = memory - memory_bytes(arch, 0, 1, **kw)
    per_sequence = memory_bytes(arch, context, 1, **kw) - memory_bytes(arch, 0, 1, **kw)
    if room < 0:
        return 0
    return int(room // per_sequence) if per_sequence > 0 else -1  # -1: no cache, no limit


def max_context(arch: Architecture, memory: float, batch: int = 1, **kw) -> int | None:
    """The longest context whose weights and `batch` caches fit in `memory` bytes: 0 if the weights alone do
    not, None if every context does (every layer slides, so the cache stops growing)."""
    if memory_bytes(arch, 0, batch, **kw) > memory:
        return 0
    plateau = max((layer.window for layer in arch.layers), default=None, key=lambda w: -1 if w is None else w)
    if all(layer.window is not None for layer in arch.layers) and memory_bytes(arch, plateau, batch, **kw) <= memory:
        return None
    low, high = 0, 1
    while memory_bytes(arch, high, batch, **kw) <= memory:
        low, high = high, high * 2
    while high - low > 1:  # memory grows with the context: bisect to the last context that fits
        mid = (low + high) // 2
        low, high = (mid, high) if memory_bytes(arch, mid, batch, **kw) <= memory else (low, mid)
    return low
