"""Chapter 6's sentences about Figure 2 rebuilt, checked against hand-made tables and numbers derived here."""

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gqa import fig2, fig2_words, paper, scaling
from gqa.scaling import Bootstrap, PowerLaw

PAPER_DATA = Path(fig2_words.__file__).resolve().parent / "paper_data"


def test_the_tolerances_are_claims_csvs():
    path = next(p for p in (PAPER_DATA / "claims.csv", Path("data/paper/claims.csv")) if p.exists())
    tol = {row["id"]: float(row["tolerance"]) for row in csv.DictReader(path.open())}
    said = fig2_words.tolerance_words(paper.claims())
    assert said["tol_saving_pp"] == f"{100 * tol['fig1_memory_saving']:g}"
    assert said["tol_rel_pct"] == f"{100 * tol['fig1_optimum_size']:g}%"


def test_the_rebuilt_points_are_counted_from_the_csv():
    points = paper.table("fig2_points")
    said = fig2_words.rebuild_words(fig2_words.rebuild(points))
    rows = list(csv.DictReader(next(p for p in (PAPER_DATA / "fig2_points.csv", Path("data/paper/fig2_points.csv"))
                                    if p.exists()).open()))
    assert said["n_points"] == len(rows)
    assert said["row_search"] == sum(r["found_by"] == "row search" for r in rows)
    assert said["n_series"] == len({(r["n_h"], r["n_kv"]) for r in rows}) == 7
    assert said["per_token_ratio"] == "131,072"


FOUND = pd.DataFrame({"n_h": [8, 8, 1], "n_kv": [1, 1, 1], "k": [0, 1, 0], "layers": [4, 8, 6],
                      "loss": [3.1, 2.9, 3.0], "memory_resid": [0.01, -0.02, 0.0], "flops_resid": [0.0, 0.001, -0.01]})


def test_the_shapes_table_states_the_worst_error_as_a_percentage():
    table = fig2_words.shapes_table(FOUND)
    assert list(table.index) == ["(8, 1)", "(1, 1)"]
    row = table.loc["(8, 1)"]
    assert row["models"] == 2 and row["L (d = 128·L)"] == "4, 8" and row["loss"] == "3.10 → 2.90"  # highest to lowest
    assert row["worst memory error"] == "4.71%"  # 10^0.02 − 1 = 0.0471
    assert table.loc["(1, 1)", "worst FLOPs error"] == "2.33%"  # 10^0.01 − 1


def test_the_fit_table_shows_bootstrap_intervals():
    point = {(8, 1): PowerLaw(1e5, 0.3, 2.0)}
    samples = {(8, 1): np.array([(1e5, b, e) for b, e in np.linspace([0.2, 1.8], [0.4, 2.2], 41)])}
    table = fig2_words.fit_table(point, Bootstrap(point, samples, False, 0))
    # 41 evenly spaced draws: the 2.5th and 97.5th percentiles lie 1 step (0.005 in b) inside the ends
    assert table.loc["(8, 1)", "b"] == "0.300 [0.205, 0.395]"
    words = fig2_words.fit_words(point, shared_e=True, resamples=41)
    assert words["e_option"] == "one E shared by all configurations" and words["resamples"] == 41


def test_plotted_points_are_the_digitised_ones_at_128k_and_costed_elsewhere():
    rebuilt = fig2_words.rebuild(paper.table("fig2_points"))
    at_128k = fig2_words.plotted_points(rebuilt.found, fig2.CONTEXT)
    row = next(rebuilt.found[(rebuilt.found.n_h == 8) & (rebuilt.found.n_kv == 1)].itertuples())
    assert at_128k["memory_bytes"][(8, 1)][0][0] == row.memory_bytes
    at_8k = fig2_words.plotted_points(rebuilt.found, 8192)
    assert at_8k["memory_bytes"][(8, 1)][0][0] == fig2.predicted(row.layers, row.d_model, (8, 1), 8192)[1]
    assert at_8k["memory_bytes"][(8, 1)][0][0] < row.memory_bytes  # a shorter context caches less
    assert fig2_words.figure2_words(8192)["dots_from"].startswith("the identified shapes")


def _check(rows):
    return pd.DataFrame(rows, columns=["target_loss", "context", "paper", "ours", "status", "paper_share"])


def test_table4_words_count_cells_and_name_the_ones_that_differ():
    fits = {(8, 1): PowerLaw(1e9, 0.3, 2.0), (32, 8): PowerLaw(1e9, 0.3, 2.5)}
    check = _check([(2.6, 8192, (8, 1), (8, 1), "reproduced", 0.9), (2.6, 16384, (8, 1), (8, 1), "reproduced", 0.8),
                    (2.4, 8192, (32, 8), (8, 1), "differs", 0.1), (1.5, 8192, (8, 1), None, "not checkable", 0.0)])
    said = fig2_words.table4_words(fits, check, check.assign(status="differs"), 0.01)
    assert (said["t4_checkable"], said["t4_reproduced"], said["t4_not"], said["t4_family_reproduced"]) == (3, 2, 1, 0)
    assert said["t4_wrong"] == "ℒ* = 2.4 at 8K: paper (32, 8), ours (8, 1)"
    assert said["t4_wrong_share"] == "10–10%" and said["t4_right_share"] == "80–90%"
    # (32, 8) has E = 2.5 above the target 2.4: it cannot reach the loss, so no Z gap is stated
    assert said["t4_zgap"] == "n/a" and said["t4_differ_sentence"] == ""
    none_differ = fig2_words.table4_words(fits, check[check.status != "differs"], check, 0.01)
    assert none_differ["t4_differ_sentence"] == "No checkable cell differs." and none_differ["t4_near_sentence"] == ""


def test_the_headline_words_label_sizes_by_12_l_d2_and_flag_extrapolation():
    rebuilt = fig2_words.rebuild(paper.table("fig2_points"))
    data = fig2.fit_data(rebuilt.found)
    fits = scaling.fit_family(data)
    boot = scaling.bootstrap(data, resamples=8, seed=0, point=fits)
    head = fig2.headline(fits, target=2.615)
    said = fig2_words.headline_words(fits, boot, data, head)
    assert said["label_star"] == f"{12 * head['layers_star'] * head['d_model_star'] ** 2 / 1e9:.3g}B"
    lowest = min(data[(8, 1)][1])
    assert said["extrapolation"] == ("an extrapolation" if 2.615 < lowest else "inside the data")
    assert said["min_loss_81"] == f"{lowest:.3f}"
    assert said["loss_gain_note"].startswith(" (an extrapolation") == (head["params_equal_z"] > max(data[(8, 1)][0]))


def _row(cid, status, ours=0.5):
    return {"claim_id": cid, "status": status, "ours": ours}


HEAD = {"memory_saving": 0.6, "flops_saving": 0.5, "params_star": 1e9, "paper_optimum": {"params": 1.5e9}}


def test_claim_words_count_text_and_bars_apart_and_read_the_direction():
    rows = [_row("fig1_memory_saving", "reproduced"), _row("fig1_flops_saving", "differs"),
            _row("memory_share_512k", "reproduced", 0.123), _row(None, "not checkable"),
            _row("fig1_bar_memory_total_ours", "reproduced"), _row("fig1_bar_flops_total_ours", "differs")]
    said = fig2_words.claim_words(rows, HEAD, paper.claims())
    assert (said["n_claims"], said["n_reproduced"], said["n_differs"], said["n_not_checkable"]) == (4, 2, 1, 1)
    assert (said["n_bar_rows"], said["n_bar_rows_reproduced"], said["bars_ok"]) == (2, 1, "1")
    assert said["share_512k"] == "12.3%" and said["share_512k_verdict"] == "within"
    # 0.6 − 0.508 > 0 and 0.5 − 0.578 < 0: one larger, one smaller
    assert said["saving_direction"] == "mixed" and said["sizes_sentence"] == "The sizes do not:"
    assert said["direction_sentence"].startswith("The direction of the paper's result survives")
    assert said["size_direction"] == "smaller"


def test_label_words_count_llama_32_1b_by_hand():
    said = fig2_words.label_words()
    # 128,256·2,048 embedding (tied) + 16 × (attention 10,485,760 + FFN 3·2,048·8,192 + norms 4,096) + 2,048
    assert said["llama_three"] == "1,235,814,400" == said["llama_published"]
    assert said["llama_two"] == f"{1_235_814_400 - 16 * 2048 * 8192:,}"  # without the third FFN matrix
    assert said["llama_two_off"] == "21.7%"
    assert said["label_12ld2"] == "1,019,215,872"  # 12 · 36 · 1,536²


@pytest.mark.parametrize("context, note", [(131072, "the context of the paper's headline"),
                                           (32768, "the context this page was run for")])
def test_context_words_say_which_context_they_are_at(context, note):
    fits = {(8, 1): PowerLaw(1e9, 0.3, 2.0), (32, 8): PowerLaw(1.2e9, 0.3, 2.0)}
    assert fig2_words.context_words(fits, 2.6, context)["ctx_note"].startswith(note)
