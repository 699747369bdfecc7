"""Plotting helpers shared by the notebooks (matplotlib; one style everywhere)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from cycler import cycler
from matplotlib.colors import to_rgb

from gqa.units import format_count, format_tokens

# One colour per Table 2 component, so Figures 7 and 8 read together.
COMPONENT_COLORS = {
    "input embedding": "#8da0cb",
    "attention projections": "#66c2a5",
    "attention operator": "#fc8d62",
    "FFN": "#a6d854",
    "output projection": "#e78ac3",
    "KV cache": "#e5c494",
}
INVARIANT_COLOR, VARIANT_COLOR = "#4c72b0", "#dd8452"


# Seaborn's "deep" and "colorblind" palettes (the colours of its set_theme and color_palette), and the
# rcParams its set_theme(context="notebook", style="whitegrid") sets: the look the figures always had,
# without importing seaborn (and scipy.stats with it), which cost every notebook kernel seconds.
DEEP = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974", "#64B5CD"]
COLORBLIND = ["#0173B2", "#DE8F05", "#029E73", "#D55E00", "#CC78BC", "#CA9161", "#FBAFE4", "#949494", "#ECE133",
              "#56B4E9"]
WHITEGRID = {
    "axes.axisbelow": True, "axes.edgecolor": ".8", "axes.grid": True, "axes.labelcolor": ".15",
    "axes.labelsize": 12.0, "axes.linewidth": 1.25, "axes.titlesize": 12.0,
    "font.sans-serif": ["Arial", "DejaVu Sans", "Liberation Sans", "Bitstream Vera Sans", "sans-serif"],
    "font.size": 12.0, "grid.color": ".8", "grid.linewidth": 1.0, "legend.fontsize": 11.0,
    "legend.title_fontsize": 12.0, "lines.solid_capstyle": "round", "patch.edgecolor": "w",
    "patch.force_edgecolor": True, "text.color": ".15",
    "xtick.bottom": False, "xtick.color": ".15", "xtick.labelsize": 11.0, "xtick.major.size": 6.0,
    "xtick.major.width": 1.25, "xtick.minor.size": 4.0, "xtick.minor.width": 1.0,
    "ytick.left": False, "ytick.color": ".15", "ytick.labelsize": 11.0, "ytick.major.size": 6.0,
    "ytick.major.width": 1.25, "ytick.minor.size": 4.0, "ytick.minor.width": 1.0,
}


# set_theme also remapped matplotlib's one-letter colour codes ("k--" draws in near-black (0.1, 0.1, 0.1)).
COLOR_CODES = dict(zip("bgrmyck", [*(DEEP[i] for i in (0, 2, 3, 4, 8, 9)), (0.1, 0.1, 0.1)]))


def use_style() -> None:
    from matplotlib.colors import colorConverter

    colorConverter.colors.update({code: to_rgb(color) for code, color in COLOR_CODES.items()})
    plt.rcParams.update({**WHITEGRID, "axes.prop_cycle": cycler(color=[to_rgb(c) for c in DEEP])})
    plt.rcParams.update({"figure.dpi": 110, "savefig.bbox": "tight", "axes.titleweight": "bold"})


def stacked_cost_bars(ax: plt.Axes, labels: Sequence[str], invariant: Sequence[float],
                      variant: Sequence[float], ylabel: str, title: str = "") -> None:
    """Figure-1-style bars: time-variant stacked on time-invariant, totals written on top."""
    ax.bar(labels, invariant, color=INVARIANT_COLOR, label="time-invariant (weights)")
    ax.bar(labels, variant, bottom=invariant, color=VARIANT_COLOR, label="time-variant (context)")
    for i, (a, b) in enumerate(zip(invariant, variant)):
        ax.annotate(f"{a + b:.3g}", (i, a + b), ha="center", va="bottom", fontsize=9,
                    xytext=(0, 2), textcoords="offset points")
        ax.annotate(f"{a:.3g}", (i, a / 2), ha="center", va="center", fontsize=8, color="white")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.margins(y=0.12)


def component_share_area(ax: plt.Axes, contexts: Sequence[int], shares: dict[str, list[float]],
                         title: str = "") -> None:
    """Figures-7/8-style stacked shares of each component against context length (log2 axis)."""
    names = list(shares)
    ax.stackplot(contexts, [shares[n] for n in names], labels=names,
                 colors=[COMPONENT_COLORS.get(n, "#999999") for n in names], alpha=0.9)
    ax.set_xscale("log", base=2)
    ticks = [t for t in contexts if t & (t - 1) == 0][::2] or list(contexts)
    ax.set_xticks(ticks, [format_tokens(t) for t in ticks])
    ax.set_xlim(min(contexts), max(contexts))
    ax.set_ylim(0, 1)
    ax.set_xlabel("context length T (tokens)")
    ax.set_ylabel("share")
    ax.set_title(title)


BACKEND_STYLE = {"sdpa": ("#4c72b0", "o"), "repeat": ("#c44e52", "s"), "eager": ("#55a868", "^"),
                 "flash": ("#8172b2", "D")}


def context_axis(ax: plt.Axes, contexts: Sequence[int], log_y: bool = True) -> None:
    """Log2 context axis labelled 1K, 4K, ... and a log y axis."""
    ax.set_xscale("log", base=2)
    if log_y:
        ax.set_yscale("log")
    ticks = sorted(set(int(t) for t in contexts))
    ax.set_xticks(ticks, [format_tokens(t) for t in ticks])
    ax.minorticks_off() if not log_y else None
    ax.set_xlabel("context length T (tokens)")


def backend_lines(ax: plt.Axes, frame, value: str, ylabel: str, title: str = "") -> None:
    """One line per attention backend of `value` against context (rows of one phase and n_kv)."""
    for backend, rows in frame.sort_values("context").groupby("backend", sort=False):
        color, marker = BACKEND_STYLE.get(backend, ("#777777", "x"))
        ax.plot(rows["context"], rows[value], marker=marker, color=color, label=backend, lw=1.6, ms=5)
    context_axis(ax, frame["context"])
    ax.set_ylabel(ylabel)
    ax.set_title(title)


def heads_palette(heads: Sequence[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """A stable, categorical colour per head configuration (ordered by n_h, then n_kv, largest first):
    neighbouring configurations such as (8, 4), (8, 2) and (8, 1) get clearly different hues."""
    ordered = sorted(set(heads), key=lambda h: (-h[0], -h[1]))
    hexes = COLORBLIND if len(ordered) <= 10 else plt.get_cmap("tab20").colors
    return {h: to_rgb(hexes[i % len(hexes)]) for i, h in enumerate(ordered)}


def loss_vs_params(ax: plt.Axes, frame, x: str = "n_non_embedding", y: str = "val_loss",
                   title: str = "") -> None:
    """Final loss against parameters, one line per head configuration (runs as dots)."""
    heads = list(zip(frame["n_heads"], frame["n_kv_heads"]))
    palette = heads_palette(heads)
    for (n_h, n_kv), rows in frame.groupby(["n_heads", "n_kv_heads"], sort=False):
        rows = rows.sort_values(x)
        ax.plot(rows[x], rows[y], marker="o", ms=5, lw=1.2, color=palette[(n_h, n_kv)],
                label=f"({n_h}, {n_kv})")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(plt.NullFormatter())  # labels on decades only: minor ones collide
    ax.set_xlabel("non-embedding parameters N")
    ax.set_ylabel("validation loss (nats/token)")
    ax.set_title(title)
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: tuple(-int(v) for v in labels[i][1:-1].split(",")))
    ax.legend([handles[i] for i in order], [labels[i] for i in order], title="(n_h, n_kv)", fontsize=8)


def fitted_panel(ax: plt.Axes, points: dict, curves: dict, xlabel: str, title: str = "",
                 inside: dict | None = None) -> None:
    """Loss against a cost, Figure-2 style: dots are trained models, lines are fits, bands bootstrap 95%.

    points: H -> (x, loss) arrays; curves: H -> (x, loss, lower, upper) arrays; inside: H -> boolean array,
    True where the curve's size lies inside the sizes its fit saw (outside is drawn dashed: extrapolation).
    """
    import numpy as np

    palette = heads_palette(list(points) + list(curves))
    for h in sorted(curves, key=lambda h: (-h[0], -h[1])):
        x, y, lo, hi = (np.asarray(v, float) for v in curves[h])
        seen = np.ones(len(x), bool) if inside is None or h not in inside else np.asarray(inside[h], bool)
        if not seen.all():  # the whole curve dashed, the part inside the data drawn solid over it
            ax.plot(x, y, color=palette[h], lw=1.0, ls="--")
        ax.plot(np.where(seen, x, np.nan), y, color=palette[h], lw=1.3, label=f"({h[0]}, {h[1]})")
        ax.fill_between(x, lo, hi, color=palette[h], alpha=0.15, lw=0)
    for h, (x, y) in points.items():
        ax.scatter(x, y, color=palette[h], s=18, zorder=3, edgecolor="white", linewidth=0.5)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(plt.NullFormatter())  # labels on decades only: minor ones collide
    ax.set_xlabel(xlabel)
    ax.set_ylabel("validation loss")
    ax.set_title(title)


def _grid_axes(ax: plt.Axes, rgb, targets: Sequence[float], contexts: Sequence[int], title: str) -> None:
    """The frame of a Table-4 grid: coloured cells, target losses down, contexts across."""
    ax.imshow(rgb, aspect="auto")
    ax.set_xticks(range(len(contexts)), [format_tokens(c) for c in contexts])
    ax.set_yticks(range(len(targets)), [f"{t:g}" for t in targets])
    ax.set_xlabel("context length T")
    ax.set_ylabel("target loss L*")
    ax.grid(False)
    ax.set_title(title)


def heads_grid(ax: plt.Axes, cells: dict, targets: Sequence[float], contexts: Sequence[int],
               confidence: dict | None = None, title: str = "", extrapolated: set | None = None,
               palette: dict | None = None) -> None:
    """Table-4 style grid: the optimal (n_h, n_kv) per target loss (rows) and context (columns); cells in
    `extrapolated` (whose N* lies outside the sizes the fit saw) are marked with a dagger. `palette`: one
    colour per configuration shared by several grids (default: this grid's own)."""
    import numpy as np

    winners = sorted({h for h in cells.values() if h is not None}, key=lambda h: (-h[0], -h[1]))
    palette = palette or heads_palette(winners)
    rgb = np.ones((len(targets), len(contexts), 3))
    for i, target in enumerate(targets):
        for j, context in enumerate(contexts):
            h = cells[(target, context)]
            if h is not None:
                rgb[i, j] = [0.35 + 0.65 * c for c in palette[h]]  # lightened for legible text
            text = "—" if h is None else f"{h[0]},{h[1]}" + ("†" if extrapolated and (target, context) in extrapolated
                                                               else "")
            if confidence and h is not None:
                text += f"\n{100 * confidence[(target, context)]:.0f}%"
            ax.text(j, i, text, ha="center", va="center", fontsize=9)
    _grid_axes(ax, rgb, targets, contexts, title)


def designed_grid(verdict, shares: dict, beyond: set, split: int = 8192) -> plt.Figure:
    """A designed study's Table 4 (`gqa.effect.Verdict`) as stacked panels narrow enough for a phone: the
    contexts below `split` (around the study's balance) above, the paper's from `split` below, one colour per
    configuration in both. A black line separates the rows inside the range every configuration reached (the
    verdict's) from the rest; `shares` are the seed-noise shares of each cell, `beyond` the extrapolated cells."""
    cells = verdict.cells()
    targets = [r.target for r in verdict.rows]
    groups = [g for g in ([c for c in verdict.contexts if c < split], [c for c in verdict.contexts if c >= split]) if g]
    titles = (["around the study's balance", "at the paper's contexts"] if len(groups) == 2 else
              ["optimum by target loss and context"])
    palette = heads_palette([h for h in cells.values() if h is not None])
    width = max(len(g) for g in groups)
    # narrow enough that a phone shows it at about three quarters of its size: cell text stays near 10 px
    fig, axes = plt.subplots(len(groups), 1, figsize=(0.78 * width + 1.3, (0.42 * len(targets) + 1.0) * len(groups)),
                             squeeze=False)
    for ax, contexts, title in zip(axes[:, 0], groups, titles):
        heads_grid(ax, cells, targets, contexts, shares, title, beyond, palette)
        for i in range(len(targets) - 1):
            if verdict.rows[i].inside != verdict.rows[i + 1].inside:
                ax.axhline(i + 0.5, color="black", lw=2)
    fig.tight_layout()
    return fig


def regime_grids(grids: dict, labels: Sequence[str], batches: Sequence[int], targets: Sequence[float],
                 contexts: Sequence[int]) -> plt.Figure:
    """Small multiples of Table-4 grids (`regimes.Grid`): one row per way of costing (`labels`), one column
    per batch, `grids[(label, batch)]` in each, a dagger on extrapolated optima; one colour per configuration
    across all panels."""
    palette = heads_palette([h for g in grids.values() for h in g.cells.values() if h is not None])
    fig, axes = plt.subplots(len(labels), len(batches), figsize=(3.4 * len(batches) + 0.6, 2.6 * len(labels) + 0.4),
                             squeeze=False)
    for i, label in enumerate(labels):
        for j, batch in enumerate(batches):
            ax = axes[i][j]
            g = grids[(label, batch)]
            heads_grid(ax, g.cells, targets, contexts, title=f"{label}, batch {batch}", palette=palette,
                       extrapolated=set(g.extrapolated))
            ax.title.set_fontsize(9)
            for text in ax.texts:
                text.set_fontsize(8.5)
            ax.tick_params(labelsize=7.5)
            ax.xaxis.label.set_fontsize(8)
            ax.yaxis.label.set_fontsize(8)
    fig.tight_layout()
    return fig


STATUS_COLORS = {"reproduced": "#b8e0b8", "differs": "#f4b6b6", "not checkable": "#e6e6e6"}


def status_grid(ax: plt.Axes, frame, targets: Sequence[float], contexts: Sequence[int], title: str = "") -> None:
    """Table 4 checked cell by cell: 'paper / ours' in each cell, coloured by status.

    frame: rows with target_loss, context, paper, ours (tuples or None) and status.
    """
    import numpy as np
    from matplotlib.colors import to_rgb

    rgb = np.ones((len(targets), len(contexts), 3))
    for r in frame.itertuples():
        i, j = list(targets).index(r.target_loss), list(contexts).index(r.context)
        rgb[i, j] = to_rgb(STATUS_COLORS[r.status])
        ours = "—" if r.ours is None else f"{r.ours[0]},{r.ours[1]}"
        ax.text(j, i, f"{r.paper[0]},{r.paper[1]}\n{ours}", ha="center", va="center", fontsize=8.5,
                color="#222222" if r.status != "not checkable" else "#777777")
    _grid_axes(ax, rgb, targets, contexts, title)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=c, label=s) for s, c in STATUS_COLORS.items()], loc="upper left",
              bbox_to_anchor=(1.01, 1), fontsize=8, title="paper / ours")


AGREE_COLOR, DIFFER_COLOR = "#55a868", "#c44e52"


def spec_curve(values: Sequence[float | None], readings: Sequence[dict[str, str]],
               points: dict[str, dict[str, str]], ylabel: str, title: str = "", paper: float | None = None,
               band: tuple[float, float] | None = None,
               cells: Sequence[Sequence[bool]] | None = None, cell_labels: Sequence[str] = ()) -> plt.Figure:
    """A specification curve: one column per reading, sorted by its value (top panel, the paper's value as
    a line and its tolerance band shaded; the first reading, the default, ringed); optionally a
    reading x cell map of agreement (middle); and a dot matrix of the options each reading takes (bottom).

    `readings` are {point: option key}; `points` maps each point to {option key: plain-word label} in the
    order to draw (the labels of data/paper/readings.yaml, as `gqa readings` prints them). Readings without
    a value (None) are left out and counted in the title.
    """
    import numpy as np

    kept = [i for i, v in enumerate(values) if v is not None]
    order = sorted(kept, key=lambda i: (values[i], i))
    x = np.arange(len(order))
    rows = [(p, k) for p, keys in points.items() for k in keys]
    heights = [2.2] + ([0.22 * len(cells[0])] if cells is not None else []) + [0.24 * len(rows)]
    fig, axes = plt.subplots(len(heights), 1, figsize=(9, sum(heights) + 0.9), sharex=True,
                             gridspec_kw={"height_ratios": heights, "hspace": 0.08})
    top, matrix = axes[0], axes[-1]
    ys = np.array([values[i] for i in order], float)
    inside = np.ones(len(ys), bool) if band is None else (ys >= band[0]) & (ys <= band[1])
    if band is not None:
        top.axhspan(*band, color=AGREE_COLOR, alpha=0.12, lw=0, label="paper's tolerance")
    if paper is not None:
        top.axhline(paper, color="black", lw=1, ls="--", label=f"paper: {paper:g}")
    top.scatter(x[inside], ys[inside], s=9, color=AGREE_COLOR, label="reproduces", zorder=3)
    top.scatter(x[~inside], ys[~inside], s=9, color=DIFFER_COLOR, label="differs", zorder=3)
    if 0 in order:
        j = order.index(0)
        top.scatter([j], [ys[j]], s=80, facecolors="none", edgecolors="black", lw=1.2,
                    label="worked example (default reading)",
                    zorder=4)
    top.set_ylabel(ylabel)
    missing = len(values) - len(kept)
    top.set_title(title + (f" ({missing} readings without a value left out)" if missing else ""))
    top.legend(fontsize=8, loc="upper left", ncol=2)
    if cells is not None:
        grid = np.array([cells[i] for i in order], float).T
        axes[1].imshow(grid, aspect="auto", interpolation="nearest", vmin=0, vmax=1,
                       cmap=plt.matplotlib.colors.ListedColormap([DIFFER_COLOR, AGREE_COLOR]),
                       extent=(-0.5, len(order) - 0.5, len(cell_labels) - 0.5, -0.5))
        axes[1].set_yticks(range(len(cell_labels)), cell_labels, fontsize=7)
        axes[1].set_ylabel("agreement per cell")
        axes[1].grid(False)
    for r, (point, key) in enumerate(rows):
        used = [j for j, i in enumerate(order) if readings[i][point] == key]
        matrix.scatter(used, [r] * len(used), marker="|", s=30, lw=0.8, color="#333333")
    from gqa.readings import POINT_LABELS

    matrix.set_yticks(range(len(rows)), [f"{POINT_LABELS.get(p, p)}: {points[p][k]}" for p, k in rows], fontsize=10)
    matrix.set_ylim(len(rows) - 0.5, -0.5)
    matrix.set_xlim(-0.5, len(order) - 0.5)
    matrix.set_xlabel("readings, sorted by the value above")
    matrix.set_ylabel("option taken")
    for boundary in np.cumsum([len(k) for k in points.values()])[:-1]:
        matrix.axhline(boundary - 0.5, color="#999999", lw=0.6)
    return fig


def findings_chart(ax: plt.Axes, items: Sequence[dict], bands: Sequence[tuple[float, float]]) -> None:
    """The landing page's headline figure: each claim as ours over the paper's value (1 = the paper's), the
    range over every reading as a line, the worked example as a dot, the claim's tolerance shaded. `items`
    are `readings.findings` rows with a numeric paper value; `bands` their tolerance intervals (values)."""
    ratios = [v / float(item["paper"]) for item in items for v in (*item["range"], item["ours"]) if v and v > 0]
    left, right = min(ratios + [0.8]) / 1.25, max(ratios + [1.25]) * 1.25
    for y, (item, (lo, hi)) in enumerate(zip(items, bands)):
        paper = float(item["paper"])
        ax.fill_betweenx([y - 0.35, y + 0.35], max(lo / paper, left), hi / paper, color=AGREE_COLOR, alpha=0.2, lw=0,
                         label="the paper's value within its tolerance" if y == 0 else None)
        ax.plot([item["range"][0] / paper, item["range"][1] / paper], [y, y], color="#555555", lw=2,
                label="ours, range over every reading" if y == 0 else None)
        ax.scatter([item["ours"] / paper], [y], color="#c44e52", zorder=3, s=36,
                   label="ours, the worked example's reading" if y == 0 else None)
    ax.axvline(1, color="black", lw=1, ls="--")
    ax.set_xlim(left, right)
    ax.set_yticks(range(len(items)), [item["claim"] for item in items], fontsize=9)
    ax.set_ylim(len(items) - 0.5, -0.5)
    ax.set_xscale("log")
    ax.set_xlabel("ours / paper's value (1: the paper's)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)


def panel_grid(n: int, ncols: int = 2, panel: tuple[float, float] = (4.6, 3.4), sharey: bool = True):
    """n panels in rows of `ncols`, each `panel` inches: a figure that fits the book's column (about 9 in)
    instead of one long row shrunk to half its size. Returns (figure, the n axes, the spare axes or None;
    a spare slot is switched off and can hold a legend)."""
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(panel[0] * ncols, panel[1] * nrows), sharey=sharey,
                             squeeze=False)
    flat = list(grid.flat)
    for ax in flat[n:]:
        ax.axis("off")
    return fig, flat[:n], (flat[n] if len(flat) > n else None)


# --- What a figure shows, for checking its caption -------------------------------------------------


def _stem(label: str) -> str:
    """An axis label without its unit: 'prefill time (ms)' -> 'prefill time'."""
    import re

    return re.sub(r"\s*\([^()]*\)\s*$", "", label or "").strip().lower()


def panels(fig: plt.Figure) -> list[dict]:
    """Each data panel of a figure in reading order (rows top to bottom, then left to right): its title,
    axis labels, the label of a twin axis drawn over it, and its legend entries. Axes switched off (a
    legend's slot) and colorbars are not panels; a twin axis belongs to the panel it overlays."""
    out = []
    for main, *twins in _panel_groups(fig, legend_slots=False):
        legend = main.get_legend()
        box = main.get_position()
        out.append({"title": main.get_title(), "xlabel": main.get_xlabel(), "ylabel": main.get_ylabel(),
                    "twin_ylabels": [t.get_ylabel() for t in twins],
                    "legend": [t.get_text() for t in legend.get_texts()] if legend else [],
                    "position": [round(box.x0, 3), round(box.y0, 3)]})
    return out


def record_panels(name: str, fig: plt.Figure | None = None) -> None:
    """Glue what figure `name` shows (`panels`) under `panels:<name>`, for the caption check of the build,
    then show the figure (in a kernel) with what a phone needs: `show_responsive`."""
    import json

    from gqa_book.notebook import glue

    if fig is None:
        if not plt.get_fignums():
            return  # the cell drew nothing (say, no data under this profile): there is no figure to caption
        fig = plt.figure(plt.get_fignums()[-1])
    glue(f"panels:{name}", json.dumps(panels(fig)), display=False)
    show_responsive(fig)


def _panel_groups(fig: plt.Figure, legend_slots: bool = True) -> list[list[plt.Axes]]:
    """The figure's panels in reading order (rows top to bottom, then left to right), each as the axes drawn
    over one another in its box (a twin axis joins the panel it overlays). Colorbars are not panels;
    switched-off axes are only when they hold a legend (panel_grid's spare slot) and `legend_slots`."""
    groups: dict[tuple, list] = {}
    for ax in fig.axes:
        if hasattr(ax, "_colorbar") or (not ax.axison and not (legend_slots and ax.get_legend() is not None)):
            continue
        box = ax.get_position()
        groups.setdefault((round(box.x0, 3), round(box.y0, 3), round(box.x1, 3), round(box.y1, 3)), []).append(ax)
    return [groups[k] for k in sorted(groups, key=lambda k: (-k[1], k[0]))]


def side_by_side(fig: plt.Figure) -> bool:
    """Whether two or more panels share a row (what a phone's column cannot show at a readable size)."""
    rows = [round(group[0].get_position().y1, 2) for group in _panel_groups(fig)]
    return len(rows) != len(set(rows))


def panel_images(fig: plt.Figure, dpi: float | None = None) -> list[bytes]:
    """Each panel of a figure (with its labels, title, legend and twin axes) as its own PNG, in reading
    order: the phone's stacked version of a side-by-side figure. Each is drawn with every other panel
    hidden, so no neighbour's lines or labels show in its margin; a panel that shared its axes with a
    neighbour gets its tick labels and axis labels back, since it now stands alone (the figure is changed:
    save the side-by-side version first)."""
    import io

    from matplotlib.transforms import Bbox

    groups = _panel_groups(fig)
    for group in groups:
        ax = group[0]
        if not ax.axison:
            continue
        ax.tick_params(axis="y", which="both", labelleft=True)
        ax.tick_params(axis="x", which="both", labelbottom=True)
        if not ax.get_ylabel():
            ax.set_ylabel(next((o.get_ylabel() for o in ax.get_shared_y_axes().get_siblings(ax) if o.get_ylabel()), ""))
        if not ax.get_xlabel():
            ax.set_xlabel(next((o.get_xlabel() for o in ax.get_shared_x_axes().get_siblings(ax) if o.get_xlabel()), ""))
    renderer = fig.canvas.get_renderer()
    inches = fig.dpi_scale_trans.inverted()
    shown = {ax: ax.get_visible() for ax in fig.axes}
    out = []
    try:
        for group in groups:
            mine = set(group)
            for ax in fig.axes:  # a colorbar belongs to the panel it stands beside
                if hasattr(ax, "_colorbar") and any(ax.get_position().overlaps(g.get_position().expanded(1.3, 1.0))
                                                    for g in group):
                    mine.add(ax)
            for ax in fig.axes:
                ax.set_visible(shown[ax] and ax in mine)
            boxes = [ax.get_tightbbox(renderer) for ax in mine]
            box = Bbox.union([b for b in boxes if b is not None]).transformed(inches).padded(0.06)
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=dpi or fig.dpi, bbox_inches=box)
            out.append(buf.getvalue())
    finally:
        for ax, visible in shown.items():
            ax.set_visible(visible)
    return out


def show_responsive(fig: plt.Figure) -> None:
    """Show a figure as the inline backend would (one PNG), and close it; where it has panels side by side,
    the output's metadata also carries each panel as its own PNG (`gqa_panels`), from which the book
    builds a version that stacks on a phone (`gqa_book.book.responsive_figures`). Outside a kernel: nothing."""
    import base64
    import io

    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return
    from IPython.display import display

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    png = buf.getvalue()
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")  # the PNG's own size
    metadata: dict = {"gqa_size": [width, height]}
    if side_by_side(fig):
        # twice the resolution: a stacked panel fills a phone's width, and phones have 2-3 pixels per CSS pixel
        metadata["gqa_panels"] = [base64.b64encode(p).decode() for p in panel_images(fig, dpi=2 * fig.dpi)]
        metadata["gqa_panel_density"] = 2
    display({"image/png": base64.b64encode(png).decode(), "text/plain": f"<Figure {width}x{height}>"},
            raw=True, metadata=metadata)
    plt.close(fig)


def caption_problems(caption: str, shown: list[dict]) -> list[str]:
    """Where a caption does not describe the panels a figure shows (empty when it does).

    Every panel's y quantity (its axis label without the unit, and a twin axis's) must be named in the
    caption, and so must the x quantity where it differs between panels; a "(left)", "(right)", "(top)",
    "(middle)" or "(bottom)" must follow the quantity of the panel in that place; a caption that promises time-invariant
    and time-variant parts needs a panel whose legend shows them."""
    import re

    text = " ".join(caption.lower().split())
    problems = []
    labels = [("y", p["ylabel"]) for p in shown] + [("twin y", t) for p in shown for t in p["twin_ylabels"]]
    if len({_stem(p["xlabel"]) for p in shown} - {""}) > 1:  # the x quantity tells the panels apart
        labels += [("x", p["xlabel"]) for p in shown]
    for axis, label in labels:
        if _stem(label) and _stem(label) not in text:
            problems.append(f"the {axis} axis {label!r} is not named in the caption")
    xs, ys = sorted({p["position"][0] for p in shown}), sorted({p["position"][1] for p in shown}, reverse=True)
    places = {"left": [p for p in shown if p["position"][0] == xs[0]] if len(xs) >= 2 else None,
              "right": [p for p in shown if p["position"][0] == xs[-1]] if len(xs) >= 2 else None,
              "top": [p for p in shown if p["position"][1] == ys[0]] if len(ys) >= 2 else None,
              "middle": [p for p in shown if p["position"][1] == ys[1]] if len(ys) == 3 else None,
              "bottom": [p for p in shown if p["position"][1] == ys[-1]] if len(ys) >= 2 else None}
    for place, there in places.items():
        for hit in [i for i in range(len(text)) if text.startswith(f"({place})", i)]:
            clause = re.split(r"[,;:)]| and ", text[:hit])[-1]  # back to the last clause or place marker
            if there is None:
                problems.append(f"the caption says ({place}), but the figure has no {place} panel")
            elif not any(_stem(p["ylabel"]) and _stem(p["ylabel"]) in clause or
                         _stem(p["title"]) and _stem(p["title"]).split(",")[0] in clause for p in there):
                problems.append(f"({place}) follows {clause.strip()!r}, but the {place} panel shows "
                                f"{', '.join(repr(p['ylabel'] or p['title']) for p in there)}")
    if "time-invariant" in text and "time-variant" in text:
        if not any(any("time-invariant" in e for e in p["legend"]) and any("time-variant" in e for e in p["legend"])
                   for p in shown):
            problems.append("the caption promises time-invariant and time-variant parts, but no panel shows them")
    return problems


# --- Diagrams drawn by code ------------------------------------------------------------------------


def head_sharing(ax: plt.Axes, n_heads: int, n_kv_heads: int, title: str) -> None:
    """Query heads (top row) and the KV heads they read (bottom row), one line per query head: MHA when
    n_kv = n_h, GQA in between, MQA when n_kv = 1. A diagram: the axes are switched off."""
    from gqa.shapes import check_heads

    check_heads(n_heads, n_kv_heads)
    group = n_heads // n_kv_heads
    q_x = [i + 0.5 for i in range(n_heads)]
    kv_x = [(k + 0.5) * group for k in range(n_kv_heads)]
    from matplotlib.patches import Rectangle

    for i, x in enumerate(q_x):
        ax.plot([x, kv_x[i // group]], [0.9, 0.1], color="#999999", lw=0.8, zorder=1)
    for i, x in enumerate(q_x):
        ax.add_patch(Rectangle((x - 0.35, 0.9), 0.7, 0.3, color="#4c72b0", zorder=2,
                               label="query head" if i == 0 else None))
    for k, x in enumerate(kv_x):
        ax.add_patch(Rectangle((x - 0.35, -0.2), 0.7, 0.3, color="#dd8452", zorder=2,
                               label="key/value head (cached)" if k == 0 else None))
    ax.set_xlim(-0.2, n_heads + 0.2)
    ax.set_ylim(-0.5, 1.5)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def search_flow(ax: plt.Axes, steps: Sequence[tuple[str, str]]) -> None:
    """The three-step search as boxes joined by arrows, left to right: (title, what it does) per step."""
    width = 1.0 / len(steps)
    for i, (title, body) in enumerate(steps):
        x = i * width + width / 2
        ax.text(x, 0.5, f"{title}\n\n{body}", ha="center", va="center", fontsize=9, wrap=True,
                bbox={"boxstyle": "round,pad=0.6", "facecolor": "#eef3f8", "edgecolor": "#4c72b0"})
        if i:
            ax.annotate("", xy=(i * width + 0.02, 0.5), xytext=(i * width - 0.02, 0.5),
                        arrowprops={"arrowstyle": "-|>", "color": "#333333", "lw": 1.2})
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")


def kv_against_weights(ax: plt.Axes, contexts: Sequence[int], models: Sequence[tuple[str, float, float]]) -> None:
    """Memory of the weights (flat, dashed) and of the KV cache (growing with T) for each (label, weights bytes,
    KV bytes per token of context), in GB on log axes, with the context where the two weigh the same marked."""
    import numpy as np

    t = np.array(contexts, float)
    colors = ["#c44e52", "#4c72b0", "#55a868", "#8172b2"]
    for (label, weights, per_token), color in zip(models, colors):
        ax.plot(t, np.full_like(t, weights / 1e9), color=color, ls="--", lw=1.2, label=f"{label}: weights")
        ax.plot(t, t * per_token / 1e9, color=color, lw=1.8, label=f"{label}: KV cache")
        balance = weights / per_token
        ax.scatter([balance], [weights / 1e9], color=color, zorder=3, s=30)
        ax.annotate(f"balance at {balance / 1024:.0f}K", (balance, weights / 1e9),
                    textcoords="offset points", xytext=(6, -12), fontsize=8, color=color)
    context_axis(ax, list(contexts))
    ax.set_ylabel("memory (GB)")


def pilot_seeds(result) -> plt.Figure:
    """The pilot of a study: each seed's validation loss (dots) and the mean (line) per head configuration,
    most KV heads on the left; the error bars are one seed standard deviation."""
    fig, ax = plt.subplots(figsize=(4.4, 3.0))  # narrow: its text stays legible on a phone
    labels = [f"({c.heads[0]}, {c.heads[1]})" for c in result.configurations]
    for i, c in enumerate(result.configurations):
        ax.plot([i] * len(c.losses), c.losses, "o", color="C0", alpha=0.6, ms=5,
                label="one seed" if i == 0 else None)
    means = [c.mean for c in result.configurations]
    ax.errorbar(range(len(means)), means, yerr=[c.spread for c in result.configurations], color="C1", capsize=4,
                marker="_", ms=14, label="mean ± seed SD")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("head configuration (n_h, n_kv)")
    ax.set_ylabel("validation loss (nats/token)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def seed_band_fits(study) -> plt.Figure:
    """A designed study's fits (`gqa.effect.Study`): each configuration's runs (dots), its law over the sizes
    it was trained at (line) and the seed bootstrap's 95% band; the pilot's seeds at its size (crosses)."""
    fig, ax = plt.subplots(figsize=(4.8, 3.8))  # narrow: its legend stays legible on a phone
    curves = study.curves()
    fitted_panel(ax, {h: study.data[h] for h in study.fits}, curves, "non-embedding parameters N")
    palette = heads_palette(list(curves))
    for c in study.pilot.configurations:
        if c.heads in palette:
            ax.scatter([c.non_embedding] * len(c.losses), c.losses, marker="x", s=22, lw=1.0, color=palette[c.heads],
                       zorder=4)
    ax.scatter([], [], marker="x", s=22, lw=1.0, color="0.4", label="pilot seeds")
    low = min(n[0] for n, *_ in curves.values()) / 1.1
    high = max(n[-1] for n, *_ in curves.values()) * 1.1
    ticks = [m * 10 ** e for e in range(3, 10) for m in (1, 2, 5) if low <= m * 10 ** e <= high]
    ax.set_xticks(ticks, [format_count(t) for t in ticks])
    ax.xaxis.set_minor_locator(plt.NullLocator())  # the decades' minor ticks, unlabelled, would only clutter
    ax.set_ylabel("validation loss (nats/token)")
    ax.legend(title="(n_h, n_kv)", fontsize=9, loc="lower left")  # the curves run from top left to bottom right
    fig.tight_layout()
    return fig


def live_run(ax: plt.Axes, record: dict, tokens_per_step: int, learning_rates: Sequence[float]) -> None:
    """A run's training and validation losses against tokens seen, its learning-rate schedule (one value per
    step) on a second axis; one legend for both."""
    import numpy as np

    train, val = np.array(record["train_losses"]), np.array(record["val_losses"])
    ax.plot(train[:, 0] * tokens_per_step, train[:, 1], lw=1, alpha=0.8, label="training loss")
    ax.plot(val[:, 0] * tokens_per_step, val[:, 1], "o-", ms=4, label="validation loss")
    ax.set_xlabel("tokens")
    ax.set_ylabel("loss (nats/token)")
    lr_ax = ax.twinx()
    lr_ax.plot(np.arange(len(learning_rates)) * tokens_per_step, learning_rates, color="grey", ls="--", lw=1,
               label="learning rate")
    lr_ax.set_ylabel("learning rate")
    lr_ax.grid(False)
    lines, lr_lines = ax.get_legend_handles_labels(), lr_ax.get_legend_handles_labels()
    ax.legend(lines[0] + lr_lines[0], lines[1] + lr_lines[1], fontsize=8, loc="upper right")


def comparison_bars(cmp, context: int, setting, title: str) -> plt.Figure:
    """Figure 1's bars for a `search.Comparison`: memory (MB, in the setting's dtype) and MFLOPs per token of
    the baseline and the optimum at `context` tokens, each split into weights and attention."""
    from gqa.search import cost_parts
    from gqa.units import format_count

    parts = [cost_parts(c, context, setting) for c in (cmp.baseline, cmp.optimum)]
    labels = [f"baseline {cmp.baseline.heads}\nN = {format_count(cmp.baseline.params)}",
              f"optimum {cmp.optimum.heads}\nN = {format_count(cmp.optimum.params)}"]
    fig, (ax_m, ax_c) = plt.subplots(1, 2, figsize=(9, 3.8))
    stacked_cost_bars(ax_m, labels, [q["weights_bytes"] / 1e6 for q in parts], [q["kv_bytes"] / 1e6 for q in parts],
                      f"inference memory (MB, {setting.dtype})", f"{title}, T = {format_tokens(context)}")
    stacked_cost_bars(ax_c, labels, [q["flops_invariant"] / 1e6 for q in parts],
                      [q["flops_variant"] / 1e6 for q in parts], "inference MFLOPs per token",
                      f"T = {format_tokens(context)}")
    ax_m.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def loss_cost_panels(points: dict, curves: dict, inside: dict, context: int, memory_label: str, flops_label: str,
                     *, ylim: tuple[float, float] | None = None, loss_label: str | None = None) -> plt.Figure:
    """Figure 2's three panels: loss against memory, FLOPs and Z at `context`, dots `points` and fitted
    `curves` with their bands per configuration (`fitted_panel`), the legend in the spare panel. `loss_label`
    names the loss axis of the left column only (the second panel sits beside the first); `ylim` fixes it."""
    fig, axes, spare = panel_grid(3)
    for ax, (q, label) in zip(axes, (("memory_bytes", memory_label), ("flops", flops_label), ("z", "Z (Eq. 5)"))):
        fitted_panel(ax, points[q], curves[q], label, f"T = {format_tokens(context)}", inside=inside)
        if ylim is not None:
            ax.set_ylim(*ylim)
    if loss_label is not None:
        for ax, label in zip(axes, (loss_label, "", loss_label)):
            ax.set_ylabel(label)
    spare.legend(*axes[0].get_legend_handles_labels(), title="(n_h, n_kv)", loc="center", fontsize=9, ncol=2)
    fig.tight_layout()
    return fig


def figure2_panels(pts: dict, curves: dict, inside: dict, context: int) -> plt.Figure:
    """Figure 2 rebuilt: the paper's points (`fig2_words.plotted_points`) and our fits
    (`fig2_words.fitted_curves`), memory in BF16 bytes and FLOPs per sequence, losses 2.4 to 3.2 as the
    paper draws them."""
    return loss_cost_panels(pts, curves, inside, context, "memory (bytes, BF16)", "FLOPs per sequence of T tokens",
                            ylim=(2.4, 3.2), loss_label="loss")


def headline_bars(head: dict) -> plt.Figure:
    """Figure 1 rebuilt from `fig2.headline`: memory (GB, BF16) and FLOPs per sequence (10^15) of the paper's
    (32, 8) baseline and of the fitted configuration at its N*, each split into weights and attention."""
    from gqa.units import format_count

    base, (n_h, n_kv), at = head["baseline"], head["heads"], format_tokens(head["context"])
    fig, (ax_m, ax_c) = plt.subplots(1, 2, figsize=(10, 3.8))
    labels = ["(32, 8) at 1.2B\n(paper's baseline)",
              f"({n_h}, {n_kv}) at N* = {format_count(head['params_star'])}\n(our fit)"]
    stacked_cost_bars(ax_m, labels, [base["weights_bytes"] / 1e9, head["optimum_weights_bytes"] / 1e9],
                      [base["kv_bytes"] / 1e9, (head["optimum_memory_bytes"] - head["optimum_weights_bytes"]) / 1e9],
                      "memory (GB, BF16)", f"memory at T = {at}, loss {head['target']:g}")
    stacked_cost_bars(ax_c, labels, [base["flops_invariant"] / 1e15, head["optimum_flops_invariant"] / 1e15],
                      [(base["flops"] - base["flops_invariant"]) / 1e15,
                       (head["optimum_flops"] - head["optimum_flops_invariant"]) / 1e15],
                      "FLOPs per sequence (10^15)", f"FLOPs at T = {at}")
    ax_m.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def _reading_options(report, grid) -> tuple[dict, list]:
    from gqa.readings import POINTS

    return ({p: {k: o.label for k, o in grid.points[p].items()} for p in POINTS},
            [r.options for r in report.readings])


def claim_spec_curve(report, grid, claim, ylabel: str) -> plt.Figure:
    """One claim's (a `paper.Claim`) specification curve over a `readings.Report`: its value under every
    reading, the paper's value and tolerance band, and how many readings reproduce it."""
    points, options = _reading_options(report, grid)
    v = report.verdict(claim.id)
    return spec_curve([r.claims[claim.id].ours for r in report.readings], options, points, ylabel,
                      f"{claim.label}: {v.reproduced_in} of {v.readings} readings reproduce it",
                      paper=claim.value, band=claim.band())


def table4_spec_curve(report, grid) -> plt.Figure:
    """Table 4's specification curve: the cells that agree under every reading, and which cells they are."""
    from gqa.units import format_tokens as tokens

    points, options = _reading_options(report, grid)
    first = report.readings[0]
    return spec_curve([r.table4_agree for r in report.readings], options, points,
                      f"cells that agree (of {first.table4_checkable})",
                      f"Table 4: {report.verdict('table4').reproduced_in} of {report.n_readings} readings "
                      "reproduce every checkable cell", paper=first.table4_checkable,
                      band=(first.table4_checkable,) * 2,
                      cells=[[c.agree for c in r.table4_cells] for r in report.readings],
                      cell_labels=[f"ℒ* = {c.target_loss:g}, {tokens(c.context)}" for c in first.table4_cells])


def decode_time_panels(decode, n_heads: int) -> plt.Figure:
    """Decode time per step against T, one panel per n_kv and one line per backend, with the read-bandwidth
    floor (dashed)."""
    kv_values = sorted(decode["n_kv"].unique())
    fig, axes, _ = panel_grid(len(kv_values))
    for ax, n_kv in zip(axes, kv_values):
        part = decode[decode["n_kv"] == n_kv]
        backend_lines(ax, part, "time_ms", "time per decode step (ms)", f"n_h = {n_heads}, n_kv = {n_kv}")
        floor = part[part["backend"] == part["backend"].iloc[0]].sort_values("context")
        ax.plot(floor["context"], floor["floor_ms"], "k--", lw=1, label="read-bandwidth floor")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def decode_bytes_panels(decode, n_heads: int, read_gb_s: float) -> plt.Figure:
    """Decode time against the KV bytes a step reads, one panel per backend and one line per n_kv, with
    the bytes over the read bandwidth (dashed); the legend in the spare slot when there is one."""
    kv_values = sorted(decode["n_kv"].unique())
    fig, axes, spare = panel_grid(len(decode["backend"].unique()))
    palette = heads_palette([(n_heads, int(k)) for k in kv_values])
    line = decode.sort_values("kv_cache_bytes")
    for ax, backend in zip(axes, decode["backend"].unique()):
        part = decode[decode["backend"] == backend]
        for n_kv in kv_values:
            one = part[part["n_kv"] == n_kv].sort_values("kv_cache_bytes")
            ax.plot(one["kv_cache_bytes"], one["time_ms"], "o-", ms=4, color=palette[(n_heads, int(n_kv))],
                    label=f"n_kv = {n_kv}")
        ax.plot(line["kv_cache_bytes"], line["kv_cache_bytes"] / (read_gb_s * 1e9) * 1e3, "k--", lw=1,
                label="KV bytes / read bandwidth")
        ax.set(xscale="log", yscale="log", xlabel="KV-cache bytes read per step", title=backend)
    axes[0].set_ylabel("time per decode step (ms)")
    if spare is not None:
        spare.legend(*axes[0].get_legend_handles_labels(), loc="center", fontsize=9)
    else:
        axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def decode_memory_panels(decode, n_heads: int) -> plt.Figure:
    """Peak extra memory of a decode step against T, one panel per n_kv, with the KV cache (dashed) and,
    where K and V are shared, n_h / n_kv copies of it (dotted)."""
    kv_values = sorted(decode["n_kv"].unique())
    fig, axes, _ = panel_grid(len(kv_values))
    for ax, n_kv in zip(axes, kv_values):
        part = decode[decode["n_kv"] == n_kv].copy()
        part["peak_mb"] = part["peak_extra_bytes"].clip(lower=1) / 1e6
        backend_lines(ax, part, "peak_mb", "peak extra memory (MB)", f"n_h = {n_heads}, n_kv = {n_kv}")
        ref = part[part["backend"] == part["backend"].iloc[0]].sort_values("context")
        ax.plot(ref["context"], ref["kv_cache_bytes"] / 1e6, "k--", lw=1, label="KV cache")
        if n_kv < n_heads:
            ax.plot(ref["context"], ref["kv_cache_bytes"] * n_heads / n_kv / 1e6, "k:", lw=1,
                    label="(n_h / n_kv) x KV cache")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def prefill_panels(prefill, n_heads: int) -> plt.Figure:
    """Prefill time and peak extra memory against T at the fewest KV heads, one line per backend."""
    n_kv = min(prefill["n_kv"].unique())
    part = prefill[prefill["n_kv"] == n_kv].assign(peak_mb=lambda f: f["peak_extra_bytes"].clip(lower=1) / 1e6)
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(8, 3.4))
    backend_lines(ax_t, part, "time_ms", "prefill time (ms)", f"n_h = {n_heads}, n_kv = {n_kv}")
    backend_lines(ax_m, part, "peak_mb", "peak extra memory (MB)", f"n_h = {n_heads}, n_kv = {n_kv}")
    ax_t.legend(fontsize=8)
    fig.tight_layout()
    return fig


def study_fit_panels(points: dict, curves: dict, inside: dict, context: int, dtype: str) -> plt.Figure:
    """A study's own Figure 2: loss against inference memory, FLOPs per token and Z at `context`, dots the
    trained models (`fits_words.record_points`), curves the fits (`fits_words.fitted_curves`)."""
    return loss_cost_panels(points, curves, inside, context, f"inference memory (bytes, {dtype})",
                            "inference FLOPs per token")


def head_law(panel) -> plt.Figure:
    """Appendix I's head-count law per size (`head_law.head_law_study`): losses at n_kv = 1 against n_h, and
    each size's fitted a·n_h^b + c."""
    import numpy as np

    from gqa.units import format_number

    fig, ax = plt.subplots(figsize=(6.5, 4))
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(panel)))
    grid_h = np.geomspace(1, 8, 50)
    for f, color in zip(panel, colors):
        ax.scatter(f.n_heads, f.loss, color=color, zorder=3)
        ax.plot(grid_h, f.law.predict(grid_h), color=color,
                label=f"{f.label}: {format_number(f.law.a)}·n_h^{format_number(f.law.b)} + {format_number(f.law.c)}")
    ax.set_xscale("log", base=2)
    ax.set_xticks([1, 2, 4, 8], ["1", "2", "4", "8"])
    ax.set_xlabel("query heads n_h (n_kv = 1)")
    ax.set_ylabel("validation loss")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
