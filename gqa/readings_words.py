"""What chapter 6 says about the paper under every reading (`gqa.readings`): the options table, the
verdicts and the sentences that qualify them. Counts are returned as ints (as the book glues them),
everything else as text; savings and shares are fractions, written as percentages.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gqa import readings
from gqa.readings import Grid, Report
from gqa.units import format_number

STRICT_SHARE = 0.10  # the 512K claim's own threshold: a memory share under 10%


def options_table(grid: Grid) -> pd.DataFrame:
    """Every option of every point of the grid: its words, its key in `gqa readings --json`, what allows it
    and whether it is the default."""
    return pd.DataFrame([{"point": grid.questions[p], "option": o.label, "key (in `gqa readings --json`)": k,
                          "allowed by": o.allows, "default": "yes" if grid.default[p] == k else ""}
                         for p in readings.POINTS for k, o in grid.points[p].items()]).set_index(["point", "option"])


def table4_cell_words(report: Report) -> dict[str, int]:
    """How many of Table 4's checkable cells agree under every reading, and under none."""
    agree_by_cell = np.mean([[c.agree for c in r.table4_cells] for r in report.readings], axis=0)
    return {"t4_cells_always": int(sum(a == 1 for a in agree_by_cell)),
            "t4_cells_never": int(sum(a == 0 for a in agree_by_cell))}


def verdict_words(report: Report) -> dict[str, str | int]:
    """Each claim's verdict and in how many readings it reproduces; how many text claims reproduce in every,
    some and no reading; the joint verdicts; the savings under the baseline the paper names; the strict
    reading of the 512K share; why snapping N* to a preset cannot test the size; the options shared by the
    readings that reproduce both savings; and the smallest savings of any reading."""
    said: dict[str, str | int] = {}
    for v in report.verdicts:
        said[f"verdict_{v.claim}"] = v.verdict
        said[f"reproduced_in_{v.claim}"] = f"{v.reproduced_in} of {v.readings}"
    kinds = pd.Series([report.verdict(c).verdict for c in readings.TEXT_CLAIMS]).value_counts()
    said.update({"n_every": int(kinds.get("every reading", 0)), "n_some": int(kinds.get("some readings", 0)),
                 "n_none": int(kinds.get("no reading", 0)), "n_verdicts": len(readings.TEXT_CLAIMS),
                 "n_bars": len(readings.BAR_CLAIMS),
                 "bars_reproduced_any": sum(report.verdict(c).reproduced_in > 0 for c in readings.BAR_CLAIMS)})
    joint = {j.claim.split(":")[1]: j for j in report.joint}
    for name, j in joint.items():
        said[f"joint_{name}"] = f"{j.reproduced_in} of {j.readings}"
    both = readings.shared_options(report, joint["both_savings"].which)
    mem, flops = (readings.under_option(report, "baseline", "table9_32x8", c)
                  for c in ("fig1_memory_saving", "fig1_flops_saving"))
    said["named_baseline_sentence"] = (
        f"With the baseline the paper names (Table 9's 1.2B with (32, 8)), the memory saving reproduces under "
        f"{mem['reproduced']} of its {mem['readings']} readings ({format_number(mem['range'][0])} to "
        f"{format_number(mem['range'][1])}) and the FLOPs saving under {flops['reproduced']} "
        f"({format_number(flops['range'][0])} to {format_number(flops['range'][1])}): where the savings reproduce, "
        "the baseline is another model than the one the paper names.")
    shares = [r.claims["memory_share_512k"].ours for r in report.readings]
    under = sum(v is not None and v < STRICT_SHARE for v in shares)
    said["strict_512k"] = (("No reading goes under 10% itself" if under == 0 else
                            f"{under} readings go under 10% itself")
                           + f" (the lowest is {format_number(min(v for v in shares if v is not None))}); "
                           f"{report.verdict('memory_share_512k').reproduced_in} readings are within the 5 points "
                           "every share claim gets.")
    snapped = [r for r in report.readings if r.options["size_to_shape"] == "nearest_shape"]
    sizes = [r.claims["fig1_optimum_size"].ours for r in snapped]
    said["snap_size_sentence"] = (
        f"Under the {len(snapped)} readings that snap N* to the nearest preset, the savings cost (8, 1) as Table 7's "
        f"1.8B shape itself, yet the size is still judged from N*'s own shape ({format_number(min(sizes))} to "
        f"{format_number(max(sizes))}B there): snapping would call every N* near that preset 1.8B, so it cannot "
        "test the size.")
    said["joint_both_options"] = ("; ".join(f"{p}: {' or '.join(labels)}" for p, labels in both.items())
                                  or "no option in common")
    said["min_mem_saving_any"] = f"{format_number(100 * report.verdict('fig1_memory_saving').range[0])}%"
    said["min_flops_saving_any"] = f"{format_number(100 * report.verdict('fig1_flops_saving').range[0])}%"
    return said


def verdict_table(report: Report) -> pd.DataFrame:
    """One row per claim's verdict, then the joint verdicts (`readings.headline_table`)."""
    claims = pd.DataFrame([readings.verdict_row(v) for v in report.verdicts]).drop(columns="claim_id")
    joint = pd.DataFrame([r for r in readings.headline_table(report) if r["claim_id"].startswith("joint:")])
    return pd.concat([claims, joint.drop(columns="claim_id")], ignore_index=True)
