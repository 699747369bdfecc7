"""What the paper's Figure 2 plots: its models, its units, and the loss laws they imply.

Figure 2 shows, at T = 128K in BF16, the loss of every trained model of seven head configurations
against inference memory (bytes), FLOPs and Z. `gqa digitise` recovers the markers; this module
turns them into models and finds what was plotted:

* **FLOPs unit.** For MHA (n_h = n_kv) Eq. 3 per token equals exactly twice Eq. 4 in values, i.e. the
  memory in BF16 bytes. The plotted FLOPs of the MHA series are T times their plotted bytes, so the
  FLOPs axis is Eq. 3 per sequence: T tokens, each attending to the full context T.
* **Sizes.** With that unit, each GQA model's memory and FLOPs give two linear equations in its
  parameter count N and layer count L, solved exactly. The layers come out near 6, 8, ..., 16 and the
  hidden sizes near 128·L with N the *non-embedding* count (SwiGLU, three FFN matrices): not the
  Table 9 shapes. `identify` assigns every model (MHA included) the (L, 128·L) shape that predicts its
  memory and FLOPs best and reports the residuals.
* **Z** is Eq. 5 on memory in bytes and FLOPs per sequence.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from gqa import scaling, search
from gqa.search import CostSetting, Heads
from gqa.shapes import PAPER_HEAD_DIM, PAPER_SCALING_SHAPES, Shape, non_embedding_params

CONTEXT = 131_072  # Figure 2 is drawn at 128K
BYTES = 2  # BF16 weights and KV cache

# How Figure 2 (and so, we take it, Table 4) counts cost: N without embeddings, FLOPs per sequence of
# T tokens, Z on bytes. Step 3 keeps the paper's Appendix B.1 shape conversion (anchors None).
FIG2_SETTING = CostSetting(params="non_embedding", flops_per="context", z_memory="bytes")
# The same accounting with sizes turned into shapes along Figure 2's own family, d = 128·L.
FAMILY_SETTING = replace(FIG2_SETTING, anchors=((1e5, 128.0), (1e13, 128.0)))


def models(points: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per plotted model: series, index k within the series (1 = highest loss), the loss
    (mean over the three panels and its spread), memory in bytes, FLOPs (the axis' unit) and Z."""
    if points is None:
        from gqa.paper import table

        points = table("fig2_points")
    points = points.assign(k=points.groupby(["panel", "n_h", "n_kv"]).loss.rank(ascending=False).astype(int))
    wide = points.pivot_table(index=["n_h", "n_kv", "k"], columns="panel", values=["x", "loss"])
    if wide.isna().any().any():
        raise ValueError("some models are missing from a panel; the digitised points do not pair up")
    out = pd.DataFrame({
        "loss": wide["loss"].mean(axis=1), "loss_spread": wide["loss"].max(axis=1) - wide["loss"].min(axis=1),
        "memory_bytes": wide["x", "memory_bytes"], "flops": wide["x", "flops"], "z": wide["x", "z"]})
    return out.reset_index().sort_values(["n_h", "n_kv", "k"], ascending=[False, False, True],
                                         ignore_index=True)


def flops_unit(fig_models: pd.DataFrame, context: int = CONTEXT) -> pd.Series:
    """Plotted FLOPs over Eq. 3 per token for each MHA model, in units of T (1.0: per sequence).

    For n_h = n_kv, Eq. 3 per token (2N + 4·T·L·d_h·n_h) equals Eq. 4 in BF16 bytes exactly, whatever
    N and L are, so the ratio needs no assumption about the model.
    """
    mha = fig_models[fig_models.n_h == fig_models.n_kv]
    return (mha.flops / (mha.memory_bytes / BYTES * 2) / context).rename("flops_unit_in_T")


def solve_sizes(fig_models: pd.DataFrame, context: int = CONTEXT, head_dim: int = PAPER_HEAD_DIM,
                flops_multiplier: float | None = None) -> pd.DataFrame:
    """N and L of each GQA model from its memory and FLOPs (MHA rows: NaN, the system is singular).

    M/2 = N + 2·T·L·d_h·n_kv and C/k = 2N + 4·T·L·d_h·n_h, k the FLOPs unit (default T).
    """
    k = context if flops_multiplier is None else flops_multiplier
    rows = []
    for r in fig_models.itertuples():
        if r.n_h == r.n_kv:
            rows.append((np.nan, np.nan))
            continue
        system = [[1.0, 2.0 * context * head_dim * r.n_kv], [2.0, 4.0 * context * head_dim * r.n_h]]
        n, layers = np.linalg.solve(system, [r.memory_bytes / BYTES, r.flops / k])
        rows.append((n, layers))
    solved = np.array(rows)
    return fig_models.assign(params_solved=solved[:, 0], layers_solved=solved[:, 1])


def width_for(n_params: float, layers: int, heads: Heads, head_dim: int = PAPER_HEAD_DIM) -> float:
    """The hidden size d that gives a model of `layers` layers n_params non-embedding parameters."""
    lo, hi = 8.0, 65536.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if non_embedding_params(layers, mid, *heads, head_dim) < n_params:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def aspect_ratio(solved: pd.DataFrame, head_dim: int = PAPER_HEAD_DIM) -> pd.Series:
    """d / L of each solved GQA model, with L rounded to the nearest integer."""
    gqa = solved.dropna(subset=["layers_solved"])
    ratios = [width_for(r.params_solved, round(r.layers_solved), (r.n_h, r.n_kv), head_dim) / round(r.layers_solved)
              for r in gqa.itertuples()]
    return pd.Series(ratios, index=gqa.index, name="d_over_L")


def predicted(layers: int, d_model: int, heads: Heads, context: int = CONTEXT,
              head_dim: int = PAPER_HEAD_DIM) -> tuple[int, float, float, float]:
    """(N non-embedding, memory bytes, FLOPs per sequence, Z) of one shape, as Figure 2 counts them."""
    c = search.cost_of_shape(Shape(layers, d_model, *heads, head_dim=head_dim), context, FIG2_SETTING)
    return c.params, c.memory_bytes, c.flops, c.z


@dataclass(frozen=True)
class Family:
    """A shape family: d = ratio · L, L from the listed layer counts."""

    ratio: int
    layers: tuple[int, ...]

    def shapes(self) -> list[tuple[int, int]]:
        return [(L, self.ratio * L) for L in self.layers]


FIG2_FAMILY = Family(128, tuple(range(2, 41)))
TABLE9_FAMILY = list(PAPER_SCALING_SHAPES.values())


def identify(fig_models: pd.DataFrame, shapes: list[tuple[int, int]] | None = None,
             context: int = CONTEXT) -> pd.DataFrame:
    """Give each model the shape (from `shapes`) whose memory and FLOPs match its plotted ones best
    (least squares in log), with N, the predicted coordinates and the log10 residuals."""
    shapes = shapes or FIG2_FAMILY.shapes()
    rows = []
    for r in fig_models.itertuples():
        heads = (int(r.n_h), int(r.n_kv))
        best = None
        for layers, d_model in shapes:
            n, memory, flops, z = predicted(layers, d_model, heads, context)
            err = np.log10(memory / r.memory_bytes) ** 2 + np.log10(flops / r.flops) ** 2
            if best is None or err < best[0]:
                best = (err, layers, d_model, n, memory, flops, z)
        _, layers, d_model, n, memory, flops, z = best
        rows.append({"layers": layers, "d_model": d_model, "params": n, "memory_pred": memory,
                     "flops_pred": flops, "z_pred": z, "memory_resid": np.log10(r.memory_bytes / memory),
                     "flops_resid": np.log10(r.flops / flops), "z_resid": np.log10(r.z / z)})
    return pd.concat([fig_models.reset_index(drop=True), pd.DataFrame(rows)], axis=1)


def fit_data(identified: pd.DataFrame) -> dict[Heads, tuple[list[float], list[float]]]:
    """{H: (N non-embedding, loss)} for gqa.scaling."""
    return {(int(h[0]), int(h[1])): (list(g.params.astype(float)), list(g.loss))
            for h, g in identified.groupby(["n_h", "n_kv"], sort=False)}


# --- Checking the paper's Step 3 with the fits of Figure 2's points --------------------------------

BASELINE = Shape(36, 1536, 32, 8, name="Llama-3-style (32, 8) at 1.2B")  # Table 5 / Figure 1 baseline
PAPER_OPTIMUM = Shape(36, 2048, 8, 1, name="(8, 1) at 1.8B")  # Table 7's 1.8B shape with (8, 1)


def shape_cost(shape: Shape, context: int = CONTEXT, setting: CostSetting = FIG2_SETTING) -> dict:
    """One exact shape costed (Figure 2's accounting unless told): N (non-embedding), bytes of weights and KV
    cache, FLOPs (per sequence under Figure 2's accounting; time-invariant and total), and Z."""
    return _parts(search.cost_of_shape(shape, context, setting), context, setting)


def _parts(c: search.Candidate, context: int, setting: CostSetting) -> dict:
    parts = search.cost_parts(c, context, setting)  # the one split of a costed model
    return {"params": c.params, **{k: parts[k] for k in ("weights_bytes", "kv_bytes", "memory_bytes",
                                                          "flops_invariant", "flops")}, "z": c.z}


def table4_check(fits: dict, setting: CostSetting = FIG2_SETTING, table: pd.DataFrame | None = None,
                 boot: scaling.Bootstrap | None = None) -> pd.DataFrame:
    """Table 4 cell by cell: the paper's optimum, ours from `fits`, and a status.

    A cell whose paper optimum is not among the fitted configurations is 'not checkable': the
    optimum over a subset says nothing about a configuration outside it. When the paper's optimum is
    in the subset, it must also be the subset's optimum, so ours must equal it. With a bootstrap,
    `ours_share` is the share of resamples whose optimum is ours and `paper_share` the share whose optimum
    is the paper's (checkable cells only). `extrapolated`: our optimum's N* lies outside the sizes its fit saw.
    """
    from gqa.paper import table as paper_table

    table = paper_table("table4") if table is None else table
    cells = [(float(r.target_loss), int(r.context)) for r in table.itertuples()]
    shares = search.grid_shares(boot, cells, setting, heads=list(fits)) if boot is not None else {}
    rows = []
    for r, cell in zip(table.itertuples(), cells):
        paper = (int(r.n_h), int(r.n_kv))
        try:
            best = search.search(fits, *cell, setting)[0]
            ours, extrapolated = best.heads, bool(best.extrapolation > 1)
        except ValueError:
            ours, extrapolated = None, False
        if paper not in fits:
            status, reason = "not checkable", f"{paper} is not in Figure 2"
        elif ours == paper:
            status, reason = "reproduced", ""
        else:
            status, reason = "differs", f"ours {ours}" if ours else "unreachable with these fits"
        share = shares[cell].get(paper, 0.0) if shares and status != "not checkable" else np.nan
        rows.append({"target_loss": r.target_loss, "context": int(r.context), "paper": paper, "ours": ours,
                     "status": status, "reason": reason, "paper_share": share,
                     "ours_share": shares[cell].get(ours, 0.0) if shares else np.nan, "extrapolated": extrapolated})
    return pd.DataFrame(rows)


def headline(fits: dict, target: float = 2.615, context: int = CONTEXT, heads: Heads = (8, 1),
             setting: CostSetting = FIG2_SETTING) -> dict:
    """Figure 1's claim from the fits: the size `heads` needs to reach the baseline's loss, its memory
    and FLOPs savings against the exact baseline shape, and the loss it reaches at the baseline's Z."""
    cmp = search.compare({heads: fits[heads]}, target, context, BASELINE, setting, baseline_loss=target)
    ours = cmp.optimum
    ours_parts = search.cost_parts(ours, context, setting)
    base = _parts(cmp.baseline, context, setting)  # every number below under the one setting
    paper_models = shape_cost(PAPER_OPTIMUM, context, setting)
    return {
        "target": target, "context": context, "heads": heads, "params_star": fits[heads].params_for_loss(target),
        "layers_star": ours.layers,
        "d_model_star": ours.d_model, "baseline": base, "optimum_memory_bytes": ours.memory_bytes,
        "optimum_flops": ours.flops, "optimum_z": ours.z,
        "optimum_weights_bytes": ours_parts["weights_bytes"], "optimum_flops_invariant": ours_parts["flops_invariant"],
        "memory_saving": cmp.memory_saving, "flops_saving": cmp.flops_saving,
        "params_equal_z": cmp.params_at_equal_cost, "loss_equal_z": cmp.loss_at_equal_cost,
        "loss_gain": cmp.loss_gain,
        "paper_optimum": paper_models,
        "paper_models_memory_saving": 1 - paper_models["memory_bytes"] / base["memory_bytes"],
        "paper_models_flops_saving": 1 - paper_models["flops"] / base["flops"],
    }
