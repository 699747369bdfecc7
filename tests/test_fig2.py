"""What Figure 2 plots (units, shapes) and the checks of the paper built on it."""

import json

import numpy as np
import pandas as pd
import pytest

from gqa import fig2, scaling, search, sources
from gqa.cli import main
from gqa.scaling import PowerLaw

T = 131_072


def test_baseline_cost_by_hand():
    c = fig2.shape_cost(fig2.BASELINE)
    # N = 36·(2·1536·64·(32+8) + 3·1536·4096) = 36·(7,864,320 + 18,874,368)
    assert c["params"] == 962_592_768
    assert c["kv_bytes"] == 2 * T * 36 * 64 * 8 * 2 == 9_663_676_416
    assert c["flops"] == T * (2 * 962_592_768 + 4 * T * 36 * 64 * 32)
    assert c["z"] == pytest.approx(0.9 * c["memory_bytes"] ** 0.5 + 0.1 * c["flops"] ** (1 / 3))


def _synthetic_models(shapes):
    rows = []
    for k, (layers, d, heads) in enumerate(shapes):
        n, memory, flops, z = fig2.predicted(layers, d, heads)
        rows.append({"n_h": heads[0], "n_kv": heads[1], "k": k + 1, "loss": 3.0 - 0.05 * k, "loss_spread": 0.0,
                     "memory_bytes": memory, "flops": flops, "z": z, "true_n": n, "true_layers": layers})
    return pd.DataFrame(rows)


def test_sizes_are_solved_exactly_from_memory_and_flops():
    m = _synthetic_models([(6, 768, (8, 1)), (12, 1536, (4, 1)), (16, 2048, (8, 4)), (10, 1280, (8, 8))])
    solved = fig2.solve_sizes(m)
    gqa = solved[solved.n_h != solved.n_kv]
    np.testing.assert_allclose(gqa.layers_solved, gqa.true_layers, rtol=1e-9)
    np.testing.assert_allclose(gqa.params_solved, gqa.true_n, rtol=1e-9)
    assert solved[solved.n_h == solved.n_kv].layers_solved.isna().all()  # MHA: singular system
    np.testing.assert_allclose(fig2.flops_unit(m), 1.0, rtol=1e-12)  # per-sequence FLOPs: exactly T
    np.testing.assert_allclose(fig2.aspect_ratio(solved), 128, rtol=0.01)
    identified = fig2.identify(m)
    assert list(identified.layers) == [6, 12, 16, 10]
    assert identified[["memory_resid", "flops_resid"]].abs().max().max() < 1e-12


def test_figure2_is_per_sequence_flops_and_a_d_128L_family():
    models = fig2.models()
    assert len(models) == 39 and models.loss_spread.max() < 0.01
    assert fig2.flops_unit(models).between(0.97, 1.02).all()  # not per token (that would be 1/T)
    found = fig2.identify(models)
    assert found[["memory_resid", "flops_resid"]].abs().max().max() < 0.01  # within 2.3%
    table9 = fig2.identify(models, fig2.TABLE9_FAMILY)
    assert table9[["memory_resid", "flops_resid"]].abs().max().max() > 0.1  # Table 9 shapes do not fit
    layers = found[(found.n_h == 8) & (found.n_kv == 1)]
    assert list(layers.layers) == [6, 8, 10, 12, 14, 16]
    assert (found.d_model == 128 * found.layers).all()


def test_table4_check_statuses():
    fits = {(8, 1): PowerLaw(4e7, 0.22, 2.1), (4, 1): PowerLaw(4.5e7, 0.22, 2.12)}
    table = pd.DataFrame({"target_loss": [2.8, 2.8, 2.8], "context": [T, T, 8192], "n_h": [8, 4, 32],
                          "n_kv": [1, 1, 1]})
    out = fig2.table4_check(fits, table=table)
    ours = search.search(fits, 2.8, T, fig2.FIG2_SETTING)[0].heads
    assert out.status[0] == ("reproduced" if ours == (8, 1) else "differs")
    assert out.status[1] == ("reproduced" if ours == (4, 1) else "differs")
    assert out.status[2] == "not checkable" and "(32, 1)" in out.reason[2]
    data = {(8, 1): ([1e7, 3e7, 1e8, 3e8], list(fits[(8, 1)].predict(np.array([1e7, 3e7, 1e8, 3e8])) + 0.002)),
            (4, 1): ([1e7, 3e7, 1e8, 3e8], list(fits[(4, 1)].predict(np.array([1e7, 3e7, 1e8, 3e8])) - 0.002))}
    boot = scaling.bootstrap(data, resamples=40, seed=0, point=scaling.fit_family(data))
    shared = fig2.table4_check(fits, table=table, boot=boot)
    assert shared.paper_share[:2].between(0, 1).all() and abs(shared.paper_share[:2].sum() - 1) < 1e-9
    assert np.isnan(shared.paper_share[2])  # not checkable: no share


def test_headline_from_the_digitised_fits():
    fits = scaling.fit_family(fig2.fit_data(fig2.identify(fig2.models())))
    h = fig2.headline(fits)
    assert h["params_star"] > fits[(8, 1)].params_for_loss(2.7)  # lower loss needs a bigger model
    assert 0 < h["memory_saving"] < 1 and 0 < h["flops_saving"] < 1 and h["loss_gain"] > 0
    # the loss at equal Z is the fit's prediction at the size whose Z equals the baseline's
    z = search.cost_at((8, 1), h["params_equal_z"], T, fig2.FIG2_SETTING).z
    assert z == pytest.approx(h["baseline"]["z"], rel=1e-9)


def test_plan_defaults_to_the_paper_and_knows_its_baseline(capsys, tmp_path):
    args = ["plan", "--context", "128k", "--target-loss", "2.615", "--baseline", "32,8", "--resamples", "100"]
    assert main(args + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"].startswith("default: the paper's Figure 2")
    assert out["recommended"] == {"n_heads": 8, "n_kv_heads": 1, "head_dim": 64}
    assert out["cost_setting"]["flops"] == "per sequence of T tokens"
    assert "Figure 1 baseline" in out["baseline"]["how"]
    assert out["baseline"]["baseline"]["layers"] == 36 and 0 < out["baseline"]["memory_saving"] < 1
    assert abs(sum(out["confidence"].values()) - 1) < 1e-9
    # a baseline with neither a fit nor a shape is refused; with a shape it is used as given
    assert main(["plan", "-T", "32k", "--target-loss", "2.7", "--baseline", "16,4", "--resamples", "0"]) == 2
    assert "--baseline-shape" in capsys.readouterr().err
    assert main(["plan", "-T", "32k", "--target-loss", "2.7", "--baseline", "16,4", "--baseline-shape", "24,2048",
                 "--resamples", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["baseline"]["baseline"]["d_model"] == 2048
    assert main(["plan", "-T", "32k", "--target-loss", "2.7", "--baseline-shape", "24,2048"]) == 2
    assert main(["plan", "-T", "32k", "--target-loss", "2.0", "--resamples", "0"]) == 2
    assert "unreachable" in capsys.readouterr().err
    # a fits file written from the paper's source keeps its cost accounting
    assert main(["fit", "--resamples", "0", "--out", str(tmp_path / "f.json")]) == 0
    assert sources.source_from_json(tmp_path / "f.json").setting == fig2.FIG2_SETTING
