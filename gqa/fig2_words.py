"""What chapter 6 says about Figure 2 rebuilt: the digitised points and the shapes identified from them,
the fits, the Table 4 check, the headline of Figure 1 from the fits, and how the paper labels sizes; each
as the sentences (and tables) the book shows.

Costs follow Figure 2's accounting (`fig2.FIG2_SETTING`: FLOPs per sequence, N without embeddings, Z on
bytes) unless named otherwise; contexts in tokens; losses in nats per token; sizes N in non-embedding
parameters. Counts are returned as ints (as the book glues them), everything else as text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gqa import fig2, paper, readings, scaling, search
from gqa.scaling import Bootstrap, PowerLaw
from gqa.search import Heads
from gqa.shapes import PUBLIC_MODELS, Shape
from gqa.units import format_count, format_number, format_tokens

CURVE_LOSS = 2.45  # the fitted curves run from 0.8 x the smallest size to where each law reaches this loss


def _growth(decades: float) -> float:
    """A residual in decades (log10) as a relative error: 0.01 decades is 2.3%."""
    return 10 ** decades - 1


def tolerance_words(claims: Mapping[str, paper.Claim]) -> dict[str, str]:
    """The tolerances the chapter quotes, from claims.csv: savings (points), loss (nats), shares (points) and
    sizes (relative)."""
    return {"tol_saving_pp": f"{100 * claims['fig1_memory_saving'].tolerance:g}",
            "tol_loss": f"{claims['fig1_loss_gain_equal_z'].tolerance:g}",
            "tol_share_pp": f"{100 * claims['appg_kv_share_1b_mha_128k'].tolerance:g}",
            "tol_rel_pct": f"{100 * claims['fig1_optimum_size'].tolerance:g}%"}


@dataclass(frozen=True)
class Rebuilt:
    """Figure 2's digitised points, grouped into models, and the shapes identified from them."""

    points: pd.DataFrame  # one row per digitised point (data/paper/fig2_points.csv)
    models: pd.DataFrame  # one row per model: its three coordinates (memory, FLOPs, Z) and their loss spread
    unit: pd.Series  # of the MHA models: plotted FLOPs over Eq. 3's per token, in units of T (1.0: per sequence)
    ratio: pd.Series  # d / L of the sizes solved from each model's memory and FLOPs
    found: pd.DataFrame  # the shapes identified in the family d = 128·L, with residuals in decades
    table9: pd.DataFrame  # the same, identified among Table 9's shapes


def rebuild(points: pd.DataFrame) -> Rebuilt:
    """Group the points into models and identify each model's shape, in the d = 128·L family and in Table 9's."""
    models = fig2.models(points)
    return Rebuilt(points, models, fig2.flops_unit(models), fig2.aspect_ratio(fig2.solve_sizes(models)),
                   fig2.identify(models), fig2.identify(models, fig2.TABLE9_FAMILY))


def rebuild_words(r: Rebuilt) -> dict[str, str | int]:
    """How well the shapes explain the points: counts, the loss spread within a model, the context the FLOPs
    imply, the aspect ratio, the worst residuals (family, Table 9, Z), the layers found and the size range."""
    found = r.found
    resid = found[["memory_resid", "flops_resid"]].abs().max().max()
    resid9 = r.table9[["memory_resid", "flops_resid"]].abs().max().max()
    return {
        "n_points": len(r.points), "n_models": len(r.models), "n_series": r.models.groupby(["n_h", "n_kv"]).ngroups,
        "loss_spread": f"{r.models.loss_spread.max():.4f}",
        "row_search": int((r.points.found_by == "row search").sum()),
        "unit_lo": f"{r.unit.min():.3f}", "unit_hi": f"{r.unit.max():.3f}",
        "ratio_median": f"{r.ratio.median():.0f}",
        "ratio_iqr": f"{r.ratio.quantile(0.25):.0f}–{r.ratio.quantile(0.75):.0f}",
        "resid_family": f"{resid:.4f} decades ({100 * _growth(resid):.1f}%)",
        "resid_table9": f"{format_number(resid9)} decades ({100 * _growth(resid9):.0f}%)",
        "z_resid": f"{format_number(100 * _growth(found.z_resid.abs().max()))}%",
        "layers_n8": ", ".join(map(str, found[(found.n_h == 8) & (found.n_kv == 1)].layers.tolist())),
        "layers_lo": ", ".join(map(str, found[(found.n_h == 1)].layers.tolist())),
        "per_token_ratio": f"{fig2.CONTEXT:,}",
        "params_range": f"{format_count(found.params.min())}–{format_count(found.params.max())}",
    }


def shapes_table(found: pd.DataFrame) -> pd.DataFrame:
    """One row per head configuration: its models, their layers, the loss range and the worst memory and
    FLOPs errors of the identified shapes."""
    shown = found.assign(**{"(n_h, n_kv)": [f"({a}, {b})" for a, b in zip(found.n_h, found.n_kv)]})
    table = shown.groupby("(n_h, n_kv)", sort=False).agg(
        models=("k", "size"), layers=("layers", lambda s: ", ".join(map(str, s))),
        loss=("loss", lambda s: f"{format_number(s.max())} → {format_number(s.min())}"),
        memory_fit=("memory_resid", lambda s: f"{format_number(100 * _growth(s.abs().max()))}%"),
        flops_fit=("flops_resid", lambda s: f"{format_number(100 * _growth(s.abs().max()))}%"))
    table.columns = ["models", "L (d = 128·L)", "loss", "worst memory error", "worst FLOPs error"]
    return table


def fit_table(fits: Mapping[Heads, PowerLaw], boot: Bootstrap) -> pd.DataFrame:
    """The fitted laws, one row per configuration, with 95% bootstrap intervals on b and E."""
    rows = []
    for h, f in fits.items():
        ci = boot.interval(h)
        rows.append({"(n_h, n_kv)": f"({h[0]}, {h[1]})", "points": f.n_points, "a": f"{format_number(f.a)}",
                     "b": f"{format_number(f.b)} [{format_number(ci['b'][0])}, {format_number(ci['b'][1])}]",
                     "E": f"{format_number(f.e)} [{format_number(ci['e'][0])}, {format_number(ci['e'][1])}]",
                     "R²": f"{format_number(f.r2)}"})
    return pd.DataFrame(rows).set_index("(n_h, n_kv)")


def fit_words(fits: Mapping[Heads, PowerLaw], shared_e: bool, resamples: int) -> dict[str, str | int]:
    return {"e_option": "one E shared by all configurations" if shared_e else "its own E for each configuration",
            "min_r2_paper": f"{min(f.r2 for f in fits.values()):.4f}", "resamples": resamples}


def plotted_points(found: pd.DataFrame, context: int) -> dict[str, dict[Heads, tuple]]:
    """Figure 2's dots per quantity (memory_bytes, flops, z) and configuration, as (costs, losses): the
    digitised coordinates themselves at 128K, else the identified shapes costed at `context`."""
    pts: dict = {q: {} for q in ("memory_bytes", "flops", "z")}
    for h, rows in found.groupby(["n_h", "n_kv"], sort=False):
        h = (int(h[0]), int(h[1]))
        if context == fig2.CONTEXT:
            coords = {q: rows[q].to_numpy() for q in pts}
        else:
            costed = [fig2.predicted(r.layers, r.d_model, h, context) for r in rows.itertuples()]
            coords = {"memory_bytes": [c[1] for c in costed], "flops": [c[2] for c in costed],
                      "z": [c[3] for c in costed]}
        for q in pts:
            pts[q][h] = (coords[q], rows.loss.to_numpy())
    return pts


def fitted_curves(fits: Mapping[Heads, PowerLaw], boot: Bootstrap, data: Mapping, context: int):
    """The fitted curves of the rebuilt Figure 2 (`search.fitted_curves`, family accounting), from 0.8 x
    each configuration's smallest size to where its law reaches CURVE_LOSS (3e9 where it never does)."""
    return search.fitted_curves(
        fits, boot, context, fig2.FAMILY_SETTING,
        lambda h, law: (min(data[h][0]) * 0.8, law.params_for_loss(CURVE_LOSS) if law.e < CURVE_LOSS else 3e9),
        points=50)


def figure2_words(context: int) -> dict[str, str]:
    return {"T_label": format_tokens(context),
            "dots_from": "digitised from the paper's Figure 2" if context == fig2.CONTEXT else
            "the identified shapes of Figure 2's models, costed at this context"}


def _z_by_heads(fits, target: float, context: int) -> dict[Heads, float]:
    return {c.heads: c.z for c in search.search(fits, target, context, fig2.FIG2_SETTING)}


def _range_pct(shares: pd.Series) -> str:
    return f"{100 * shares.min():.0f}–{100 * shares.max():.0f}%" if len(shares) else "n/a"


def table4_words(fits: Mapping[Heads, PowerLaw], check: pd.DataFrame, check_family: pd.DataFrame,
                 loss_spread: float) -> dict[str, str | int]:
    """The Table 4 check in sentences (keys `t4_*`): cells checkable, reproduced and not; how close the cells
    that differ are in Z (within `readings.TABLE4_Z_TOLERANCE`), how many configurations tie with the optimum
    (a weak test of n_h), how far a loss shift of the digitising spread moves N and Z, the bootstrap shares of
    the paper's configuration, and whether rows and columns follow the paper's pattern."""
    tol = readings.TABLE4_Z_TOLERANCE
    targets = sorted(check.target_loss.unique(), reverse=True)
    contexts = sorted(check.context.unique())
    counts = check.status.value_counts()
    reproduced = int(counts.get("reproduced", 0))
    wrong, right = check[check.status == "differs"], check[check.status == "reproduced"]
    z_gaps, near = [], []  # Z(paper's H) / Z(ours) − 1 (None: the paper's H cannot reach the loss); ties
    for r in wrong.itertuples():
        z = _z_by_heads(fits, r.target_loss, r.context)
        z_gaps.append(z[r.paper] / z[r.ours] - 1 if r.ours is not None and r.paper in z else None)
        near.append([h for h, v in z.items() if v / min(z.values()) - 1 <= tol])
    kv_near = {h[1] for hs in near for h in hs}
    tied_agreeing = 0  # agreeing cells where another configuration also lies within the tolerance
    for r in right.itertuples():
        z = _z_by_heads(fits, r.target_loss, r.context)
        tied_agreeing += sum(v / min(z.values()) - 1 <= tol for v in z.values()) > 1
    gaps = [g for g in z_gaps if g is not None]
    shift = readings.loss_shift_effect(fits, fig2.FIG2_SETTING, float(loss_spread))
    rows_ok, cols_ok = search.grid_pattern(search.grid(fits, targets, contexts, fig2.FIG2_SETTING), targets, contexts)
    near_sentence = ""
    if near:
        counts_near = ", ".join(str(len(hs)) for hs in near)
        near_sentence = (f"This is a weak test of n_h: in the cells that differ, {counts_near} "
                         "of the seven configurations (our optimum included) lie within that tolerance"
                         + (f", all with n_kv = {next(iter(kv_near))}, so it checks mostly the number of KV heads"
                            if len(kv_near) == 1 else "")
                         + f"; and in {tied_agreeing} of the {reproduced} cells that agree exactly, another "
                         "configuration lies within it too, so the exact agreements are as weak a test of n_h.")
    differ = "No checkable cell differs."
    if len(wrong) > 0:
        cases = "; ".join(f"ℒ* = {r.target_loss:g} at {format_tokens(r.context)}: paper {r.paper}, ours {r.ours}, "
                          + (f"+{format_number(100 * g)}% Z" if g is not None else "the paper H cannot reach the loss")
                          for r, g in zip(wrong.itertuples(), z_gaps))
        differ = (f"The cells that differ are close calls, where the paper's configuration costs little more Z than "
                  f"ours ({cases}), so small changes in the fits or the shape rule flip them." if gaps else "")
    return {
        "t4_checkable": reproduced + int(counts.get("differs", 0)), "t4_reproduced": reproduced,
        "t4_not": int(counts.get("not checkable", 0)),
        "t4_family_reproduced": int((check_family.status == "reproduced").sum()),
        "t4_near_sentence": near_sentence,
        "t4_zgap": f"{format_number(100 * max(gaps))}%" if gaps else "n/a",
        "t4_within": reproduced + sum(g <= tol for g in gaps), "t4_ztol": f"{100 * tol:g}%",
        "t4_shift_n": f"{format_number(100 * shift['params'][0])}–{format_number(100 * shift['params'][1])}%",
        "t4_shift_z": f"{format_number(100 * shift['z'][0])}–{format_number(100 * shift['z'][1])}%",
        "t4_wrong_share": _range_pct(wrong.paper_share), "t4_right_share": _range_pct(right.paper_share),
        "t4_rows_ok": f"{rows_ok} of {len(targets)}", "t4_cols_ok": f"{cols_ok} of {len(contexts)}",
        "t4_differ_sentence": differ,
        "t4_wrong": "; ".join(f"ℒ* = {r.target_loss:g} at {format_tokens(r.context)}: paper {r.paper}, ours {r.ours}"
                              for r in wrong.itertuples()) or "none",
    }


def headline_words(fits: Mapping[Heads, PowerLaw], boot: Bootstrap, data: Mapping, head: dict) -> dict[str, str]:
    """Figure 1's headline from the fits (`fig2.headline`'s dict) in words: N* of (8, 1) with its 95%
    bootstrap interval, its label 12·L·d², the savings and the loss gain at equal Z (labelled an
    extrapolation when the size it takes exceeds the largest (8, 1) model of Figure 2), the optimum at the
    target, and the bootstrap share of (8, 1)."""
    target = head["target"]
    samples = np.array([boot.samples[(8, 1)][i] for i in range(boot.resamples)])
    n_boot = np.array([scaling.PowerLaw(*s).params_for_loss(target) if s[2] < target else np.nan for s in samples])
    label_star = 12 * head["layers_star"] * head["d_model_star"] ** 2 / 1e9  # the paper labels sizes by 12·L·d²
    beyond = head["params_equal_z"] / max(data[(8, 1)][0])
    ranked = search.search(fits, target, fig2.CONTEXT, fig2.FIG2_SETTING)
    shares = search.confidence(boot, target, fig2.CONTEXT, fig2.FIG2_SETTING)
    return {
        "target": f"{target:g}", "n_star": format_count(head["params_star"]),
        "n_star_ci": f"{format_count(np.nanpercentile(n_boot, 2.5))}–{format_count(np.nanpercentile(n_boot, 97.5))}",
        "n_named": format_count(head["paper_optimum"]["params"]), "label_star": f"{format_number(label_star)}B",
        "n_base": format_count(head["baseline"]["params"]), "min_loss_81": f"{min(data[(8, 1)][1]):.3f}",
        "extrapolation": "an extrapolation" if target < min(data[(8, 1)][1]) else "inside the data",
        "mem_saving": f"{format_number(100 * head['memory_saving'])}%",
        "flops_saving": f"{format_number(100 * head['flops_saving'])}%",
        "loss_gain": f"{format_number(head['loss_gain'])}",
        "loss_gain_note": (f" (an extrapolation: the size that spends the baseline's Z is {format_number(beyond)} "
                           "times the largest (8, 1) model in Figure 2, and the loss it reaches lies below every "
                           "plotted loss)" if beyond > 1 else ""),
        "best_at_target": f"({ranked[0].heads[0]}, {ranked[0].heads[1]})",
        "conf_81": f"{100 * shares.get((8, 1), 0):.0f}%",
    }


def named_words() -> dict[str, str]:
    """The paper's two named models' savings under Figure 2's accounting and under the equations as written
    (`readings.named_models`, the function chapter 1 reads)."""
    named, named_eq = readings.named_models("figure2"), readings.named_models("equations_as_written")
    return {"named_mem_saving": f"{format_number(100 * named['memory_saving'])}%",
            "named_flops_saving": f"{format_number(100 * named['flops_saving'])}%",
            "named_mem_saving_eq": f"{format_number(100 * named_eq['memory_saving'])}%",
            "named_flops_saving_eq": f"{format_number(100 * named_eq['flops_saving'])}%",
            "kv_share": f"{100 * named['kv_share_1b_mha']:.0f}%"}


def context_words(fits: Mapping[Heads, PowerLaw], target: float, context: int) -> dict[str, str]:
    """The headline recomputed at another context (keys `ctx_*`)."""
    at_context = fig2.headline(fits, target=target, context=context)
    best = search.search(fits, target, context, fig2.FIG2_SETTING)[0]
    return {"ctx_T": format_tokens(context),
            "ctx_mem_saving": f"{format_number(100 * at_context['memory_saving'])}%",
            "ctx_flops_saving": f"{format_number(100 * at_context['flops_saving'])}%",
            "ctx_loss_gain": f"{format_number(at_context['loss_gain'])}",
            "ctx_best": f"({best.heads[0]}, {best.heads[1]})",
            "ctx_note": "the context of the paper's headline" if context == fig2.CONTEXT else
            "the context this page was run for; the paper's claims below stay at 128K"}


def claim_words(rows: list[dict], head: dict, claims: Mapping[str, paper.Claim]) -> dict[str, str | int]:
    """The worked example's claims table (`readings.worked_example_rows`) in words: how many text claims are
    reproduced, differ or cannot be checked, how many bars reproduce, the 512K memory share, and whether the
    savings agree with the paper's in size and in direction."""
    by_id = {r["claim_id"]: r for r in rows if r.get("claim_id")}
    bars = [r for r in rows if str(r.get("claim_id") or "").startswith("fig1_bar_")]
    text = [r for r in rows if not str(r.get("claim_id") or "").startswith("fig1_bar_")]
    share = by_id["memory_share_512k"]
    gap = (head["memory_saving"] - claims["fig1_memory_saving"].value,
           head["flops_saving"] - claims["fig1_flops_saving"].value)
    savings_match = all(by_id[c]["status"] == "reproduced" for c in ("fig1_memory_saving", "fig1_flops_saving"))
    bars_ok = sum(r["status"] == "reproduced" for r in bars)
    return {
        "n_claims": len(text), "n_reproduced": sum(r["status"] == "reproduced" for r in text),
        "n_differs": sum(r["status"] == "differs" for r in text),
        "n_not_checkable": sum(r["status"] == "not checkable" for r in text),
        "n_bar_rows": len(bars), "n_bar_rows_reproduced": bars_ok,
        "share_512k": f"{format_number(100 * share['ours'])}%",
        "share_512k_verdict": "within" if share["status"] == "reproduced" else "not within",
        "share_512k_tol": f"{100 * claims['memory_share_512k'].tolerance:g} points",
        "saving_direction": "larger" if min(gap) > 0 else "smaller" if max(gap) < 0 else "mixed",
        "sizes_sentence": "The sizes agree within the stated tolerances:" if savings_match else "The sizes do not:",
        "direction_sentence": ("The direction of the paper's result survives: "
                               if head["memory_saving"] > 0 and head["flops_saving"] > 0 else
                               "The direction of the paper's result does not survive here: "),
        "size_direction": "smaller" if head["params_star"] < head["paper_optimum"]["params"] else "larger",
        "bars_ok": "none" if bars_ok == 0 else str(bars_ok),
    }


def label_words() -> dict[str, str]:
    """How the paper labels sizes: Llama 3.2 1B counted with three FFN matrices (every weight) and with two,
    against its published count; 12·L·d² for the 1.2B backbone against its MHA and (32, 8) counts; and what
    (32, 8) adds over (24, 8) in FLOPs and parameters under Figure 2's accounting."""
    llama = PUBLIC_MODELS["llama-3.2-1b"]
    s = llama.shape
    counts_3 = s.params().numel  # every weight, RMSNorm gains included
    ffn_extra = s.layers * s.d_model * s.d_ff
    c24, c32 = fig2.shape_cost(Shape(36, 1536, 24, 8)), fig2.shape_cost(fig2.BASELINE)
    return {"llama_published": f"{llama.published_params:,}", "llama_three": f"{counts_3:,}",
            "llama_two": f"{counts_3 - ffn_extra:,}",
            "llama_two_off": f"{format_number(100 * ffn_extra / llama.published_params)}%",
            "label_12ld2": f"{12 * 36 * 1536**2:,}",
            "label_mha": f"{Shape(36, 1536, 24, 24).params().non_embedding:,}",
            "label_total": f"{Shape(36, 1536, 32, 8).params().total:,}",
            "flops_24_32": f"{100 * (c32['flops'] / c24['flops'] - 1):.0f}%",
            "params_24_32": f"{format_number(100 * (c32['params'] / c24['params'] - 1))}%"}
