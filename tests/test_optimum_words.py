"""Chapter 5's sentences, from hand-made diagnoses, comparisons and regime facts whose words are known."""

from dataclasses import replace

import pytest

from gqa import optimum_words as words
from gqa.hardware import Hardware
from gqa.regimes import Facts
from gqa.scaling import PowerLaw
from gqa.search import Candidate, Comparison, CostSetting, PatternDiagnosis


def test_targets_span_the_losses_reached_highest_first():
    # losses 3.0 to 4.0: from 3.0 - 0.1 = 2.9 to 4.0 in 5 steps of 0.22
    assert words.targets_across([3.0, 4.0, 3.5]) == [4.0, 3.78, 3.56, 3.34, 3.12, 2.9]
    assert words.targets_across([3.0, 3.001]) == [3.0]  # rounding to 2 decimals merges them


def test_kilo_writes_binary_thousands():
    assert words.kilo(4608) == "4.50K" and words.kilo(131072) == "128K" and words.kilo(12000) == "12K"


def test_grid_words_count_cells_and_the_pattern():
    cells = {(3.0, 8192): (8, 1), (3.0, 16384): (8, 1), (2.0, 8192): None, (2.0, 16384): (4, 1)}
    said = words.grid_words(cells, {(3.0, 8192): 0.5, (3.0, 16384): 0.7, (2.0, 16384): 0.9}, {(2.0, 16384)},
                            (1, 2), [3.0, 2.0], [8192, 16384])
    assert said == {"n_cells": 4, "n_extrapolated": "1 of the 3", "mean_conf": "70%", "rows_ok": "1 of 2",
                    "cols_ok": "2 of 2"}
    assert words.grid_words(cells, {}, set(), (0, 0), [3.0], [8192])["mean_conf"] == "n/a"


WHY = PatternDiagnosis(min_kv_share=0.812, kv_heads=(1, 2), heads=(8, 1), size_range=(1e5, 2e6),
                       balance_contexts=(2048.0, 4608.0), balance_size_at_shortest=8e6, short_contexts=(2048, 4096),
                       short_rows=2, short_cols=1)


def test_pattern_words_say_every_cell_is_kv_bound_when_the_study_balances_below_the_grid():
    cells = {(t, c): (8, 1) for t in (3.0, 2.5) for c in (8192, 16384)}
    said = words.pattern_words(WHY, cells, [3.0, 2.5], [8192, 16384], (4096.0, 262144.0))
    assert said["why_paper_covers"] == "a span that holds Table 4's 8K–128K"
    assert said["why_span"] == "2.00K–4.50K tokens" and said["why_sizes"] == "100 k–2.00 M"
    assert said["why_needed"] == "8.00 M" and said["why_needed_ratio"] == "4.00"  # 8e6 / 2e6
    assert said["why_min_kv"] == "81%" and said["why_kv_heads"] == "1, 2" and said["why_heads"] == "(8, 1)"
    assert said["why_rows_constant"].startswith(" (every row is the same configuration")
    assert said["why_short_rows"] == "2 of 2" and said["why_short_cols"] == "1 of 2"
    assert said["why_sentence"].startswith("Every model of this study balances below")
    assert said["why_takeaway"].endswith("that needs models of about 8.00 M parameters.")


def test_pattern_words_when_the_study_balances_inside_the_grid_and_the_paper_only_overlaps():
    inside = replace(WHY, balance_contexts=(4096.0, 16384.0))
    cells = {(3.0, 8192): (8, 2), (3.0, 16384): (8, 1)}
    said = words.pattern_words(inside, cells, [3.0], [8192, 16384], (16384.0, 65536.0))
    assert said["why_paper_covers"].startswith("a span that overlaps Table 4's 8K–128K from 16K to 64K")
    assert said["why_rows_constant"] == ""
    assert said["why_sentence"] == "Part of this study balances inside the grid's contexts:"


def test_the_paper_balance_span_is_weights_over_kv_per_token():
    from gqa.shapes import PAPER_SCALING_SHAPES, Shape

    # balance: N (with the embedding) = T·2·L·d_h·n_kv, so T = N / (2·L·64) for (8, 1), in the same units
    balance = [Shape(L, d, 8, 1).params().total / (2 * L * 64) for L, d in PAPER_SCALING_SHAPES.values()]
    assert words.paper_balance_span() == pytest.approx((min(balance), max(balance)))
    assert words.paper_balance_span()[0] > 8192  # at Table 4's 8K even the smallest is weight-bound


def candidate(heads, params, memory_bytes, kv_bytes, flops):
    return Candidate(heads, params, 2, 64, flops, memory_bytes / 2, memory_bytes, 1.0, kv_bytes=kv_bytes)


def comparison(extrapolation):
    return Comparison(candidate((8, 1), 1e6, 3e6, 1e6, 5e6), candidate((8, 8), 2e6, 6e6, 4e6, 1e7), 3.0, False,
                      "z", 0.5, 0.5, 0.25, 0.5, 2.9, 0.1, 3e6, extrapolation)


def test_headline_words_state_savings_and_label_extrapolations():
    setting = CostSetting()
    fits = {(8, 1): PowerLaw(1e5, 0.3, 0.0), (8, 8): PowerLaw(1e5, 0.3, 1.0)}
    said = words.headline_words(comparison(1.0), (8, 8), 3.0, 131072, setting, fits)
    assert said["h_mem"] == "-50.0%" and said["h_flops"] == "-25.0%"  # savings of 50% and 25%, as changes
    assert said["h_opt"] == "(8, 1)" and said["h_base"] == "(8, 8)" and said["h_T"] == "128K"
    assert said["h_gain_words"] == "lowers the loss by 0.100"
    assert said["h_gain_extrapolation"] == " That size lies inside the sizes its fit saw."
    far = words.headline_words(comparison(12.5), (8, 8), 3.0, 131072, setting, fits)
    assert "12.5 times outside the sizes the (8, 1) fit saw" in far["h_gain_extrapolation"]
    assert "of a law whose E sits at its lower bound (a pure power law)" in far["h_gain_takeaway"]
    floored = {**fits, (8, 1): PowerLaw(1e5, 0.3, 0.5)}
    assert "fitted on tiny models" in words.headline_words(comparison(12.5), (8, 8), 3.0, 131072, setting,
                                                           floored)["h_gain_takeaway"]


FACTS = Facts(cells=36, batches=(1, 128), one_kv_head=(10, 30), fewer_query_heads=(0, 4), fewer_query_heads_time=0,
              most_heads=32, same_as_time=(30, 20), mean_kv=(4.0, 5.5), inside=20, mean_kv_inside=(3.0, 3.2),
              moved_to_one=12, moved_to_one_inside=1, memory_share=0.73, intensity=40.0, ridge=295.0,
              memory_bound=(36, 30), too_big=(3, 0), agree=(20, 15), agree_time=(18, 14), checkable=36,
              extrapolated=(16, 20), paper_one_kv_head=12, prefill_example=None)
H100 = Hardware("H100 SXM", 3.35e12, 989e12, 80e9)


def test_regime_words_follow_the_facts():
    said = words.regime_words(FACTS, [1, 16, 128], H100, 4.2e8)
    assert said["reg_batches"] == "1, 16 and 128" and said["reg_kv1"] == "10 and 30"
    assert said["reg_qdrop_z"].startswith("The optimum also keeps fewer than 32 query heads in 0 and 4 cells")
    assert said["reg_fp8_words"] == "affords more KV heads"  # 4.0 -> 5.5 with an FP8 cache
    # 36·1.5 = 54 extra KV heads over all cells, 20·0.2 = 4 inside: the moves are mostly outside
    assert said["reg_inside"].startswith("Most of these moves happen where the fits extrapolate:")
    assert "of the 12 cells that turn to one KV head between batch 1 and 128, 1 lies inside them." in said["reg_inside"]
    assert said["reg_device"] == "H100 SXM (3.35 TB/s, 989 TFLOP/s dense BF16)"
    assert said["reg_qdrop_time"] == "no optimum has fewer than 32 query heads"
    assert said["reg_prefill"] == "At batch 1 Z and the decode time pick the same configuration in every cell."
    assert said["reg_too_big"].startswith("At batch 128, 3 of the 36 optima")
    assert "(11 of the 12 cells that turn to one KV head" in said["reg_takeaway"]
    assert "an FP8 cache at batch 1 affords more KV heads; most of these moves" in said["reg_takeaway"]


@pytest.mark.parametrize("change, key, expected", [
    ({"mean_kv_inside": (3.0, 5.0), "moved_to_one_inside": 8}, "reg_inside", "These moves hold inside"),
    ({"too_big": (0, 0)}, "reg_too_big", "At batch 128 every optimum fits in one H100 SXM."),
    ({"fewer_query_heads_time": 3}, "reg_qdrop_time", "fewer than 32 query heads win in 3 cells"),
    ({"mean_kv": (4.0, 4.0)}, "reg_fp8_words", "keeps as many KV heads"),
])
def test_regime_words_turn_with_their_numbers(change, key, expected):
    assert words.regime_words(replace(FACTS, **change), [1, 128], H100, 4.2e8)[key].startswith(expected)


def test_the_prefill_example_adds_1024_decode_steps():
    example = replace(FACTS, prefill_example=(3.0, 131072, (8, 1), (32, 8), 0.5, 0.25, 0.001, 0.002))
    said = words.regime_words(example, [1, 128], H100, 4.2e8)["reg_prefill"]
    # whole requests: 0.5 + 1024 × 0.001 = 1.524 s against 0.25 + 1024 × 0.002 = 2.298 s
    assert said.endswith("takes 1.52 s against 2.30 s.") and "in 500 ms against 250 ms" in said
