"""What chapter 5 says about a recomputed Table 4: the grid, why it does or does not follow the paper's
pattern, the headline comparison with a baseline, and the serving regimes, each as the sentences the book
glues.

Contexts are in tokens (written in binary thousands, 1K = 1,024 tokens), sizes N in non-embedding
parameters, losses in nats per token. Every function returns text (counts as ints, as the book glues them)
computed from its arguments, so no build prints a sentence its numbers do not support.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from gqa.hardware import Hardware
from gqa.regimes import Facts
from gqa.scaling import PowerLaw
from gqa.search import Comparison, CostSetting, Heads, PatternDiagnosis, balance_context_of_shape, z_shares
from gqa.shapes import PAPER_SCALING_SHAPES, Shape
from gqa.study_limits import E_AT_BOUND
from gqa.units import and_list, format_bytes, format_count, format_duration, format_number, format_tokens, signed

TABLE4_SPAN = (8192, 131072)  # the contexts of the paper's Table 4, in tokens


def targets_across(losses: Sequence[float], n: int = 6) -> list[float]:
    """`n` target losses (fewer where rounding to 2 decimals merges them), highest first, from 10% of the
    range below the lowest loss a study reached up to its highest."""
    low, high = min(losses), max(losses)
    return sorted({round(float(t), 2) for t in np.linspace(low - 0.1 * (high - low), high, n)}, reverse=True)


def kilo(tokens: float) -> str:
    """A context in binary thousands (1K = 1,024 tokens), to 2 significant digits: '4.5K', '128K'."""
    return f"{format_number(tokens / 1024)}K" if tokens < 10 * 1024 else f"{tokens / 1024:.0f}K"


def grid_words(cells: Mapping[tuple[float, int], Heads | None], confidence: Mapping, extrapolated: set,
               rows_cols: tuple[int, int], targets: Sequence[float], contexts: Sequence[int]) -> dict[str, str | int]:
    """The recomputed grid in numbers: its cells, how many optima extrapolate their fit, the mean bootstrap
    confidence, and how many rows and columns follow the paper's pattern."""
    return {"n_cells": len(cells),
            "n_extrapolated": f"{len(extrapolated)} of the {sum(h is not None for h in cells.values())}",
            "mean_conf": f"{100 * np.mean(list(confidence.values())):.0f}%" if confidence else "n/a",
            "rows_ok": f"{rows_cols[0]} of {len(targets)}", "cols_ok": f"{rows_cols[1]} of {len(contexts)}"}


def paper_balance_span(dtype: str = "bf16") -> tuple[float, float]:
    """The contexts at which the paper's scaling shapes (as (8, 1), Eq. 4 as written, N with the embedding)
    balance weights and KV cache: the shortest and the longest."""
    setting = CostSetting(dtype=dtype)
    spans = [balance_context_of_shape(Shape(L, d, 8, 1), setting) for L, d in PAPER_SCALING_SHAPES.values()]
    return min(spans), max(spans)


def pattern_words(why: PatternDiagnosis, cells: Mapping[tuple[float, int], Heads | None],
                  targets: Sequence[float], contexts: Sequence[int], paper_span: tuple[float, float]) -> dict[str, str]:
    """Why the grid does or does not follow the paper's pattern (keys `why_*`): the contexts where this
    study's sizes balance weights and KV cache against the paper's span and Table 4's, the smallest KV share
    of an optimum, the size that would balance at the grid's shortest context, and the grid recomputed at
    contexts around this study's balance."""
    low, high = TABLE4_SPAN
    covers = paper_span[0] <= low and paper_span[1] >= high
    below = why.balance_contexts[1] < min(contexts)
    constant_rows = all(len({cells[(t, c)] for c in contexts}) == 1 for t in targets)
    return {
        "why_paper_covers": ("a span that holds Table 4's 8K–128K" if covers else
                             f"a span that overlaps Table 4's 8K–128K from {kilo(max(paper_span[0], low))} to "
                             f"{kilo(min(paper_span[1], high))}, so there some of them are weight-bound and some "
                             "KV-bound"),
        "why_min_kv": f"{100 * why.min_kv_share:.0f}%",
        "why_kv_heads": ", ".join(map(str, why.kv_heads)),
        "why_span": f"{kilo(why.balance_contexts[0])}–{kilo(why.balance_contexts[1])} tokens",
        "why_sizes": f"{format_count(why.size_range[0])}–{format_count(why.size_range[1])}",
        "why_heads": f"({why.heads[0]}, {why.heads[1]})",
        "why_paper_span": f"{kilo(paper_span[0])} to {kilo(paper_span[1])}",
        "why_rows_constant": (" (every row is the same configuration at every context, so this holds trivially)"
                              if constant_rows else ""),
        "why_needed": format_count(why.balance_size_at_shortest),
        "why_needed_ratio": format_number(why.balance_size_at_shortest / why.size_range[1]),
        "why_shortest": format_tokens(min(contexts)),
        "why_short_contexts": ", ".join(format_tokens(c) for c in why.short_contexts),
        "why_short_rows": f"{why.short_rows} of {len(targets)}",
        "why_short_cols": f"{why.short_cols} of {len(why.short_contexts)}",
        "why_sentence": ("Every model of this study balances below the grid's shortest context, so every cell is "
                         "KV-bound:" if below else "Part of this study balances inside the grid's contexts:"),
        "why_takeaway": (f"This study's models are KV-bound at every context of the grid (KV cache at least "
                         f"{100 * why.min_kv_share:.0f}% of the optimum's memory), so it cannot show the paper's "
                         f"pattern (fewer heads as the context grows); that needs models of about "
                         f"{format_count(why.balance_size_at_shortest)} parameters." if below else
                         "Part of this study balances weights and KV cache inside the grid's contexts, where the "
                         "paper's pattern can show; the recomputed grid above says how much of it does."),
    }


def headline_words(cmp: Comparison, baseline: Heads, target: float, context: int, setting: CostSetting,
                   fits: Mapping[Heads, PowerLaw]) -> dict[str, str]:
    """The optimum against the baseline at one target loss and context (keys `h_*`): sizes, memory and FLOPs
    changes (negative: a saving), the loss the optimum reaches at the baseline's cost, whether that figure is
    an extrapolation (and of what kind of law), and each model's memory share of Z."""
    outside = cmp.equal_cost_extrapolation > 1
    how_far = format_number(cmp.equal_cost_extrapolation)
    law = ("whose E sits at its lower bound (a pure power law)" if fits[cmp.optimum.heads].e <= E_AT_BOUND
           else "fitted on tiny models")
    shares = [z_shares(c, setting)["memory"] for c in (cmp.baseline, cmp.optimum)]
    return {
        "h_target": f"{target:g}", "h_T": format_tokens(context),
        "h_opt": f"({cmp.optimum.heads[0]}, {cmp.optimum.heads[1]})", "h_base": f"({baseline[0]}, {baseline[1]})",
        "h_opt_N": format_count(cmp.optimum.params), "h_base_N": format_count(cmp.baseline.params),
        "h_mem": f"{-100 * cmp.memory_saving:+.1f}%", "h_flops": f"{-100 * cmp.flops_saving:+.1f}%",
        "h_gain": format_number(cmp.loss_gain),
        "h_gain_words": signed(cmp.loss_gain, lower="lowers the loss by {}", higher="raises the loss by {}",
                               same="leaves the loss unchanged"),
        "h_gain_extrapolation": (f" That figure is an extrapolation: the size it takes is {how_far} times outside "
                                 f"the sizes the {cmp.optimum.heads} fit saw, so read it as what the fitted law says, "
                                 "not as a measurement." if outside
                                 else " That size lies inside the sizes its fit saw."),
        "h_z_memory": f"{format_number(100 * shares[0])}% and {format_number(100 * shares[1])}%",
        "h_gain_takeaway": (f"; this is an extrapolation, {how_far} times outside the sizes its fit saw, of a law "
                            f"{law}, so it is what the fitted law says, not a measurement" if outside
                            else ", inside the sizes its fit saw"),
    }


def regime_words(f: Facts, batches: Sequence[int], device: Hardware, largest: float) -> dict[str, str | int]:
    """The serving regimes in sentences (keys `reg_*`), from `regimes.facts`: where the optimum keeps one KV
    head at each batch against the paper's Table 4, what an FP8 cache changes (and whether those moves lie
    where the fits extrapolate), the decode-time row's agreement with Z, the prefill that decode time leaves
    out, and optima too big for one device. `largest` is the largest size the fits saw."""
    first, last = batches[0], batches[-1]
    extra_kv = (f.cells * (f.mean_kv[1] - f.mean_kv[0]), f.inside * (f.mean_kv_inside[1] - f.mean_kv_inside[0]))
    mostly_outside = abs(extra_kv[1]) < abs(extra_kv[0]) / 2 and f.moved_to_one_inside < f.moved_to_one / 2
    fp8 = signed(f.mean_kv[0] - f.mean_kv[1], lower="keeps fewer", higher="affords more", same="keeps as many")
    return {
        "reg_cells": f.cells, "reg_first": first, "reg_last": last,
        "reg_batches": and_list(batches), "reg_kv1": and_list(f.one_kv_head), "reg_paper_kv1": f.paper_one_kv_head,
        "reg_qdrop_z": (f"The optimum also keeps fewer than {f.most_heads} query heads in "
                        f"{and_list(f.fewer_query_heads)} cells: a batch multiplies Z's FLOPs term too, and "
                        "attention's FLOPs grow with the number of query heads." if f.fewer_query_heads[-1] > 0
                        else f"Every optimum keeps {f.most_heads} query heads."),
        "reg_fp8_words": fp8 + " KV heads",
        "reg_fp8_mean": format_number(f.mean_kv[1]), "reg_bf16_mean": format_number(f.mean_kv[0]),
        "reg_inside": (("Most of these moves happen where the fits extrapolate:" if mostly_outside else
                        "These moves hold inside the sizes the fits saw as well:")
                       + f" over the {f.inside} cells whose optimum lies inside the sizes its fit saw, the FP8 cache "
                       f"moves the mean number of KV heads from {format_number(f.mean_kv_inside[0])} to "
                       f"{format_number(f.mean_kv_inside[1])}, and of the {f.moved_to_one} cells that turn to one KV "
                       f"head between batch {first} and {last}, {f.moved_to_one_inside} "
                       + ("lies" if f.moved_to_one_inside == 1 else "lie") + " inside them."),
        "reg_device": (f"{device.name} ({format_number(device.bandwidth / 1e12)} TB/s, "
                       f"{format_number(device.peak_flops / 1e12)} TFLOP/s dense BF16)"),
        "reg_bound": and_list(f.memory_bound) + f" of the {f.cells} cells at batches {and_list(batches)}",
        "reg_intensity": (f"at most {format_number(f.intensity)} FLOPs per byte read, below the {device.name}'s "
                          f"{format_number(f.ridge)}"),
        "reg_qdrop_time": (f"fewer than {f.most_heads} query heads win in {f.fewer_query_heads_time} cells"
                           if f.fewer_query_heads_time > 0
                           else f"no optimum has fewer than {f.most_heads} query heads"),
        "reg_time_same": and_list(f.same_as_time),
        "reg_memory_share": f"{format_number(100 * f.memory_share)}%",
        "reg_prefill": _prefill(f, first),
        "reg_too_big": (f"At batch {last}, {f.too_big[0]} of the {f.cells} optima (with a BF16 cache and Z) hold "
                        f"more than the {format_bytes(device.memory)} of one {device.name}, {f.too_big[1]} of them "
                        "inside the sizes the fits saw at that batch: served, they would be split over several "
                        "accelerators." if f.too_big[0] > 0
                        else f"At batch {last} every optimum fits in one {device.name}."),
        "reg_checkable": f.checkable,
        "reg_agree": (f"{f.agree[0]} agree at batch {first} and {f.agree[1]} at batch {last} (under the decode time: "
                      f"{f.agree_time[0]} and {f.agree_time[1]})"),
        "reg_extrapolated": f"{f.extrapolated[0]} of {f.cells} cells at batch {first}",
        "reg_takeaway": (f"Served at batch {last} with a BF16 cache and minimising Z, the optimum of our fits to the "
                         f"paper's Figure 2 keeps one KV head in {f.one_kv_head[-1]} of {f.cells} cells of Table 4's "
                         f"grid (batch {first}: {f.one_kv_head[0]}; the paper's Table 4: {f.paper_one_kv_head}), and "
                         f"an FP8 cache at batch {first} {fp8} KV heads; "
                         + ("most of these moves lie where the fits extrapolate" if mostly_outside else
                            "these moves hold where the fits do not extrapolate too")
                         + f" ({f.moved_to_one - f.moved_to_one_inside} of the {f.moved_to_one} cells that turn to one "
                         f"KV head between batch {first} and {last}; the fits saw models up to {format_count(largest)} "
                         "non-embedding parameters). Table 4 is the answer for one regime, the paper's: batch 1 with a "
                         "BF16 cache."),
    }


def _prefill(f: Facts, first: int) -> str:
    if not f.prefill_example:
        return f"At batch {first} Z and the decode time pick the same configuration in every cell."
    t, ctx, hz, ht, pz, pt, dz, dt = f.prefill_example
    total = [p + 1024 * d for p, d in ((pz, dz), (pt, dt))]
    return (f"But a request is also a prefill, which the decode time leaves out and Z's FLOPs term stands for. At "
            f"L* = {t:g} and T = {format_tokens(ctx)}, Z picks {hz} and the decode time {ht}: {hz} prefills the "
            f"prompt in {format_duration(pz)} against {format_duration(pt)}, so with 1,024 generated tokens the whole "
            f"request takes {format_duration(total[0])} against {format_duration(total[1])}.")
