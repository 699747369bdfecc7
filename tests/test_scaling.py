"""Fits recover known laws; Step 3 agrees with brute force; bad input is refused clearly."""

import json

import numpy as np
import pytest
from scipy.optimize import minimize

from gqa import search
from gqa.scaling import HUBER_DELTA, PowerLaw, _huber, bootstrap, fit_family, fit_head_law, fit_power_law, ols_check

TRUTH = {(8, 8): PowerLaw(2e4, 0.35, 2.0), (8, 1): PowerLaw(4e4, 0.33, 2.05), (1, 1): PowerLaw(1e5, 0.30, 2.1)}
SIZES = np.geomspace(3e4, 1e7, 8)


def synthetic(truth=TRUTH, noise=0.005, seed=0):
    rng = np.random.default_rng(seed)
    return {h: (SIZES, law.predict(SIZES) * np.exp(rng.normal(0, noise, SIZES.size))) for h, law in truth.items()}


def test_bootstrap_intervals_contain_the_truth():
    data = synthetic()
    boot = bootstrap(data, resamples=1000, seed=1)
    for h, law in TRUTH.items():
        interval = boot.interval(h)
        for name, value in (("a", law.a), ("b", law.b), ("e", law.e)):
            lo, hi = interval[name]
            assert lo <= value <= hi, (h, name, value, interval[name])
        lo, hi = boot.predict_interval(h, [1e8])
        assert lo[0] <= law.predict(1e8) <= hi[0]
        assert boot.point[h].r2 > 0.99


def test_fit_minimises_the_stated_objective():
    n, loss = synthetic()[(8, 8)]
    fit = fit_power_law(n, loss)

    def objective(theta):
        pred = np.logaddexp(theta[1] * (theta[0] - np.log(n)), theta[2])
        return _huber(pred - np.log(loss), HUBER_DELTA)[0].sum()

    ours = objective([np.log(fit.a), fit.b, np.log(fit.e)])
    reference = min(minimize(objective, x0, method="Nelder-Mead",
                             options={"xatol": 1e-12, "fatol": 1e-16, "maxiter": 40000}).fun
                    for x0 in ([np.log(2e4), 0.35, np.log(2.0)], [np.log(1e4), 0.5, np.log(1.5)]))
    assert ours <= reference * (1 + 1e-6)


def test_exact_data_is_recovered_and_statsmodels_agrees():
    law = PowerLaw(5e4, 0.4, 1.8)
    fit = fit_power_law(SIZES, law.predict(SIZES))
    assert fit.a == pytest.approx(5e4, rel=1e-3) and fit.b == pytest.approx(0.4, rel=1e-3)
    assert fit.e == pytest.approx(1.8, rel=1e-4)
    check = ols_check(fit, SIZES, law.predict(SIZES))
    assert check["b"] == pytest.approx(fit.b, rel=1e-3) and check["a"] == pytest.approx(fit.a, rel=1e-2)
    assert fit.params_for_loss(float(law.predict(1e6))) == pytest.approx(1e6, rel=1e-3)


def test_shared_e_option():
    truth = {h: PowerLaw(law.a, law.b, 2.0) for h, law in TRUTH.items()}
    fits = fit_family(synthetic(truth, noise=0.001), shared_e=True)
    assert len({round(f.e, 12) for f in fits.values()}) == 1
    assert next(iter(fits.values())).e == pytest.approx(2.0, abs=0.05)
    boot = bootstrap(synthetic(truth, noise=0.001), resamples=50, seed=0, shared_e=True)
    assert np.allclose(boot.samples[(8, 8)][:, 2], boot.samples[(1, 1)][:, 2])


@pytest.mark.parametrize("n, loss, match", [
    ([1e4, 1e5], [3.0, 2.5], "needs runs at >= 3 sizes"),
    ([1e5, 1e5, 1e5], [3.0, 2.9, 3.1], "single size"),
    ([1e4, 1e5, 1e6], [3.0, -1.0, 2.0], "positive"),
    ([1e4, 1e5, 1e6], [3.0, float("nan"), 2.0], "finite"),
])
def test_bad_fit_input_is_a_clear_error(n, loss, match):
    with pytest.raises(ValueError, match=match):
        fit_power_law(n, loss)


def test_unreachable_target_and_head_law():
    with pytest.raises(ValueError, match="irreducible loss"):
        PowerLaw(1e4, 0.3, 2.0).params_for_loss(1.9)
    heads = np.array([1, 2, 4, 8, 16, 32])
    law = fit_head_law(heads, 0.579 * heads**-0.124 + 2.473)  # the paper's 470M fit, Appendix I
    assert (law.a, law.b, law.c) == pytest.approx((0.579, -0.124, 2.473), rel=1e-4)
    fixed = fit_head_law(heads, 1.356 * heads**-0.044 + 1.53, c=1.53)
    assert (fixed.a, fixed.b) == pytest.approx((1.356, -0.044), rel=1e-4)


# --- Step 3 -------------------------------------------------------------------------------------

PAPERLIKE = {h: PowerLaw(3e8 * (32 / h[0]) ** 0.35 * (32 / h[1]) ** 0.08, 0.33, 1.9)
             for h in search.candidate_heads(32)}


def test_candidates():
    assert len(search.candidate_heads(32)) == 21
    assert (32, 8) in search.candidate_heads(32) and (8, 32) not in search.candidate_heads(32)
    with pytest.raises(ValueError, match="power of two"):
        search.candidate_heads(24)


@pytest.mark.parametrize("target, context", [(2.6, 131072), (2.8, 8192), (2.4, 32768), (3.0, 65536)])
def test_step3_agrees_with_brute_force(target, context):
    ranked = search.search(PAPERLIKE, target, context)
    assert ranked[0].heads == search.brute_force(PAPERLIKE, target, context)
    assert [c.z for c in ranked] == sorted(c.z for c in ranked)
    best = ranked[0]
    assert float(PAPERLIKE[best.heads].predict(best.params)) == pytest.approx(target, rel=1e-9)


def test_cost_at_follows_the_equations():
    c = search.cost_at((8, 1), 1e9, 131072)
    total = 1e9 + 50304 * c.d_model
    assert c.flops == pytest.approx(2 * total + 4 * 131072 * c.layers * 64 * 8)
    assert c.memory == pytest.approx(total + 2 * 131072 * c.layers * 64 * 1)
    assert c.z == pytest.approx(0.9 * c.memory**0.5 + 0.1 * c.flops ** (1 / 3))


def test_compare_and_grid():
    cmp = search.compare(PAPERLIKE, 2.615, 131072, (32, 8))
    assert cmp.optimum.z <= cmp.baseline.z
    assert cmp.loss_gain >= 0 and cmp.loss_at_equal_cost == pytest.approx(2.615 - cmp.loss_gain)
    assert cmp.memory_saving == pytest.approx(1 - cmp.optimum.memory / cmp.baseline.memory)
    g = search.grid(PAPERLIKE, [2.6, 1.0], [8192, 131072])
    assert g[(2.6, 8192)] == search.search(PAPERLIKE, 2.6, 8192)[0].heads and g[(1.0, 8192)] is None
    with pytest.raises(ValueError, match="baseline"):
        search.compare({(8, 1): PAPERLIKE[(8, 1)]}, 2.6, 8192, (32, 8))
    with pytest.raises(ValueError, match="unreachable"):
        search.search(PAPERLIKE, 1.0, 8192)


def test_confidence_counts_bootstrap_winners():
    """Each resample's winner found independently, by scanning sizes (search.brute_force), and counted."""
    data = synthetic()
    boot = bootstrap(data, resamples=40, seed=0)
    shares = search.confidence(boot, 2.3, 8192)
    counts = {}
    for i in range(boot.resamples):
        heads = search.brute_force(boot.laws(i), 2.3, 8192)
        counts[heads] = counts.get(heads, 0) + 1
    assert shares == pytest.approx({k: v / boot.resamples for k, v in counts.items()})


def _records(tmp_path):
    lines = []
    for (n_h, n_kv), law in TRUTH.items():
        for i, n in enumerate(SIZES[:5]):
            lines.append({"run_id": f"{n_h}{n_kv}{i}", "n_heads": n_h, "n_kv_heads": n_kv, "head_dim": 16,
                          "vocab": 2048, "layers": 2 + i, "d_model": 32 * (i + 1), "n_non_embedding": n,
                          "val_loss": float(law.predict(n))})
    path = tmp_path / "runs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def test_plan_cli_json_and_errors(tmp_path, capsys):
    from gqa.cli import main

    path = _records(tmp_path)
    assert main(["plan", "--runs", str(path), "--context", "32k", "--target-loss", "2.3", "--baseline", "8,8",
                 "--resamples", "50", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("recommended", "params_non_embedding", "shape", "memory_bytes", "flops", "z", "cost_setting",
                "baseline", "confidence", "source"):
        assert key in out
    assert out["shape"]["head_dim"] == 16 and out["shape"]["vocab"] == 2048
    assert main(["fit", "--runs", str(path), "--resamples", "20", "--out", str(tmp_path / "fits.json")]) == 0
    capsys.readouterr()
    assert main(["plan", "--fits", str(tmp_path / "fits.json"), "--context", "8k", "--target-loss", "2.3"]) == 0
    assert "use (n_h, n_kv)" in capsys.readouterr().out
    assert main(["plan", "--runs", str(path), "--context", "8k", "--target-loss", "1.0", "--resamples", "0"]) == 2
    assert "unreachable" in capsys.readouterr().err


def test_grid_pattern_counts_rows_and_columns_that_follow_table4():
    targets, contexts = [3.0, 2.8], [8192, 32768, 131072]
    cells = {(3.0, 8192): (32, 1), (3.0, 32768): (8, 1), (3.0, 131072): (4, 1),   # shrinks with T: ok
             (2.8, 8192): (32, 2), (2.8, 32768): None, (2.8, 131072): (8, 2)}     # gap skipped: ok
    assert search.grid_pattern(cells, targets, contexts) == (2, 3)
    cells[(2.8, 131072)] = (2, 1)  # column 128K: fewer heads at the lower target loss breaks it
    assert search.grid_pattern(cells, targets, contexts) == (2, 2)
    cells[(3.0, 131072)] = (16, 1)  # row 3.0 now grows with the context
    assert search.grid_pattern(cells, targets, contexts) == (1, 2)


@pytest.mark.checkout
def test_every_configuration_of_the_cpu_study_spans_a_decade_of_sizes():
    """The recorded cpu study (data/runs/, found by the cpu profile's settings) gives each fit a decade."""
    from gqa import profiles, runs
    from gqa.config import sweep_configs

    found, missing = runs.records_for(sweep_configs(profiles.load("cpu").section("sweep")))
    assert not missing, f"{len(missing)} cpu runs are not recorded: run gqa sweep --profile cpu"
    sizes: dict = {}
    for r in found:
        sizes.setdefault((r["n_heads"], r["n_kv_heads"]), []).append(r["n_non_embedding"])
    assert len(sizes) == 7
    for heads, n in sizes.items():
        assert max(n) / min(n) >= 10, (heads, max(n) / min(n))


def test_balance_of_weights_and_kv_cache_by_hand():
    """d = 32·L, d_h = 16, (4, 1), N without embedding: N = L·(2·d·16·5 + 8·d²) = 5120·L² + 8192·L³ and the
    KV cache 2·T·L·16; they balance where 8192·L² + 5120·L = 32·T."""
    import math

    from gqa import search

    setting = search.CostSetting(head_dim=16, vocab=2048, params="non_embedding", anchors=((1e2, 32.0), (1e9, 32.0)))
    T = 8192
    L = (-5120 + math.sqrt(5120**2 + 4 * 8192 * 32 * T)) / (2 * 8192)
    n = 5120 * L**2 + 8192 * L**3
    assert search.balance_size((4, 1), T, setting) == pytest.approx(n, rel=1e-6)
    assert search.balance_context((4, 1), n, setting) == pytest.approx(T, rel=1e-9)
    c = search.cost_at((4, 1), n, T, setting)
    assert search.kv_share(c, T, setting) == pytest.approx(0.5, rel=1e-6)
    assert search.kv_share(search.cost_at((4, 1), 10 * n, T, setting), T, setting) < 0.5


def test_pattern_diagnosis_recomputes_the_grid_where_the_sizes_balance():
    from gqa import search
    from gqa.scaling import PowerLaw

    setting = search.CostSetting(head_dim=16, vocab=2048, params="non_embedding", anchors=((1e2, 32.0), (1e9, 32.0)))
    fits = {h: PowerLaw(1e4 * h[0] * h[1] ** 0.5, 0.3, 1.0, n_range=(1e4, 1e6)) for h in ((8, 8), (8, 1), (2, 1))}
    targets, contexts = [3.0, 2.5, 2.0], [8192, 131072]
    why = search.diagnose_pattern(fits, targets, contexts, setting)
    assert why.size_range == (1e4, 1e6)
    lo, hi = why.balance_contexts
    assert lo < hi and all(lo / 2 <= c <= hi * 2 for c in why.short_contexts)
    rows, cols = search.grid_pattern(search.grid(fits, targets, why.short_contexts, setting), targets,
                                     why.short_contexts)
    assert (why.short_rows, why.short_cols) == (rows, cols)
    optima = [search.search(fits, t, c, setting)[0] for t in targets for c in contexts]
    assert why.min_kv_share == pytest.approx(min(search.kv_share(o, c, setting)
                                                 for o, c in zip(optima, [c for _ in targets for c in contexts])))


def test_a_floor_is_found_where_the_points_bend_up():
    from gqa.scaling import fit_head_law, log_curvature

    n_h = np.array([1, 2, 4, 8, 16, 32], float)
    floored = 0.5 * n_h**-0.6 + 2.5  # diminishing returns toward c = 2.5
    accelerating = 4.0 - 0.02 * n_h  # each doubling gains twice the last
    assert log_curvature(n_h, floored) > 0 and fit_head_law(n_h, floored).c == pytest.approx(2.5, abs=1e-3)
    assert log_curvature(n_h, accelerating) < 0 and fit_head_law(n_h, accelerating).c == pytest.approx(0, abs=1e-6)
    with pytest.raises(ValueError, match="3 distinct"):
        log_curvature([1, 2, 2], [3.0, 2.9, 2.9])


def test_fitted_curves_cost_the_sizes_and_mark_extrapolation():
    from gqa import search
    from gqa.scaling import bootstrap, fit_family

    sizes = [1e4, 3e4, 1e5, 3e5, 1e6]
    data = {(4, 1): (sizes, [(2e4 / n) ** 0.3 + 2.0 + 0.01 * (-1) ** i for i, n in enumerate(sizes)])}
    fits = fit_family(data)
    boot = bootstrap(data, resamples=30, point=fits)
    setting = search.CostSetting(head_dim=16, vocab=512, anchors=((1e3, 32.0), (1e8, 32.0)))
    curves, inside = search.fitted_curves(fits, boot, 4096, setting, lambda h, law: (1e3, 1e7), points=9)
    assert inside[(4, 1)].tolist() == [False, False, True, True, True, True, True, False, False]
    memory, loss, lo, hi = curves["memory_bytes"][(4, 1)]
    assert np.all(np.diff(memory) > 0) and np.all(np.diff(loss) < 0)
    assert np.all(lo <= hi) and memory[0] == search.cost_at((4, 1), 1e3, 4096, setting).memory_bytes


def test_notebooks_hold_no_function_longer_than_ten_lines():
    """Logic lives in gqa/ with tests; a notebook is parameters, calls, plots and glue."""
    import ast
    import json
    from pathlib import Path

    for path in sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            for node in ast.walk(ast.parse("".join(cell["source"]))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    assert node.end_lineno - node.lineno + 1 <= 10, (path.name, node.name)
