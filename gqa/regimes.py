"""How Step 3's answer moves with the regime a model is served in: batch, KV-cache dtype and objective.

The paper answers at batch 1 with a BF16 cache and Eq. 5's Z. Served models decode 16 to 256 sequences
at once, often with an FP8 cache, and are judged by their time per step. Each regime is a `CostSetting`;
`grids` recomputes a Table-4 grid under each, and `summary` says in numbers what moved: how many KV heads
the optima keep, and how many of the paper's cells they still agree with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from gqa import hardware, search
from gqa.scaling import PowerLaw
from gqa.search import CostSetting, Heads

Cells = dict[tuple[float, int], Heads | None]


@dataclass(frozen=True)
class Variant:
    """One row of the small multiples: a label and the setting fields it changes."""

    label: str
    changes: tuple[tuple[str, object], ...]


def variants(hardware_name: str = "h100") -> list[Variant]:
    """The three ways of costing a decode that the book compares: Z with a BF16 cache (the paper's), Z with
    an FP8 cache, and the ideal decode time per step on one accelerator with a BF16 cache."""
    device = hardware.preset(hardware_name)
    return [Variant("Z, bf16 cache", ()), Variant("Z, fp8 cache", (("kv_dtype", "fp8"),)),
            Variant(f"decode time, {device.name}", (("objective", "time"), ("hardware", device)))]


def settings(base: CostSetting, batches: Sequence[int], rows: Sequence[Variant]) -> dict[tuple[str, int], CostSetting]:
    """{(variant label, batch): setting} for every variant at every batch, on top of `base`."""
    return {(v.label, b): replace(base, batch=b, **dict(v.changes)) for v in rows for b in batches}


@dataclass(frozen=True)
class Grid:
    """One regime's Table-4 grid: the optimum per cell (None: unreachable), the cells whose optimum lies
    outside the sizes its fit saw, and those whose ideal decode step is bound by reading memory (only when
    the setting names hardware)."""

    cells: Cells
    extrapolated: frozenset
    memory_bound: frozenset
    optima: dict = field(default_factory=dict)  # {cell: search.Candidate}, the optimum of each reachable cell

    def too_big(self, memory: float) -> frozenset:
        """Cells whose optimum holds more than `memory` bytes (all weights with the embedding, and the B
        caches): they do not fit on one accelerator of that memory."""
        return frozenset(k for k, c in self.optima.items() if c.step_bytes > memory)

    def intensity(self) -> float:
        """The most FLOPs per byte read of any cell's optimal decode step (0 with no cell)."""
        return max((c.step_flops / c.step_bytes for c in self.optima.values()), default=0.0)


def grid(fits: Mapping[Heads, PowerLaw], targets: Sequence[float], contexts: Sequence[int],
         setting: CostSetting) -> Grid:
    """Step 3 in every cell of a grid under one setting."""
    cells, far, bound, optima = {}, set(), set(), {}
    for target in targets:
        for context in contexts:
            try:
                best = search.search(fits, target, context, setting)[0]
            except ValueError:
                cells[(target, context)] = None
                continue
            cells[(target, context)] = best.heads
            optima[(target, context)] = best
            if best.extrapolation > 1:
                far.add((target, context))
            if best.memory_bound:
                bound.add((target, context))
    return Grid(cells, frozenset(far), frozenset(bound), optima)


def grids(fits: Mapping[Heads, PowerLaw], targets: Sequence[float], contexts: Sequence[int],
          regimes: Mapping[tuple[str, int], CostSetting]) -> dict[tuple[str, int], Grid]:
    """The Table-4 grid under each regime."""
    return {key: grid(fits, targets, contexts, setting) for key, setting in regimes.items()}


@dataclass(frozen=True)
class Summary:
    """What one regime's grid looks like: cells reached, cells whose optimum keeps one KV head, the mean
    n_kv of the optima, the cells that agree with the paper among those it can check (the paper's optimum
    is fitted), and the cells whose optimum extrapolates its fit."""

    reached: int
    one_kv_head: int
    mean_kv_heads: float
    agree: int
    checkable: int
    extrapolated: int


def summary(g: Grid, paper: Mapping[tuple[float, int], Heads], fitted: Sequence[Heads], *,
            inside_only: bool = False) -> Summary:
    """Counts over one grid; `paper` holds the paper's optimum per cell (cells outside it are not checked).
    `inside_only`: over the cells whose optimum lies inside the sizes its fit saw (no extrapolation)."""
    keys = [k for k in g.cells if not (inside_only and k in g.extrapolated)]
    found = [g.cells[k] for k in keys if g.cells[k] is not None]
    checkable = [k for k in keys if k in paper and paper[k] in fitted]
    return Summary(len(found), sum(h[1] == 1 for h in found),
                   sum(h[1] for h in found) / len(found) if found else float("nan"),
                   sum(g.cells[k] == paper[k] for k in checkable), len(checkable),
                   sum(k in g.extrapolated for k in keys))


def prefill_seconds(c: search.Candidate, context: int, setting: CostSetting) -> float:
    """The ideal time to prefill one causal prompt of `context` tokens with a costed model on the setting's
    hardware: its FLOPs (2·N per token with the tied embedding, and attention's 4·L·n_h·d_h·T(T+1)/2) at the
    peak rate, or reading the weights, whichever is longer. What a decode step's time leaves out, and what
    Z's FLOPs term stands for."""
    if setting.hardware is None:
        raise ValueError("prefill_seconds needs a setting with hardware")
    n_total = c.params + setting.vocab * c.d_model
    flops = 2 * n_total * context + 4 * c.layers * c.heads[0] * setting.head_dim * context * (context + 1) / 2
    weights = n_total * search.cost.bytes_per_value(setting.dtype)
    return max(flops / setting.hardware.peak_flops, weights / setting.hardware.bandwidth)


@dataclass(frozen=True)
class Facts:
    """What the book says about a set of regime grids, as numbers (the chapter words them). Rows are the
    three `variants` (Z with a BF16 cache, Z with an FP8 cache, decode time); counts are over the paper's
    Table 4 cells."""

    cells: int
    batches: tuple[int, ...]
    one_kv_head: tuple[int, ...]  # Z, BF16: cells whose optimum keeps one KV head, per batch
    fewer_query_heads: tuple[int, ...]  # Z, BF16: cells whose optimum has fewer query heads than the most fitted
    fewer_query_heads_time: int  # decode time, last batch: the same count
    most_heads: int
    same_as_time: tuple[int, ...]  # cells where Z (BF16) and decode time pick the same optimum, per batch
    mean_kv: tuple[float, float]  # first batch, mean n_kv: BF16 cache, FP8 cache
    inside: int  # first batch, Z BF16: cells whose optimum lies inside the sizes its fit saw
    mean_kv_inside: tuple[float, float]  # the same means over those cells (each grid's own inside cells)
    moved_to_one: int  # Z BF16: cells with several KV heads at the first batch and one at the last
    moved_to_one_inside: int  # of those, inside the fits' sizes at the first batch
    memory_share: float  # first batch, Z BF16: mean share of Z carried by its memory term
    intensity: float  # the most FLOPs per byte read of any decode-time optimum's step
    ridge: float  # the hardware's peak FLOPs per byte of bandwidth
    memory_bound: tuple[int, ...]  # decode time: memory-bound cells, per batch
    too_big: tuple[int, int]  # Z BF16, last batch: optima larger than the hardware's memory, and of those inside
    agree: tuple[int, int]  # Z BF16: cells agreeing with the paper at the first and the last batch
    agree_time: tuple[int, int]  # decode time: the same
    checkable: int
    extrapolated: tuple[int, int]  # Z BF16: extrapolated optima at the first and the last batch
    paper_one_kv_head: int  # Table 4's own cells with one KV head
    # a cell where Z and decode time disagree at the first batch: (target, context, Z's pick, time's pick,
    # their prefill seconds of one prompt of the context, their decode-step seconds); None when none does
    prefill_example: tuple | None


def facts(grids: Mapping[tuple[str, int], Grid], rows: Sequence[Variant], batches: Sequence[int],
          paper: Mapping[tuple[float, int], Heads], fits: Mapping[Heads, PowerLaw],
          settings_by_key: Mapping[tuple[str, int], CostSetting]) -> Facts:
    """Count what the grids show (see `Facts`)."""
    z_row, fp8_row, time_row = (v.label for v in rows)
    first, last = batches[0], batches[-1]
    fitted = list(fits)
    most = max(h[0] for h in fitted)
    z = {b: grids[(z_row, b)] for b in batches}
    keys = list(paper)

    def fewer(g: Grid) -> int:
        return sum(h is not None and h[0] < most for h in g.cells.values())

    def mean_kv(g: Grid, inside: bool = False) -> float:
        return summary(g, paper, fitted, inside_only=inside).mean_kv_heads

    moved = [k for k in keys if z[first].cells[k] and z[last].cells[k] and z[first].cells[k][1] > 1
             and z[last].cells[k][1] == 1]
    shares = [search.z_shares(c, settings_by_key[(z_row, first)])["memory"] for c in z[first].optima.values()]
    device = settings_by_key[(time_row, last)].hardware
    big = z[last].too_big(device.memory)
    example = None
    time_first = grids[(time_row, first)]
    for k in keys:
        hz, ht = z[first].cells[k], time_first.cells[k]
        if hz and ht and hz != ht:
            setting = settings_by_key[(time_row, first)]
            costed = [search.cost_at(h, fits[h].params_for_loss(k[0]), k[1], setting) for h in (hz, ht)]
            example = (k[0], k[1], hz, ht, *(prefill_seconds(c, k[1], setting) for c in costed),
                       *(c.time_s for c in costed))
            break
    agree = {row: tuple(summary(grids[(row, b)], paper, fitted).agree for b in (first, last))
             for row in (z_row, time_row)}
    return Facts(
        cells=len(keys), batches=tuple(batches),
        one_kv_head=tuple(summary(z[b], paper, fitted).one_kv_head for b in batches),
        fewer_query_heads=tuple(fewer(z[b]) for b in batches),
        fewer_query_heads_time=fewer(grids[(time_row, last)]), most_heads=most,
        same_as_time=tuple(sum(grids[(time_row, b)].cells[k] == z[b].cells[k] for k in keys) for b in batches),
        mean_kv=(mean_kv(z[first]), mean_kv(grids[(fp8_row, first)])),
        inside=summary(z[first], paper, fitted, inside_only=True).reached,
        mean_kv_inside=(mean_kv(z[first], True), mean_kv(grids[(fp8_row, first)], True)),
        moved_to_one=len(moved), moved_to_one_inside=sum(k not in z[first].extrapolated for k in moved),
        memory_share=sum(shares) / len(shares) if shares else float("nan"),
        intensity=max(grids[(time_row, b)].intensity() for b in batches), ridge=device.ridge,
        memory_bound=tuple(len(grids[(time_row, b)].memory_bound) for b in batches),
        too_big=(len(big), sum(k not in z[last].extrapolated for k in big)),
        agree=agree[z_row], agree_time=agree[time_row],
        checkable=summary(z[first], paper, fitted).checkable,
        extrapolated=(len(z[first].extrapolated), len(z[last].extrapolated)),
        paper_one_kv_head=sum(h[1] == 1 for h in paper.values()), prefill_example=example)
