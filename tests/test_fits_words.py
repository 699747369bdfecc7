"""Chapter 4's sentences about fitted laws, from hand-made laws and records whose answers are known."""

import numpy as np
import pytest

from gqa import fits_words
from gqa.cost import inference_cost
from gqa.scaling import Bootstrap, PowerLaw
from gqa.search import CostSetting
from gqa.shapes import Shape

POINT = {(8, 1): PowerLaw(1e5, 0.3, 0.0, n_points=3), (4, 1): PowerLaw(1e6, 0.3, 1.5, n_points=4)}
# 41 resamples: (8, 1)'s E from 0 to 0.4, (4, 1)'s b from 0.2 to 0.4
SAMPLES = {(8, 1): np.array([(1e5, 0.3, e) for e in np.linspace(0, 0.4, 41)]),
           (4, 1): np.array([(1e6, b, 1.5) for b in np.linspace(0.2, 0.4, 41)])}
BOOT = Bootstrap(POINT, SAMPLES, False, 0)
N = [1e4, 2e4, 4e4, 8e4]
DATA = {(8, 1): (N[:3], [(1e5 / n) ** 0.3 for n in N[:3]]), (4, 1): (N, [(1e6 / n) ** 0.3 + 1.5 for n in N])}


def test_the_fit_table_marks_exact_fits_and_writes_e_at_its_bound_as_0():
    table = fits_words.fit_table(POINT, BOOT, DATA, shared_e=False)
    assert list(table.index) == ["(8, 1)", "(4, 1)"]
    assert table.loc["(8, 1)", "E (nats/token)"] == "0 [n/a]"  # three sizes for three constants: an exact fit
    assert table.loc["(4, 1)", "b"] == "0.300 [0.205, 0.395]"  # one step in from each end of 41
    # OLS of log(L − E) on log N recovers the b the points were made with
    assert float(table.loc["(4, 1)", "b by OLS on log(L − E)"]) == pytest.approx(0.3, rel=1e-3)
    assert table.index.name is None and table.columns.name == "(n_h, n_kv)"  # one header row


def test_a_seed_noise_table_gives_exact_fits_intervals_and_drops_what_exactness_makes_trivial():
    table = fits_words.fit_table(POINT, BOOT, DATA, shared_e=False, seed_noise=True)
    # an exact fit has an interval under seed noise, on a line of its own
    assert table.loc["(8, 1)", "E (nats/token)"] == "0\n[0.0100, 0.390]"
    assert "R²" in table.columns  # (4, 1) has four sizes: R² and the OLS check still say something
    exact = {(8, 1): POINT[(8, 1)]}
    table = fits_words.fit_table(exact, BOOT, DATA, shared_e=False, seed_noise=True)
    assert list(table.columns) == ["a (parameters)", "b", "E (nats/token)"]


def test_fit_words_name_the_configurations_at_the_bound():
    said = fits_words.fit_words(POINT, BOOT, DATA, runs=7, shared_e=False, resamples=41)
    assert (said["n_configs"], said["n_runs"], said["n_exact"]) == (2, 7, 1)
    assert said["e_bound_short"].startswith("For 1 of the 2 configurations E sits at its lower bound")
    # (8, 1)'s E resamples run 0 to 0.4: the upper 97.5% limit is one step in, 0.39
    assert "((8, 1); 95% intervals [0, 0.390] to [0, 0.390])" in said["e_bound_sentence"]
    floored = {h: PowerLaw(law.a, law.b, 1.0) for h, law in POINT.items()}
    assert fits_words.fit_words(floored, BOOT, DATA, 7, False, 41)["e_bound_sentence"] == \
        "Every configuration's E lies above its lower bound."


def record(n_h, layers, d, loss, tied=True):
    return {"n_heads": n_h, "n_kv_heads": 1, "layers": layers, "d_model": d, "head_dim": 16, "d_ff": 4 * d,
            "vocab": 512, "val_loss": loss, "config": {"tied": tied}}


def test_record_points_cost_each_model_as_built():
    records = [record(8, 2, 128, 3.0), record(8, 4, 128, 2.8, tied=False), record(4, 2, 128, 3.1)]
    points = fits_words.record_points(records, [(8, 1), (4, 1)], 4096, "bf16")
    untied = Shape(4, 128, 8, 1, head_dim=16, d_ff=512, vocab=512, tied=False)
    assert points["memory_bytes"][(8, 1)][0][1] == inference_cost(untied, 4096).bytes_total
    assert points["flops"][(4, 1)] == ([inference_cost(Shape(2, 128, 4, 1, head_dim=16, d_ff=512, vocab=512),
                                                       4096).flops], [3.1])


def test_the_median_check_sizes_each_reachable_law_at_the_median_loss():
    records = [record(8, 2, 128, loss) for loss in (2.0, 3.0, 4.0)]  # median 3.0
    fits = {(8, 1): PowerLaw(1e5, 0.3, 0.0), (4, 1): PowerLaw(1e6, 0.3, 0.0), (1, 1): PowerLaw(1e6, 0.3, 3.5)}
    said = fits_words.median_check_words(fits, records, 4096, CostSetting())
    # (1, 1) cannot reach 3.0 (E = 3.5); (4, 1) needs ten times the parameters of (8, 1) at any loss
    assert said == {"check_loss": "3.00", "least_memory": "(8, 1)", "least_flops": "(8, 1)", "most_params": "(4, 1)"}
