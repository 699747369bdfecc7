"""The paper's three-step search for the cost-optimal head configuration.

Step 1: candidate head configurations H = (n_h, n_kv), powers of two up to a maximum, n_kv <= n_h.
Step 2: a fitted loss law L(N; H) per candidate (gqa.scaling).
Step 3: for a target loss L* and context T: N*(H) = a / (L* − E)^(1/b); a continuous shape (L, d) with
        that many non-embedding parameters (aspect ratio interpolated between anchor shapes, Appendix
        B.1); inference FLOPs C, memory M and Z at T (Eq. 3-5); the H with the smallest Z wins.
How N and the costs are counted (which N enters Eq. 3-4, per token or per context, Z on values or
bytes) is a `CostSetting`; its defaults are the paper-exact per-token reading used everywhere in gqa.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from gqa import cost
from gqa.hardware import Hardware, decode_step_time
from gqa.scaling import Bootstrap, Heads, PowerLaw
from gqa.shapes import PAPER_HEAD_DIM, PAPER_VOCAB, Anchors, Shape, solve_layers
from gqa.units import json_safe

OBJECTIVES = ("z", "memory", "flops", "time")  # what Step 3 minimises: Eq. 5's Z, bytes, FLOPs, decode time


def candidate_heads(max_heads: int = 32) -> list[Heads]:
    """Step 1: n_h, n_kv in {1, 2, 4, ..., max_heads}, n_kv <= n_h (21 pairs for 32)."""
    if max_heads < 1 or max_heads & (max_heads - 1):
        raise ValueError(f"max_heads must be a power of two, got {max_heads}")
    powers = [2**i for i in range(int(math.log2(max_heads)) + 1)]
    return [(h, kv) for h in powers for kv in powers if kv <= h]


@dataclass(frozen=True)
class CostSetting:
    """How a fitted family turns into costs (the paper's per-token reading by default), and the regime it
    is served in (batch 1, one dtype, Eq. 5's constants, Z minimised by default)."""

    head_dim: int = PAPER_HEAD_DIM
    vocab: int = PAPER_VOCAB
    dtype: str = "bf16"  # the weights' dtype, and the KV cache's unless kv_dtype says otherwise
    params: cost.ParamsConvention = "total"  # N in Eq. 3-4: with the (tied) embedding, or without
    flops_per: cost.FlopsPer = "token"  # or "context": Eq. 3 x T
    z_memory: str = "values"  # Eq. 5 on memory in values or bytes
    hw: cost.HardwareWeights = field(default_factory=cost.HardwareWeights)
    anchors: Anchors | None = None  # aspect-ratio anchors; None: the paper's Table 9 and 7 shapes
    # (L, d) presets to snap a size to: when set, a size N is costed as the preset shape (with the
    # candidate's heads) whose non-embedding count is nearest N in log, instead of a continuous shape
    snap: tuple[tuple[int, int], ...] | None = None
    # The serving regime (beyond the paper, whose defaults these are):
    batch: int = 1  # B sequences decoded together: B KV caches, B tokens' FLOPs per step, one copy of weights
    kv_dtype: str | None = None  # the KV cache's dtype (None: dtype); in values a KV value counts its bytes'
    # share of a weight value's, so an fp8 cache beside bf16 weights weighs half per value
    objective: str = "z"  # what Step 3 minimises: z, memory (bytes), flops, or time (needs hardware)
    hardware: Hardware | None = None  # for the roofline decode time of a step

    def __post_init__(self) -> None:
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 1:
            raise ValueError(f"batch must be a positive integer, got {self.batch!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.objective == "time" and self.hardware is None:
            raise ValueError("the time objective needs a hardware (its bandwidth and peak FLOP rate)")
        for dtype in (self.dtype, self.kv_dtype or self.dtype):
            cost.bytes_per_value(dtype)
        if self.params not in ("total", "non_embedding"):
            raise ValueError(f"params must be 'total' or 'non_embedding', got {self.params!r}")
        if self.flops_per not in ("token", "context"):
            raise ValueError(f"flops_per must be 'token' or 'context', got {self.flops_per!r}")
        if self.z_memory not in ("values", "bytes"):
            raise ValueError(f"z_memory must be 'values' or 'bytes', got {self.z_memory!r}")

    def describe(self) -> str:
        """The regime in words, for reports: batch, dtypes, objective, Eq. 5's constants when not the paper's."""
        kv = self.kv_dtype or self.dtype
        parts = [f"batch {self.batch}", f"weights {self.dtype}, KV cache {kv}",
                 f"N {'with' if self.params == 'total' else 'without'} the embedding, FLOPs "
                 f"{'per token' if self.flops_per == 'token' else 'per sequence of T tokens'}, Z on memory in "
                 f"{self.z_memory}"]
        if self.z_memory == "values" and cost.bytes_per_value(kv) != cost.bytes_per_value(self.dtype):
            parts[-1] += f" (a {kv} KV value counted as its bytes' share of a {self.dtype} weight value)"
        if self.hw != cost.HardwareWeights():
            parts.append(f"λ = {self.hw.lam:g}, α = {self.hw.alpha:g}, β = {self.hw.beta:g}")
        goal = {"z": "minimising Z (Eq. 5)", "memory": "minimising memory bytes", "flops": "minimising FLOPs",
                "time": "minimising ideal decode time per step"}[self.objective]
        if self.hardware is not None:
            goal += f" on {self.hardware.name}"
        return ", ".join(parts) + "; " + goal


@dataclass(frozen=True)
class Candidate:
    """One head configuration sized to reach the target loss, and its cost at the context (all B sequences)."""

    heads: Heads
    params: float  # N*, non-embedding
    layers: float  # continuous L of the Appendix B.1 conversion
    d_model: float
    flops: float  # Eq. 3 as the setting counts it, times the batch
    memory: float  # values: N + B·2·T·L·d_h·n_kv
    memory_bytes: float
    z: float
    # how far N* lies outside the sizes its fit saw, as a factor (1: inside; nan: unknown or no fit)
    extrapolation: float = float("nan")
    kv_bytes: float = float("nan")  # bytes of the B KV caches
    time_s: float = float("nan")  # ideal decode step on the setting's hardware (nan: none given)
    memory_bound: bool | None = None  # whether that step is bound by reading memory (None: no hardware)
    step_bytes: float = float("nan")  # what that step reads: every weight (tied embedding once) and the B caches
    step_flops: float = float("nan")  # and computes: B tokens at Eq. 3's per-token FLOPs
    score: float = float("nan")  # the value of the setting's objective; Step 3 minimises it

    def to_dict(self) -> dict:
        return json_safe({**asdict(self), "heads": list(self.heads)})


def _costed(heads: Heads, n_params: float, n_total: float, layers: float, d_model: float, head_dim: int,
            context: int, setting: CostSetting, extrapolation: float = float("nan")) -> Candidate:
    """Eq. 3-5 for one model, counted as `setting` says (which N, per token or per sequence, Z on what),
    for its batch and dtypes, with the roofline decode time when the setting names hardware.

    The time counts what a decode step physically does whatever the accounting: it reads all weights
    (N with the tied embedding) and the B caches, and computes B tokens at Eq. 3's per-token FLOPs."""
    n_cost = n_total if setting.params == "total" else n_params
    batch = setting.batch
    per_token = cost.eq3_flops(n_cost, layers, heads[0], head_dim, context)
    flops = batch * per_token * (context if setting.flops_per == "context" else 1)
    kv_values = batch * cost.eq4_memory(0, layers, heads[1], head_dim, context)
    memory = n_cost + kv_values
    weight_bytes = cost.bytes_per_value(setting.dtype)
    kv_value_bytes = cost.bytes_per_value(setting.kv_dtype or setting.dtype)
    kv_bytes = kv_values * kv_value_bytes
    memory_bytes = n_cost * weight_bytes + kv_bytes
    z = cost.eq5_z(_z_memory(memory, memory_bytes, setting), flops, setting.hw)
    step_flops = batch * cost.eq3_flops(n_total, layers, heads[0], head_dim, context)
    read = n_total * weight_bytes + kv_bytes
    time_s, memory_bound = float("nan"), None
    if setting.hardware is not None:
        time_s = decode_step_time(read, step_flops, setting.hardware)
        memory_bound = read / setting.hardware.bandwidth >= step_flops / setting.hardware.peak_flops
    score = {"z": z, "memory": memory_bytes, "flops": flops, "time": time_s}[setting.objective]
    return Candidate(tuple(heads), n_params, layers, d_model, flops, memory, memory_bytes, z, extrapolation,
                     kv_bytes=kv_bytes, time_s=time_s, memory_bound=memory_bound, step_bytes=read,
                     step_flops=step_flops, score=score)


def _z_memory(memory: float, memory_bytes: float, setting: CostSetting) -> float:
    """The memory Eq. 5 sees: bytes, or values (a KV value in another dtype counted by its bytes' share of
    a weight value's; with one dtype, plain values)."""
    if setting.z_memory == "bytes":
        return memory_bytes
    if setting.kv_dtype is None or cost.bytes_per_value(setting.kv_dtype) == cost.bytes_per_value(setting.dtype):
        return memory
    return memory_bytes / cost.bytes_per_value(setting.dtype)


@functools.lru_cache(maxsize=256)
def _presets(heads: Heads, snap: tuple[tuple[int, int], ...], head_dim: int, vocab: int) -> tuple[list, list]:
    shapes = sorted((Shape(layers, d_model, *heads, head_dim=head_dim, vocab=vocab) for layers, d_model in snap),
                    key=lambda s: s.params().non_embedding)
    return [math.log(s.params().non_embedding) for s in shapes], shapes


def snapped_shape(heads: Heads, n_params: float, setting: CostSetting) -> Shape:
    """The preset of `setting.snap` (with heads H) whose non-embedding count is nearest n_params in log."""
    logs, shapes = _presets(tuple(heads), tuple(setting.snap), setting.head_dim, setting.vocab)
    i = bisect.bisect_left(logs, math.log(n_params))
    near = [j for j in (i - 1, i) if 0 <= j < len(shapes)]
    return shapes[min(near, key=lambda j: abs(logs[j] - math.log(n_params)))]


def cost_at(heads: Heads, n_params: float, context: int, setting: CostSetting = CostSetting(),
            extrapolation: float = float("nan")) -> Candidate:
    """Cost at context T of a model with n_params non-embedding parameters and heads H, its shape
    from the Appendix B.1 conversion (continuous L and d), or the nearest preset when the setting snaps
    (then `params` is the preset's count)."""
    if setting.snap:
        return cost_of_shape(snapped_shape(heads, n_params, setting), context, setting, extrapolation)
    layers, d_model = solve_layers(n_params, *heads, setting.head_dim, setting.anchors)
    total = n_params + setting.vocab * d_model  # tied embedding, counted once
    return _costed(heads, n_params, total, layers, d_model, setting.head_dim, context, setting, extrapolation)


def cost_of_shape(shape: Shape, context: int, setting: CostSetting = CostSetting(),
                  extrapolation: float = float("nan")) -> Candidate:
    """Cost at context T of an exact shape (no size-to-shape conversion), counted as `setting` says."""
    counts = shape.params()
    return _costed(shape.heads, counts.non_embedding, counts.total, shape.layers, shape.d_model, shape.head_dim,
                   context, setting, extrapolation)


def size_for_loss(law: PowerLaw, target: float) -> float | None:
    """N* for a target loss, or None when the target is not above the law's E (unreachable)."""
    try:
        return law.params_for_loss(target)
    except ValueError:
        return None


def losses_seen(fits: Mapping[Heads, PowerLaw]) -> tuple[float, float] | None:
    """The lowest and the highest loss any of the fits saw (None when none says)."""
    seen = [law.loss_range for law in fits.values() if law.loss_range is not None]
    return (min(r[0] for r in seen), max(r[1] for r in seen)) if seen else None


def check_target(fits: Mapping[Heads, PowerLaw], target: float) -> None:
    """A target loss a law family can be asked about: finite, above the lowest E, and not above every
    loss the fits saw (that would ask for models smaller than any trained). ValueError otherwise."""
    if not math.isfinite(target):
        raise ValueError(f"target loss must be a finite number, got {target}")
    lowest_e = min(law.e for law in fits.values())
    if target <= lowest_e:
        raise ValueError(f"target loss {target:g} is unreachable: every fit's irreducible loss E is at or above "
                         f"it (lowest E = {lowest_e:.4f})")
    seen = losses_seen(fits)
    if seen and target > seen[1]:
        raise ValueError(f"target loss {target:g} is above every loss the fits saw (highest {seen[1]:.4f}): "
                         "it asks for models smaller than any trained; choose a target inside the data")


def search(fits: Mapping[Heads, PowerLaw], target: float, context: int,
           setting: CostSetting = CostSetting(), *, max_extrapolation: float | None = None) -> list[Candidate]:
    """Step 3: every reachable candidate, cheapest first on the setting's objective (Z by default), each
    with how far N* extrapolates its fit.

    Candidates are exactly the fitted configurations. With `max_extrapolation`, candidates whose N* lies
    more than that factor outside the sizes their fit saw are dropped. ValueError if none is left."""
    if not math.isfinite(target):
        raise ValueError(f"target loss must be a finite number, got {target}")
    found, too_far = [], []
    for heads, law in fits.items():
        n_star = size_for_loss(law, target)
        if n_star is None:
            continue
        candidate = cost_at(heads, n_star, context, setting, law.extrapolation(n_star))
        if max_extrapolation is not None and math.isnan(candidate.extrapolation):
            raise ValueError(f"the fit of {heads} does not say which sizes it saw (no n_range), so "
                             "--max-extrapolation cannot be applied")
        if max_extrapolation is not None and not candidate.extrapolation <= max_extrapolation:
            too_far.append(candidate)
        else:
            found.append(candidate)
    if not found and too_far:
        least = min(too_far, key=lambda c: c.extrapolation)
        raise ValueError(f"every configuration that reaches loss {target:g} extrapolates its fit beyond "
                         f"{max_extrapolation:g}x (least: {least.heads} at {least.extrapolation:.1f}x)")
    if not found:
        lowest = min(law.e for law in fits.values())
        raise ValueError(f"target loss {target} is unreachable: every fit's irreducible loss E is above it "
                         f"(lowest E = {lowest:.4f})")
    return sorted(found, key=lambda c: c.score)


def grid(fits: Mapping[Heads, PowerLaw], targets: Iterable[float], contexts: Iterable[int],
         setting: CostSetting = CostSetting()) -> dict[tuple[float, int], Heads | None]:
    """The Table-4 analogue: the optimal H for every (target loss, context); None where unreachable."""
    out = {}
    for target in targets:
        for context in contexts:
            try:
                out[(target, context)] = search(fits, target, context, setting)[0].heads
            except ValueError:
                out[(target, context)] = None
    return out


def grid_pattern(cells: Mapping[tuple[float, int], Heads | None], targets: Sequence[float],
                 contexts: Sequence[int]) -> tuple[int, int]:
    """How many rows and columns of a Table-4 grid follow the paper's pattern: the optimum's n_h·n_kv
    never grows with the context (rows) and never shrinks as the target loss falls (columns).
    Targets are ordered from high to low loss, contexts from short to long; empty cells are skipped."""
    size = {k: (h[0] * h[1] if h else None) for k, h in cells.items()}

    def ordered(values, smaller_after: bool) -> bool:
        values = [v for v in values if v is not None]
        return all((b <= a) if smaller_after else (b >= a) for a, b in zip(values, values[1:]))

    rows = sum(ordered([size[(t, c)] for c in contexts], True) for t in targets)
    cols = sum(ordered([size[(t, c)] for t in targets], False) for c in contexts)
    return rows, cols


def params_for_score(heads: Heads, score: float, context: int, setting: CostSetting,
                     lo: float = 1e2, hi: float = 1e14) -> float:
    """The non-embedding size whose cost on the setting's objective (Z by default) at the context equals
    `score` (every objective grows with N: bisection)."""
    if cost_at(heads, lo, context, setting).score > score:
        raise ValueError(f"even a {lo:.0e}-parameter model with H = {heads} costs more than {score:.4g} "
                         f"({setting.objective})")
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        if cost_at(heads, mid, context, setting).score < score:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


@dataclass(frozen=True)
class Comparison:
    """The optimum against a baseline at the baseline's loss and context, on the setting's objective."""

    optimum: Candidate  # the cheapest configuration sized to reach the baseline's loss
    baseline: Candidate
    baseline_loss: float  # the loss both are compared at
    baseline_loss_assumed: bool  # True when nothing measured or fitted says the baseline reaches it
    objective: str  # what "cost" means below: z, memory, flops or time
    saving: float  # 1 − cost_opt / cost_base on the objective, same loss (negative: the baseline is cheaper)
    memory_saving: float  # 1 − M_opt / M_base (bytes), same loss
    flops_saving: float  # 1 − C_opt / C_base, same loss
    z_saving: float
    loss_at_equal_cost: float  # loss the optimal H reaches at the baseline's cost
    loss_gain: float  # baseline_loss − loss_at_equal_cost: positive means lower loss than the baseline
    params_at_equal_cost: float  # the optimum's non-embedding size at the baseline's cost
    equal_cost_extrapolation: float  # how far that size lies outside the optimum's fit (factor)

    def to_dict(self) -> dict:
        return json_safe({**{k: v for k, v in asdict(self).items() if k not in ("optimum", "baseline")},
                           "optimum": self.optimum.to_dict(), "baseline": self.baseline.to_dict()})


def _baseline_cost(fits: Mapping[Heads, PowerLaw], target: float, context: int, baseline: Heads | Shape,
                   setting: CostSetting) -> Candidate:
    """The baseline costed: an exact shape as it is, or a fitted H sized by its own fit to reach `target`."""
    if isinstance(baseline, Shape):
        return cost_of_shape(baseline, context, setting)
    if baseline not in fits:
        raise ValueError(f"no fit for the baseline H = {baseline}; fitted: {sorted(fits)}; "
                         "give the baseline as an exact shape instead")
    n_base = size_for_loss(fits[baseline], target)
    if n_base is None:
        raise ValueError(f"the baseline H = {baseline} cannot reach loss {target} (E = {fits[baseline].e:.4f})")
    return cost_at(baseline, n_base, context, setting, fits[baseline].extrapolation(n_base))


def compare(fits: Mapping[Heads, PowerLaw], target: float, context: int, baseline: Heads | Shape,
            setting: CostSetting = CostSetting(), *, baseline_loss: float | None = None,
            max_extrapolation: float | None = None, candidates: Mapping[Heads, PowerLaw] | None = None) -> Comparison:
    """Savings of the cost-optimal H over a baseline at the same loss, and its loss at equal cost (Z, or
    the setting's objective).

    The baseline is a head configuration, sized by its own fit to reach the target (its loss is the
    target), or an exact shape with `baseline_loss`, its known loss (a measured model, or a fit's
    prediction); without one its loss is assumed to be the target and the result says so. Both sides are
    compared at the baseline's loss: the optimum is searched at that loss, not at the target, among
    `candidates` (default: every fit; the baseline may be sized by a fit outside them).
    """
    candidates = fits if candidates is None else candidates
    assumed = isinstance(baseline, Shape) and baseline_loss is None
    loss = baseline_loss if isinstance(baseline, Shape) and not assumed else target
    base = _baseline_cost(fits, target, context, baseline, setting)
    optimum = search(candidates, loss, context, setting, max_extrapolation=max_extrapolation)[0]
    return comparison(optimum, base, loss, fits[optimum.heads], context, setting, assumed=assumed)


def comparison(optimum: Candidate, base: Candidate, loss: float, law: PowerLaw, context: int, setting: CostSetting,
               *, assumed: bool = False, params_equal_cost: float | None = None) -> Comparison:
    """The one comparison of an optimum with a baseline, both costed at `loss` and `context`: the savings
    (1 − optimum / baseline, on the objective, memory bytes, FLOPs and Z), and the loss the optimum's `law`
    reaches at the baseline's cost, at the size `params_equal_cost` (found by bisection when not given; a
    caller comparing many laws against one baseline finds it once, as every reading of the paper does).
    `compare` (gqa plan, gqa bench decode), Figure 1's headline and the readings are this comparison."""
    if params_equal_cost is None:
        params_equal_cost = params_for_score(optimum.heads, base.score, context, setting)
    loss_equal = float(law.predict(params_equal_cost))
    return Comparison(optimum, base, loss, assumed, setting.objective, 1 - optimum.score / base.score,
                      1 - optimum.memory_bytes / base.memory_bytes, 1 - optimum.flops / base.flops,
                      1 - optimum.z / base.z, loss_equal, loss - loss_equal, params_equal_cost,
                      law.extrapolation(params_equal_cost))


def saving_interval(boot: Bootstrap, target: float, context: int, baseline: Heads | Shape,
                    setting: CostSetting = CostSetting(), *, heads: Iterable[Heads] | None = None,
                    max_extrapolation: float | None = None, level: float = 0.95,
                    optima: Sequence[Candidate | None] | None = None) -> dict:
    """How sure the optimum's saving over a baseline is: over bootstrap resamples, the optimum (among
    `heads`) sized by the resampled laws to reach `target`, against the baseline (a fitted H sized by its
    resampled law, or an exact shape as it is). Returns the saving's central `level` interval, its median,
    the share of resamples in which the baseline is at least as cheap, and the count used (resamples in
    which either side cannot reach the target are left out). `optima`: `resampled_optima` at `target`."""
    if optima is None:
        optima = resampled_optima(boot, target, context, setting, heads=heads, max_extrapolation=max_extrapolation)
    fixed = cost_of_shape(baseline, context, setting) if isinstance(baseline, Shape) else None
    savings = []
    for i, best in enumerate(optima):
        if best is None:
            continue
        try:
            base = fixed or _baseline_cost(boot.laws(i), target, context, baseline, setting)
        except ValueError:
            continue
        savings.append(1 - best.score / base.score)
    if not savings:
        return {"low": None, "median": None, "high": None, "baseline_at_least_as_cheap": None, "resamples": 0}
    tail = (1 - level) / 2
    low, median, high = np.quantile(savings, [tail, 0.5, 1 - tail])
    return {"low": float(low), "median": float(median), "high": float(high),
            "baseline_at_least_as_cheap": float(np.mean(np.array(savings) <= 0)), "resamples": len(savings)}


def _resampled_laws(boot: Bootstrap, heads: Iterable[Heads] | None = None):
    """Each bootstrap resample's laws, in order, kept to `heads` (default: every fitted one)."""
    keep = None if heads is None else set(heads)
    for i in range(boot.resamples):
        laws = boot.laws(i)
        yield laws if keep is None else {h: law for h, law in laws.items() if h in keep}


def resampled_optima(boot: Bootstrap, target: float, context: int, setting: CostSetting = CostSetting(), *,
                     heads: Iterable[Heads] | None = None,
                     max_extrapolation: float | None = None) -> list[Candidate | None]:
    """The optimum of each bootstrap resample (None where nothing reaches the target), among `heads`
    (default: every fitted one) and under the same `max_extrapolation` as the search."""
    optima: list[Candidate | None] = []
    for laws in _resampled_laws(boot, heads):
        try:
            optima.append(search(laws, target, context, setting, max_extrapolation=max_extrapolation)[0])
        except ValueError:
            optima.append(None)
    return optima


def confidence(boot: Bootstrap, target: float, context: int, setting: CostSetting = CostSetting(), *,
               heads: Iterable[Heads] | None = None, max_extrapolation: float | None = None,
               optima: Sequence[Candidate | None] | None = None) -> dict:
    """Share of bootstrap resamples in which each H comes out optimal (None: unreachable in that resample), among
    `heads` (default: every fitted one) and under the same `max_extrapolation` as the search. `optima`:
    `resampled_optima`'s answer for the same question, when already computed."""
    if optima is None:
        optima = resampled_optima(boot, target, context, setting, heads=heads, max_extrapolation=max_extrapolation)
    counts: dict[Heads | None, int] = {}
    for best in optima:
        key = None if best is None else best.heads
        counts[key] = counts.get(key, 0) + 1
    return {k: v / len(optima) for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}


def heads_text(heads: Heads | None) -> str:
    """A head configuration as a JSON key: "8,1", or "unreachable" for None (a resample with no optimum)."""
    return "unreachable" if heads is None else f"{heads[0]},{heads[1]}"


def brute_force(fits: Mapping[Heads, PowerLaw], target: float, context: int,
                setting: CostSetting = CostSetting(), points: int = 4000) -> Heads:
    """The cheapest H by scanning a fine grid of sizes for each H and keeping those that reach the
    target (an independent check of Step 3's closed-form inverse)."""
    best, best_z = None, math.inf
    for heads, law in fits.items():
        for i in range(points):
            n = 10 ** (2 + 12 * i / (points - 1))
            if law.predict(n) <= target:
                z = cost_at(heads, n, context, setting).score
                if z < best_z:
                    best, best_z = heads, z
                break  # Z grows with N: the smallest size that reaches the target is the cheapest
    if best is None:
        raise ValueError("no H reaches the target on the grid")
    return best


# --- Why a grid does or does not follow the paper's pattern ---------------------------------------


def cost_parts(c: Candidate, context: int, setting: CostSetting = CostSetting()) -> dict[str, float]:
    """A costed model split as Figure 1 splits it: memory bytes into weights (time-invariant) and KV cache
    (time-variant), FLOPs into the weights' (time-invariant) and the attention operator's 4·T·L·d_h·n_h
    (time-variant, times T when the setting counts FLOPs per sequence)."""
    per = setting.batch * (context if setting.flops_per == "context" else 1)
    attention = 4 * context * c.layers * setting.head_dim * c.heads[0] * per
    weights = c.memory_bytes * (1 - kv_share(c, context, setting))
    return {"memory_bytes": c.memory_bytes, "weights_bytes": weights, "kv_bytes": c.memory_bytes - weights,
            "flops": c.flops, "flops_invariant": c.flops - attention, "flops_variant": attention}


def z_shares(candidate: Candidate, setting: CostSetting = CostSetting()) -> dict[str, float]:
    """The shares of Z (Eq. 5) carried by its memory term λ·M^α and its FLOPs term (1 − λ)·C^β, in the
    units the setting counts in (memory in values or bytes, FLOPs per token or per sequence). As Eq. 3-5
    are written the FLOPs term is a small part of Z; counted as Figure 2 counts, a larger one."""
    memory = _z_memory(candidate.memory, candidate.memory_bytes, setting)
    hw = setting.hw
    terms = {"memory": hw.lam * memory**hw.alpha, "flops": (1 - hw.lam) * candidate.flops**hw.beta}
    return {k: v / candidate.z for k, v in terms.items()}


def kv_share(candidate: Candidate, context: int, setting: CostSetting = CostSetting()) -> float:
    """Share of a costed model's memory bytes that is KV cache (with one dtype and batch 1, Eq. 4's
    2·T·L·d_h·n_kv over M)."""
    return candidate.kv_bytes / candidate.memory_bytes


def balance_size(heads: Heads, context: int, setting: CostSetting = CostSetting(),
                 lo: float = 1e2, hi: float = 1e14) -> float:
    """The non-embedding size at which a model's weights and its KV cache at context T weigh the same in
    memory (KV share 1/2). Below it the KV cache dominates; the KV share falls as N grows (bisection).
    Returns `lo` when even that size is weight-bound."""
    if kv_share(cost_at(heads, lo, context, setting), context, setting) <= 0.5:
        return lo
    if kv_share(cost_at(heads, hi, context, setting), context, setting) > 0.5:
        raise ValueError(f"even a {hi:.0e}-parameter model with H = {heads} is KV-bound at T = {context}")
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        if kv_share(cost_at(heads, mid, context, setting), context, setting) > 0.5:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


def _balance(c: Candidate) -> float:
    """The T at which a model costed at T = 1 has as many bytes of KV cache (all B sequences) as of
    weights (Eq. 4: the weights are M(1) less one token's cache, the cache grows by that per token; the
    shape does not depend on T)."""
    return (c.memory_bytes - c.kv_bytes) / c.kv_bytes


def balance_context_of_shape(shape: Shape, setting: CostSetting = CostSetting()) -> float:
    """`balance_context` of an exact shape: the T at which its KV cache weighs as much as its weights."""
    return _balance(cost_of_shape(shape, 1, setting))


def balance_context(heads: Heads, n_params: float, setting: CostSetting = CostSetting()) -> float:
    """The context T at which a model of n_params non-embedding parameters has as much KV cache as weights
    (Eq. 4: N_mem = 2·T·L·d_h·n_kv, so T = N_mem / (2·L·d_h·n_kv); the shape does not depend on T)."""
    return _balance(cost_at(heads, n_params, 1, setting))




@dataclass(frozen=True)
class PatternDiagnosis:
    """Why a Table-4 grid of fits does or does not follow the paper's pattern (fewer heads as T grows, more
    as the target falls). The pattern is a trade between weights and KV cache, so it can only show at
    contexts where the two weigh alike for the sizes in question. Sizes are non-embedding parameters,
    contexts in tokens."""

    min_kv_share: float  # the smallest KV share of the optimum's memory over the grid's cells
    kv_heads: tuple[int, ...]  # the n_kv of the optima
    heads: Heads  # the optimum with the fewest heads, used for the balance
    size_range: tuple[float, float]  # the smallest and largest size the fits saw
    balance_contexts: tuple[float, float]  # T at which the smallest and the largest size balance
    balance_size_at_shortest: float  # the size that balances at the grid's shortest context
    short_contexts: tuple[int, ...]  # powers of two across balance_contexts, as many as the grid has
    short_rows: int  # rows / columns of the grid at those contexts that follow the pattern
    short_cols: int


def diagnose_pattern(fits: Mapping[Heads, PowerLaw], targets: Sequence[float], contexts: Sequence[int],
                     setting: CostSetting = CostSetting()) -> PatternDiagnosis:
    """KV shares of the grid's optima, the contexts at which the sizes the fits saw balance weights and KV
    cache, and the same grid recomputed at those contexts."""
    cells = [(t, c) for t in targets for c in contexts if any(law.e < t for law in fits.values())]
    if not cells:
        raise ValueError("no cell of the grid is reachable")
    optima = [(search(fits, t, c, setting)[0], c) for t, c in cells]
    shares = [kv_share(o, c, setting) for o, c in optima]
    heads = min((o.heads for o, _ in optima), key=lambda h: (h[1], h[0]))
    seen = [law.n_range for law in fits.values() if law.n_range]
    if not seen:
        raise ValueError("the fits do not say which sizes they saw (no n_range)")
    low, high = min(r[0] for r in seen), max(r[1] for r in seen)
    t_low, t_high = balance_context(heads, low, setting), balance_context(heads, high, setting)
    exponents = np.linspace(math.log2(max(t_low, 1.0)), math.log2(max(t_high, 2.0)), len(contexts))
    short = tuple(sorted({2 ** int(round(e)) for e in exponents}))
    rows, cols = grid_pattern(grid(fits, targets, short, setting), targets, short)
    return PatternDiagnosis(min(shares), tuple(sorted({o.heads[1] for o, _ in optima})), heads, (low, high),
                            (t_low, t_high), balance_size(heads, min(contexts), setting), short, rows, cols)


def fitted_curves(fits: Mapping[Heads, PowerLaw], boot: Bootstrap, context: int, setting: CostSetting,
                  span, points: int = 40) -> tuple[dict, dict]:
    """What a Figure-2-style plot draws for each configuration: along sizes from span(H, law) = (lo, hi),
    costed at the context, {quantity: {H: (cost, fitted loss, 95% band low, high)}} for quantity in
    memory_bytes, flops and z, and {H: bool array}, True where the size lies inside the sizes the fit saw."""
    curves: dict = {q: {} for q in ("memory_bytes", "flops", "z")}
    inside = {}
    for heads, law in fits.items():
        sizes = np.geomspace(*span(heads, law), points)
        inside[heads] = np.array([law.extrapolation(n) <= 1 for n in sizes])
        lo, hi = boot.predict_interval(heads, sizes)
        costed = [cost_at(heads, n, context, setting) for n in sizes]
        for q in curves:
            curves[q][heads] = (np.array([getattr(c, q) for c in costed]), law.predict(sizes), lo, hi)
    return curves, inside


def grid_shares(boot: Bootstrap, cells: Iterable[tuple[float, int]], setting: CostSetting = CostSetting(), *,
                heads: Iterable[Heads] | None = None) -> dict[tuple[float, int], dict[Heads | None, float]]:
    """For each (target loss, context) cell, the share of bootstrap resamples in which each H is optimal
    (None: unreachable in that resample), each resample's laws drawn once for the whole grid."""
    cells = list(dict.fromkeys(cells))  # a cell asked twice is counted once
    counts: dict = {cell: {} for cell in cells}
    for laws in _resampled_laws(boot, heads):
        for cell in cells:
            try:
                best = search(laws, cell[0], cell[1], setting)[0].heads
            except ValueError:
                best = None
            counts[cell][best] = counts[cell].get(best, 0) + 1
    return {cell: {h: n / boot.resamples for h, n in tally.items()} for cell, tally in counts.items()}


def grid_confidence(boot: Bootstrap, cells: Mapping[tuple[float, int], Heads | None], setting: CostSetting,
                    fits: Mapping[Heads, PowerLaw]) -> tuple[dict, set]:
    """For a Table-4 grid: the share of bootstrap resamples whose optimum is the cell's, and the cells whose
    optimum extrapolates its fit (N* outside the sizes it saw)."""
    reachable = [cell for cell, heads in cells.items() if heads is not None]
    shares = grid_shares(boot, reachable, setting, heads=list(fits))
    confidence = {cell: shares[cell].get(cells[cell], 0.0) for cell in reachable}
    extrapolated = {cell for cell in reachable if search(fits, cell[0], cell[1], setting)[0].extrapolation > 1}
    return confidence, extrapolated
