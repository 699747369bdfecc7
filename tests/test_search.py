"""`gqa plan` says when it extrapolates, which configurations were candidates, and what the baseline assumes."""

import json
import math

import pytest

from gqa import fig2
from gqa.cli import main


def plan_json(capsys, *argv) -> dict:
    assert main(["plan", *argv, "--json", "--resamples", "20"]) == 0
    out = capsys.readouterr().out
    return json.loads(out, parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))


def figure2_sizes() -> dict:
    """Non-embedding sizes of Figure 2's identified models, by configuration (read from the points)."""
    return {h: n for h, (n, _) in fig2.fit_data(fig2.identify(fig2.models())).items()}


def test_far_target_is_labelled_an_extrapolation_with_the_factor(capsys):
    report = plan_json(capsys, "--context", "128k", "--target-loss", "2.3", "--baseline", "32,8")
    heads = (report["recommended"]["n_heads"], report["recommended"]["n_kv_heads"])
    largest = max(figure2_sizes()[heads])
    assert report["extrapolation"]["factor"] == pytest.approx(report["params_non_embedding"] / largest, rel=1e-9)
    assert report["extrapolation"]["factor"] > 50
    assert any("an extrapolation" in w and f"{heads}" in w for w in report["warnings"])
    assert len(report["candidates"]["considered"]) == 7 and "with a fit" in report["candidates"]["why"]
    for row in report["ranking"]:
        assert row["extrapolation"] >= 1


def test_paper_baseline_is_compared_at_its_own_loss_not_the_target(capsys):
    report = plan_json(capsys, "--context", "8k", "--target-loss", "2.4", "--baseline", "32,8")
    b = report["baseline"]
    assert b["baseline_loss"] == 2.615 and b["baseline_loss_assumed"] is False and b["assumption"] is None
    assert b["loss_gain"] == pytest.approx(2.615 - b["loss_at_equal_cost"])  # against the baseline, not 2.4
    assert any("compared at its own loss 2.615, not at the target 2.4" in w for w in report["warnings"])


def test_text_output_names_candidates_and_warns(capsys):
    assert main(["plan", "--context", "128k", "--target-loss", "2.3", "--baseline", "32,8", "--resamples", "0"]) == 0
    out = capsys.readouterr().out
    assert "candidates: the 7 configurations with a fit" in out
    assert "warning: recommended (8, 8)" in out and "an extrapolation" in out
    assert "below the baseline's 2.615" in out


def test_unfitted_baseline_shape_is_named_an_assumption(capsys):
    args = ("--context", "32k", "--target-loss", "2.7", "--baseline", "16,4", "--baseline-shape", "24,2048")
    report = plan_json(capsys, *args)
    assert report["baseline"]["baseline_loss_assumed"] is True and "ASSUMED" in report["baseline"]["assumption"]
    measured = plan_json(capsys, *args, "--baseline-loss", "2.75")
    assert measured["baseline"]["baseline_loss"] == 2.75 and measured["baseline"]["assumption"] is None


def test_max_extrapolation_drops_far_candidates(capsys):
    report = plan_json(capsys, "--context", "128k", "--target-loss", "2.615", "--max-extrapolation", "2")
    assert all(row["extrapolation"] <= 2 for row in report["ranking"])
    assert len(report["ranking"]) < 7
    assert main(["plan", "--context", "128k", "--target-loss", "2.3", "--max-extrapolation", "3"]) == 2
    assert "beyond 3x" in capsys.readouterr().err


def test_candidates_restrict_the_search(capsys):
    report = plan_json(capsys, "--context", "128k", "--target-loss", "2.615", "--candidates", "4,1", "2,1")
    assert report["candidates"]["considered"] == ["4,1", "2,1"]
    assert {tuple(r["heads"]) for r in report["ranking"]} <= {(4, 1), (2, 1)}
    assert main(["plan", "--context", "128k", "--target-loss", "2.615", "--candidates", "32,8"]) == 2
    assert "--candidates 32,8 has no fit" in capsys.readouterr().err


@pytest.mark.parametrize("target, message", [
    ("100", "above every loss the fits saw"), ("1.0", "unreachable"), ("inf", "finite"), ("nan", "finite"),
    ("two", "invalid number"),
])
def test_targets_no_law_can_reach_are_one_line_errors(capsys, target, message):
    assert main(["plan", "--context", "128k", "--target-loss", target]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err


def test_bad_max_extrapolation_is_an_error(capsys):
    assert main(["plan", "--context", "128k", "--target-loss", "2.6", "--max-extrapolation", "0.5"]) == 2
    assert ">= 1" in capsys.readouterr().err


def test_fits_files_keep_the_range_they_saw(tmp_path, capsys):
    out = tmp_path / "fits.json"
    assert main(["fit", "--resamples", "0", "--out", str(out)]) == 0
    capsys.readouterr()
    saved = json.loads(out.read_text())
    sizes = figure2_sizes()
    for f in saved["fits"]:
        n = sizes[(f["n_heads"], f["n_kv_heads"])]
        assert f["n_range"] == [min(n), max(n)]
    report = plan_json(capsys, "--fits", str(out), "--context", "128k", "--target-loss", "2.3")
    assert report["extrapolation"]["factor"] > 50 and not math.isnan(report["extrapolation"]["factor"])


def test_a_baseline_outside_the_candidates_is_still_sized_by_its_fit(capsys):
    report = plan_json(capsys, "--context", "128k", "--target-loss", "2.615", "--baseline", "8,8",
                       "--candidates", "8,1", "4,1")
    assert report["baseline"]["baseline"]["heads"] == [8, 8]
    assert tuple(report["baseline"]["optimum"]["heads"]) in {(8, 1), (4, 1)}


def test_confidence_follows_the_same_restrictions_as_the_search(capsys):
    report = plan_json(capsys, "--context", "128k", "--target-loss", "2.615", "--max-extrapolation", "1.5")
    best = f"{report['recommended']['n_heads']},{report['recommended']['n_kv_heads']}"
    assert report["confidence"].get(best, 0) > 0
    assert all(key in report["candidates"]["considered"] or key == "unreachable" for key in report["confidence"])


def test_plan_json_reports_the_share_of_z_each_term_carries(capsys):
    """Figure 2's accounting (the default fits): memory in BF16 bytes, FLOPs per sequence; by hand from the
    recommendation's own memory and FLOPs."""
    report = plan_json(capsys, "--context", "128k", "--target-loss", "2.615")
    memory, flops = report["memory_bytes"], report["flops"]
    memory_term, flops_term = 0.9 * memory**0.5, 0.1 * flops ** (1 / 3)
    assert report["z"] == pytest.approx(memory_term + flops_term, rel=1e-12)
    assert report["z_shares"]["flops"] == pytest.approx(flops_term / (memory_term + flops_term), rel=1e-12)
    assert report["z_shares"]["memory"] + report["z_shares"]["flops"] == pytest.approx(1)


@pytest.mark.checkout
def test_z_shares_by_hand_and_the_notation_pages_table():
    from pathlib import Path

    from gqa import readings, search

    # z is taken from the candidate: 0.9·√100 + 0.1·∛1000 = 9 + 1
    c = search.Candidate((8, 1), 1.0, 1.0, 1.0, flops=1000.0, memory=100.0, memory_bytes=400.0, z=10.0)
    shares = search.z_shares(c, search.CostSetting(z_memory="values"))
    assert shares == {"memory": pytest.approx(0.9), "flops": pytest.approx(0.1)}
    # the Notation page's table states what named_models computes, to the digit shown
    page = (Path(__file__).resolve().parents[1] / "book" / "notation.md").read_text()
    for accounting, row_start in (("equations_as_written", "| as {ref}`Eq. 3"), ("figure2", "| as Figure 2 counts")):
        named = readings.named_models(accounting)
        row = next(line for line in page.splitlines() if line.startswith(row_start))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == f"{100 * named['z_flops_share_baseline']:.1f}% of $Z$"
        assert cells[2] == f"{100 * named['z_flops_share_ours']:.1f}% of $Z$"


def test_one_comparison_serves_compare_and_figure_1s_headline():
    """fig2.headline is search.compare with (8, 1) alone against the exact (32, 8) shape at the target loss:
    both give the same savings and loss gain, and the comparison's savings are 1 − optimum / baseline."""
    from gqa import scaling, search

    fits = scaling.fit_family(fig2.fit_data(fig2.identify(fig2.models())))
    head = fig2.headline(fits, target=2.615)
    # the savings against the baseline costed on its own (fig2.shape_cost) and (8, 1) sized by its law
    n_star = fits[(8, 1)].params_for_loss(2.615)
    ours = search.cost_at((8, 1), n_star, fig2.CONTEXT, fig2.FIG2_SETTING)
    base = fig2.shape_cost(fig2.BASELINE)
    assert head["memory_saving"] == pytest.approx(1 - ours.memory_bytes / base["memory_bytes"], rel=1e-12)
    assert head["flops_saving"] == pytest.approx(1 - ours.flops / base["flops"], rel=1e-12)
    cmp = search.compare({(8, 1): fits[(8, 1)]}, 2.615, fig2.CONTEXT, fig2.BASELINE, fig2.FIG2_SETTING,
                         baseline_loss=2.615)
    assert head["loss_gain"] == cmp.loss_gain == 2.615 - fits[(8, 1)].predict(cmp.params_at_equal_cost)
    # at the size the comparison reports, the optimum costs what the baseline costs (Z), within bisection
    at_equal = search.cost_at((8, 1), cmp.params_at_equal_cost, fig2.CONTEXT, fig2.FIG2_SETTING)
    assert at_equal.z == pytest.approx(cmp.baseline.z, rel=1e-9)
