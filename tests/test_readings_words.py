"""Chapter 6's sentences about the readings, recounted here from the readings themselves."""


from gqa import readings, readings_words
from gqa.units import format_number


def test_the_options_table_has_one_row_per_option_and_one_default_per_point(grid):
    table = readings_words.options_table(grid)
    assert len(table) == sum(len(grid.points[p]) for p in readings.POINTS)
    assert (table["default"] == "yes").sum() == len(readings.POINTS)


def test_table4_cells_that_always_and_never_agree_are_counted_per_cell(report):
    n_cells = len(report.readings[0].table4_cells)
    agree = [[r.table4_cells[i].agree for r in report.readings] for i in range(n_cells)]
    said = readings_words.table4_cell_words(report)
    assert said == {"t4_cells_always": sum(all(a) for a in agree), "t4_cells_never": sum(not any(a) for a in agree)}


def test_verdict_words_recount_the_readings(report):
    said = readings_words.verdict_words(report)
    n = len(report.readings)
    for cid in ("fig1_memory_saving", "memory_share_512k"):
        ok = sum(r.claims[cid].status == "reproduced" for r in report.readings)
        assert said[f"reproduced_in_{cid}"] == f"{ok} of {n}"
        assert said[f"verdict_{cid}"] == ("every reading" if ok == n else "no reading" if ok == 0 else "some readings")
    both = sum(all(r.claims[c].status == "reproduced" for c in ("fig1_memory_saving", "fig1_flops_saving"))
               for r in report.readings)
    assert said["joint_both_savings"] == f"{both} of {n}"
    assert said["n_every"] + said["n_some"] + said["n_none"] == said["n_verdicts"] == len(readings.TEXT_CLAIMS)
    named = [r for r in report.readings if r.options["baseline"] == "table9_32x8"]
    assert f"under {sum(r.claims['fig1_memory_saving'].status == 'reproduced' for r in named)} of its " \
           f"{len(named)} readings" in said["named_baseline_sentence"]
    snapped = sum(r.options["size_to_shape"] == "nearest_shape" for r in report.readings)
    assert said["snap_size_sentence"].startswith(f"Under the {snapped} readings that snap N*")
    lowest = min(r.claims["fig1_memory_saving"].ours for r in report.readings)
    assert said["min_mem_saving_any"] == f"{format_number(100 * lowest)}%"  # the lowest over every reading


def test_the_512k_sentence_counts_readings_under_ten_percent(report):
    shares = [r.claims["memory_share_512k"].ours for r in report.readings]
    under = sum(s is not None and s < 0.10 for s in shares)
    said = readings_words.verdict_words(report)["strict_512k"]
    assert said.startswith("No reading goes under 10% itself" if under == 0 else f"{under} readings go under 10%")


def test_the_verdict_table_has_every_claim_and_the_joint_rows(report):
    table = readings_words.verdict_table(report)
    assert len(table) == len(report.verdicts) + len(report.joint)
    assert set(table["verdict"]) <= set(readings.VERDICT_COLORS)
