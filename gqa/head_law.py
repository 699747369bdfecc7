"""Appendix I's head-count law on a study's own runs: L(n_h) = a·n_h^b + c fitted per size, at one KV head.

`head_law_study` groups a study's records by size (layers, width), keeps the sizes with runs at three or
more query-head counts at n_kv = 1, fits the law to each, and records what the text says about it: how many
fits find a floor c > 0, how many of those floors are reversals (a larger n_h above a smaller one) rather
than diminishing returns, whether the points bend up in log-log coordinates (`scaling.log_curvature`), and
how much a query head adds to the model at a fixed size, against the paper's 1.2B backbone. `words` says it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gqa.scaling import HeadLaw, fit_head_law, log_curvature
from gqa.shapes import Shape
from gqa.units import count_phrase

FLOOR = 1e-6  # a fitted c above this is a floor; at or below it the fit ran to c = 0, a pure power law


@dataclass(frozen=True)
class HeadFit:
    """One size's fit: its label, the head counts and losses fitted, the law, and whether the points bend up."""

    label: str
    n_heads: np.ndarray
    loss: np.ndarray
    law: HeadLaw
    param_growth: float  # non-embedding parameters at the largest n_h over the smallest, minus 1

    @property
    def floor(self) -> bool:
        return self.law.c > FLOOR

    @property
    def reversed(self) -> bool:
        """A floor the losses do not support: they do not fall with every doubling of n_h."""
        return self.floor and not np.all(np.diff(self.loss) < 0)

    @property
    def bends_up(self) -> bool:
        return log_curvature(self.n_heads, self.loss) > 0


def head_law_study(records: Sequence[dict]) -> list[HeadFit]:
    """The per-size fits of a study's records (sizes in order; those with under three head counts left out)."""
    fits = []
    for layers, d_model in sorted({(r["layers"], r["d_model"]) for r in records}):
        group = sorted((r for r in records
                        if (r["layers"], r["d_model"]) == (layers, d_model) and r["n_kv_heads"] == 1),
                       key=lambda r: r["n_heads"])
        if len({r["n_heads"] for r in group}) < 3:
            continue
        n_h = np.array([r["n_heads"] for r in group], float)
        loss = np.array([r["val_loss"] for r in group])
        sizes = {r["n_heads"]: r["n_non_embedding"] for r in group}
        fits.append(HeadFit(f"L={layers}, d={d_model}", n_h, loss, fit_head_law(n_h, loss),
                            sizes[max(sizes)] / sizes[min(sizes)] - 1))
    return fits


def rows(fits: Sequence[HeadFit]) -> list[dict]:
    """The table of the fits: a, b, c and R² per size."""
    return [{"shape": f.label, "a": round(f.law.a, 3), "b": round(f.law.b, 3), "c": round(f.law.c, 3),
             "R²": round(f.law.r2, 4)} for f in fits]


def words(fits: Sequence[HeadFit]) -> tuple[str, str]:
    """What the chapter says about the fits: a paragraph, and one sentence for the summary."""
    if not fits:
        return ("No size of this study has runs at three or more query-head counts with one KV head, so the "
                "head-count law is not fitted here.",
                "No size has enough head counts with one KV head to fit Appendix I's law.")
    n, n_floor = len(fits), sum(f.floor for f in fits)
    reversed_floors = sum(f.reversed for f in fits)
    bends = sum(f.bends_up for f in fits)
    matches = sum(f.bends_up == f.floor for f in fits)
    sentence = (f"{n} size{'s' if n > 1 else ''} of the study {'have' if n > 1 else 'has'} runs at three or more "
                "query-head counts with one KV head. ")
    paper_like = ", the diminishing returns the paper reports" if not reversed_floors else ""
    if n_floor == n:
        sentence += f"In every one the fit finds a floor c > 0{paper_like}."
    elif n_floor == 0:
        sentence += "In none does the fit find a floor: it runs to c = 0, a pure power law."
    else:
        sentence += (f"In {n_floor} of them the fit finds a floor c > 0{paper_like}; in the other "
                     f"{n - n_floor} it runs to c = 0, a pure power law.")
    if reversed_floors:
        sentence += (f" But in {count_phrase(reversed_floors, n_floor, 'size')} with a floor the losses do not fall "
                     "with every doubling of n_h (a larger n_h sits above a smaller one, in runs of one seed each): "
                     "that floor is a reversal the fit bends to, not diminishing returns.")
    sentence += (f" A floor shows as points that bend up in log–log coordinates (loss against n_h); they bend up "
                 f"at {count_phrase(bends, n, 'size')}, and the fit's floor follows the bend at "
                 f"{count_phrase(matches, n, 'size')}. Where the points bend down, each doubling of "
                 "n_h gains more than the last and no floor can be estimated.")
    growth = [f.param_growth for f in fits]
    paper_growth = Shape(36, 1536, 8, 1).params().non_embedding / Shape(36, 1536, 1, 1).params().non_embedding - 1
    sentence += (f" One reason: here a query head is a large part of a model, so going from n_h = 1 to 8 at a "
                 f"fixed depth and width adds {100 * min(growth):.0f}–{100 * max(growth):.0f}% parameters "
                 f"(on the paper's 1.2B backbone, {100 * paper_growth:.0f}%); the loss falls partly because the "
                 "model grows. Seeing the paper's diminishing returns needs widths well above n_h·d_h, where "
                 "heads are a small share of the model, and head counts past the point where the loss flattens.")
    short = f"Appendix I's head-count law is fitted at {n} sizes and finds a floor c > 0 at {n_floor}"
    if reversed_floors and reversed_floors == n_floor:
        short += ": every such floor comes from a reversal in single-seed runs, not from diminishing returns"
    elif reversed_floors:
        short += f"; {reversed_floors} of those floors come from a reversal in single-seed runs"
    return sentence, short + "."
