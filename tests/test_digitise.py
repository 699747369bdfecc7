"""The Figure 2 digitiser: on a synthetic figure with known points, and on the paper's image if present."""

import os
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from gqa import digitise
from gqa.cli import main

matplotlib.use("Agg")
REPO = Path(__file__).resolve().parents[1]
FIG2 = Path(os.environ.get("GQA_FIG2", REPO.parent / "shared" / "paper" / "fig2.png"))
COMMITTED = REPO / "data" / "paper" / "fig2_points.csv"
SERIES = ((4, 4), (4, 1), (1, 1))


def _synthetic_figure(path: Path) -> list[tuple[str, tuple[int, int], float, float]]:
    """Three log-x panels in the paper's style; fitted lines drawn over the markers."""
    import matplotlib.pyplot as plt

    colours = ["#7fe7ff", "#8a3b4a", "#ffcf68"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), dpi=150)
    truth = []
    for p, ax in enumerate(axes):
        for s, (heads, colour) in enumerate(zip(SERIES, colours)):
            x = np.geomspace(2e9, 8e9, 5) * (1 + 0.9 * s) * 10 ** (4 * p)
            y = 3.1 - 0.12 * np.arange(5) - 0.05 * s
            line_x = np.geomspace(x[0] / 2, x[-1] * 2, 100)
            ax.scatter(x, y, color=colour, s=60, zorder=2, label=f"H={heads}")
            ax.plot(line_x, np.interp(np.log(line_x), np.log(x), y), color=colour, lw=2, zorder=3)
            truth += [(digitise.PANEL_X[p], heads, xi, yi) for xi, yi in zip(x, y)]
        ax.set_xscale("log")
        ax.set_ylim(2.4, 3.2)
        ax.set_yticks([2.4, 2.6, 2.8, 3.0, 3.2])
        ax.grid(ls="--")
    axes[-1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return truth


def test_recovers_known_points_of_a_synthetic_figure(tmp_path):
    truth = _synthetic_figure(tmp_path / "fig.png")
    spec = digitise.FigureSpec(decades=((9, 10), (13, 14), (17, 18)), series=SERIES)
    result = digitise.digitise(tmp_path / "fig.png", spec)
    assert len(result.points) == len(truth) and not result.missing
    for axis in result.x_axes + result.y_axes:
        assert np.abs(axis.residuals_px).max() < 1.0
    for panel, heads, x, loss in truth:
        mine = result.points[(result.points.panel == panel) & (result.points.n_h == heads[0])
                             & (result.points.n_kv == heads[1])]
        err = np.hypot(np.log10(mine.x / x), mine.loss - loss)
        nearest = mine.loc[err.idxmin()]
        assert abs(np.log10(nearest.x / x)) < 0.01, (panel, heads, x)
        assert abs(nearest.loss - loss) < 0.01, (panel, heads, loss)


def test_a_blank_image_is_refused_with_a_reason(tmp_path):
    from PIL import Image

    Image.new("RGB", (400, 200), "white").save(tmp_path / "blank.png")
    with pytest.raises(digitise.DigitiseError, match="spines"):
        digitise.digitise(tmp_path / "blank.png")
    assert main(["digitise", str(tmp_path / "missing.png")]) == 2


def test_committed_points_cover_every_series_in_every_panel():
    points = pd.read_csv(COMMITTED)
    counts = points.groupby(["n_h", "n_kv", "panel"]).size().unstack()
    assert set(counts.columns) == set(digitise.PANEL_X)
    assert {tuple(int(v) for v in h) for h in counts.index} == set(digitise.FIG2.series)
    assert (counts.nunique(axis=1) == 1).all()  # same models in all three panels
    # One model, one loss: the k-th marker of a series sits on the same row in every panel.
    ranked = points.assign(k=points.groupby(["panel", "n_h", "n_kv"]).loss.rank(ascending=False))
    spread = ranked.groupby(["n_h", "n_kv", "k"]).loss.agg(np.ptp)
    assert spread.max() < 0.01


@pytest.mark.skipif(not FIG2.exists(), reason=f"the paper's Figure 2 image is not at {FIG2} "
                                                 "(set GQA_FIG2 to its path to run this check)")
def test_the_readme_digitise_recipe_reproduces_the_committed_points(tmp_path):
    """The README's `gqa digitise` line, verbatim but for the paths (the image where it is, the output in a
    scratch folder): the points it writes are the committed file, byte for byte. The README's other fit-and-plan
    lines run in tests/test_readme.py."""
    import re

    from test_readme import README, run  # the README's recipes run through bash, as a reader pastes them

    (line,) = [line.split("  #")[0].strip() for line in README.splitlines() if line.startswith("gqa digitise ")]
    assert re.fullmatch(r"gqa digitise \.\./shared/paper/fig2\.png --out data/paper/fig2_points\.csv", line), line
    out = tmp_path / "fig2_points.csv"
    proc = run(line.replace("../shared/paper/fig2.png", str(FIG2)).replace("data/paper/fig2_points.csv", str(out)),
               tmp_path)
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert out.read_text() == COMMITTED.read_text()
