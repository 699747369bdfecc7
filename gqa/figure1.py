"""Figure 1 of the paper checked: the Llama-3-style baseline against the cost-optimal model at one context,
the numbers its text and bars state against ours, and the worked numbers chapter 1 quotes.

Costs come from `gqa.cost` (Eq. 3 FLOPs per token, Eq. 4 memory, bytes in the given dtype); the paper's values
and tolerances from `data/paper/claims.csv` through `gqa.paper`. Bars are in GB and in PFLOPs over a whole
context (per-token FLOPs times T / 1e15), as the paper draws them.
"""

from __future__ import annotations

from dataclasses import dataclass

from gqa import cost, paper, readings
from gqa.shapes import Shape, paper_shape
from gqa.units import format_bytes, format_count, format_number, format_tokens

TEXT_CLAIMS = ("fig1_memory_saving", "fig1_flops_saving", "appg_kv_share_1b_mha_128k")  # the rows' order


@dataclass(frozen=True)
class Figure1:
    """The two models of Figure 1 costed at one context, and the paper's claims about them checked."""

    context: int  # tokens
    baseline: cost.InferenceCost
    ours: cost.InferenceCost
    memory_saving: float  # 1 - bytes(ours) / bytes(baseline), weights and KV cache
    flops_saving: float  # 1 - FLOPs(ours) / FLOPs(baseline), per token
    rows: list[dict]  # one `paper.check_claim` row per claim: the three text claims first, then the eight bars


def check(baseline: Shape, ours: Shape, context: int, dtype: str = "bf16", mha: Shape | None = None) -> Figure1:
    """Cost both models (and the 1B MHA model of Appendix G, `mha`, by default the 1.2B backbone with 24 heads)
    at `context` and check every claim of Figure 1 against them, each under its own tolerance."""
    claims = paper.claims()
    c_base, c_ours = (cost.inference_cost(s, context, dtype=dtype) for s in (baseline, ours))
    c_mha = cost.inference_cost(mha or paper_shape("1.2b"), context, dtype=dtype)
    mem_saving = 1 - c_ours.bytes_total / c_base.bytes_total
    flops_saving = 1 - c_ours.flops / c_base.flops
    label, per_context = format_tokens(context), context / 1e15

    def row(claim_id: str, value: float, how: str) -> dict:
        return paper.check_claim(claims[claim_id], round(value, 4), how=how)  # tolerance from claims.csv

    text = {"fig1_memory_saving": (mem_saving, f"bytes at T = {label}, Table 7 backbone"),
            "fig1_flops_saving": (flops_saving, f"per token at T = {label}"),
            "appg_kv_share_1b_mha_128k": (c_mha.kv_share_of_memory, f"MHA (24, 24) on the 1.2B backbone, T = {label}")}
    rows = [row(cid, *text[cid]) for cid in TEXT_CLAIMS]
    for side, c in (("baseline", c_base), ("ours", c_ours)):
        rows += [row(f"fig1_bar_memory_total_{side}", c.bytes_total / 1e9, "weights + KV, GB"),
                 row(f"fig1_bar_memory_invariant_{side}", c.bytes_weights / 1e9, "weights, GB")]
    for side, c in (("baseline", c_base), ("ours", c_ours)):
        rows += [row(f"fig1_bar_flops_total_{side}", c.flops * per_context, "Eq. 3 × T"),
                 row(f"fig1_bar_flops_invariant_{side}", c.flops_time_invariant * per_context, "2N × T")]
    return Figure1(context, c_base, c_ours, mem_saving, flops_saving, rows)


def words(fig: Figure1) -> dict[str, str | int]:
    """What chapter 1 says about the check: both savings, the tolerances, how many text and bar claims are
    reproduced, and one sentence on whether the savings agree with the paper's in direction and in size."""
    claims = paper.claims()
    text, bars = fig.rows[:len(TEXT_CLAIMS)], fig.rows[len(TEXT_CLAIMS):]  # `check` puts the text claims first
    both_saved = fig.memory_saving > 0 and fig.flops_saving > 0
    both_match = all(r["status"] == "reproduced" for r in fig.rows[:2])
    if both_match:
        agreement = "Both savings agree with the paper's within tolerance, in direction and in size."
    elif both_saved:
        agreement = ("The direction of the saving agrees with the paper: (8, 1) costs less memory and fewer FLOPs "
                     "than the baseline. The sizes of the savings do not agree within tolerance.")
    else:
        agreement = "Here the (8, 1) model does not save both memory and FLOPs, unlike the paper's claim."
    return {"mem_saving": f"{format_number(100 * fig.memory_saving)}% of the memory",
            "flops_saving": f"{format_number(100 * fig.flops_saving)}% of the FLOPs",
            "tol_saving_pp": f"{100 * claims['fig1_memory_saving'].tolerance:g}",
            "tol_rel_pct": f"{100 * claims['fig1_bar_memory_total_baseline'].tolerance:g}%",
            "n_text_claims": len(text),
            "n_text_reproduced": sum(r["status"] == "reproduced" for r in text),
            "n_bar_claims": len(bars),
            "n_bars_reproduced": sum(r["status"] == "reproduced" for r in bars),
            "saving_agreement": agreement}


def accounting_words() -> dict[str, str]:
    """The same two models and the 1B MHA model under the equations as written and under Figure 2's accounting
    (`readings.named_models`, the function chapter 6 uses): Figure 2's savings, both KV shares, and the share
    of each model's Z carried by its FLOPs term."""
    as_written, as_plotted = readings.named_models("equations_as_written"), readings.named_models("figure2")
    said = {"fig2_mem_saving": f"{format_number(100 * as_plotted['memory_saving'])}%",
            "fig2_flops_saving": f"{format_number(100 * as_plotted['flops_saving'])}%",
            "fig2_kv_share": f"{as_plotted['kv_share_1b_mha']:.4f}",
            "eq_kv_share": f"{as_written['kv_share_1b_mha']:.4f}"}
    for key, named in (("eq", as_written), ("fig2", as_plotted)):
        said[f"z_flops_{key}_base"] = f"{format_number(100 * named['z_flops_share_baseline'])}%"
        said[f"z_flops_{key}_ours"] = f"{format_number(100 * named['z_flops_share_ours'])}%"
    return said


def worked_numbers(shape: Shape, c: cost.InferenceCost) -> dict[str, str]:
    """The worked example's numbers for one model (keys `base_*`): weights N (Eq. 4's time-invariant memory),
    the norm parameters left out of N, Eq. 3's two FLOPs terms, the KV cache in values and bytes, the weights
    in bytes, and the KV cache's share of memory."""
    return {"base_N": f"{c.memory_weights:,.0f}", "base_norms": f"{shape.params().numel - shape.params().total:,}",
            "base_C_inv": format_count(c.flops_time_invariant), "base_C_var": format_count(c.flops_time_variant),
            "base_M_var": format_count(c.memory_kv_cache), "base_kv_bytes": format_bytes(c.bytes_kv_cache),
            "base_w_bytes": format_bytes(c.bytes_weights),
            "base_kv_share": f"{format_number(100 * c.kv_share_of_memory)}%"}


def model_row(label: str, shape: Shape, c: cost.InferenceCost) -> dict[str, str | int]:
    """One row of chapter 1's table: a model's shape, its FLOPs per token split into weights and attention,
    its memory split into weights and KV cache, and Z."""
    return {"model": label, "L": shape.layers, "d": shape.d_model, "(n_h, n_kv)": str(shape.heads),
            "FLOPs/token, weights": format_count(c.flops_time_invariant),
            "FLOPs/token, attention": format_count(c.flops_time_variant),
            "memory, weights": format_bytes(c.bytes_weights),
            "memory, KV cache": format_bytes(c.bytes_kv_cache), "Z": f"{c.z:,.0f}"}
