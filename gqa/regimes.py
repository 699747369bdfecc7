"""How Step 3's answer moves with the regime a model is served in: batch, KV-cache dtype and objective.

The paper answers at batch 1 with a BF16 cache and Eq. 5's Z. Served models decode 16 to 256 sequences
at once, often with an FP8 cache, and are judged by their time per step. Each regime is a `CostSetting`;
`grids` recomputes a Table-4 grid under each, and `summary` says in numbers what moved: how many KV heads
the optima keep, and how many of the paper's cells they still agree with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

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


def grid(fits: Mapping[Heads, PowerLaw], targets: Sequence[float], contexts: Sequence[int],
         setting: CostSetting) -> Grid:
    """Step 3 in every cell of a grid under one setting."""
    cells, far, bound = {}, set(), set()
    for target in targets:
        for context in contexts:
            try:
                best = search.search(fits, target, context, setting)[0]
            except ValueError:
                cells[(target, context)] = None
                continue
            cells[(target, context)] = best.heads
            if best.extrapolation > 1:
                far.add((target, context))
            if best.memory_bound:
                bound.add((target, context))
    return Grid(cells, frozenset(far), frozenset(bound))


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


def summary(g: Grid, paper: Mapping[tuple[float, int], Heads], fitted: Sequence[Heads]) -> Summary:
    """Counts over one grid; `paper` holds the paper's optimum per cell (cells outside it are not checked)."""
    found = [h for h in g.cells.values() if h is not None]
    checkable = [k for k in g.cells if k in paper and paper[k] in fitted]
    return Summary(len(found), sum(h[1] == 1 for h in found),
                   sum(h[1] for h in found) / len(found) if found else float("nan"),
                   sum(g.cells[k] == paper[k] for k in checkable), len(checkable), len(g.extrapolated))
