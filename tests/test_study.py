"""Chapter 3's sentences about a study, computed from hand-made records whose answers are known."""

from dataclasses import replace

import pytest

from gqa import study
from gqa.config import TrainConfig
from gqa.study_limits import StudyLimits, words


def record(run_id, n_h, n_kv, d, loss, cpu="Intel Xeon", commit="a" * 40, hours=1.0, n=None):
    return {"run_id": run_id, "n_heads": n_h, "n_kv_heads": n_kv, "layers": 1, "d_model": d,
            "n_non_embedding": n if n is not None else d * 100, "val_loss": loss, "wall_time_s": hours * 3600,
            "machine": {"cpu": cpu, "cores": 2, "torch": "2.13.0+cpu"}, "git_commit": commit}


# (8, 1) at two sizes, loss falling; (4, 1) at the same two sizes, loss rising; (8, 1) sits lower at both.
RECORDS = [record("a", 8, 1, 32, 4.0), record("b", 8, 1, 64, 3.5), record("c", 4, 1, 32, 4.2),
           record("d", 4, 1, 64, 4.3, cpu="AMD EPYC", hours=0.5)]


def test_no_runs_gives_a_sentence_for_every_key_and_no_pattern():
    assert set(study.provenance_words([])) == set(study.PROVENANCE_KEYS)
    assert study.loss_pattern([]).startswith("No runs are recorded")


def test_the_loss_pattern_counts_falls_per_configuration_and_orders_per_size():
    assert study.loss_pattern(RECORDS) == ("Loss falls with size in 1 of the 2 configurations; with one KV head, "
                                           "more query heads sit lower in both sizes.")
    flipped = RECORDS[:2] + [record("c", 4, 1, 32, 3.9), record("d", 4, 1, 64, 3.4)]
    assert study.loss_pattern(flipped).endswith("more query heads sit lower in none of the 2 sizes.")
    mixed = RECORDS[:3] + [record("d", 4, 1, 64, 3.4)]  # (8, 1) lower at d = 32, (4, 1) lower at d = 64
    assert study.loss_pattern(mixed).endswith("more query heads sit lower in 1 of the 2 sizes.")
    only_mha = [record("e", 4, 4, 32, 4.0), record("f", 4, 4, 64, 3.0)]
    assert study.loss_pattern(only_mha) == "Loss falls with size in the only configuration."


def test_provenance_words_name_time_machines_range_and_the_confound():
    words_ = study.provenance_words(RECORDS)
    assert words_["sweep_hours"] == "3.50 h"  # 1 + 1 + 1 + 0.5 hours
    assert words_["sweep_machine"] == ("3 runs (3.00 h) on Intel Xeon (2 cores, torch 2.13.0+cpu); "
                                       "1 runs (30.0 min) on AMD EPYC (2 cores, torch 2.13.0+cpu)")
    assert words_["sweep_range"] == "3.20 k to 6.40 k"
    assert words_["sweep_dirty"] == "Every record names a clean commit."
    assert words_["sweep_confound"] == "The 1 runs on AMD EPYC are a mix of sizes."  # (4, 1) at d = 64 is not smallest
    # the minority machine made exactly the smallest size of every configuration: machine and size confounded
    more = RECORDS + [record("e", 8, 1, 128, 3.0)]
    smallest = [replace_cpu(r, "AMD EPYC" if r["d_model"] == 32 else "Intel Xeon") for r in more]
    assert "the smallest size of every configuration" in study.provenance_words(smallest)["sweep_confound"]
    dirty = [dict(r, git_commit="b" * 40 + "+dirty") if r["run_id"] == "a" else r for r in RECORDS]
    assert study.provenance_words(dirty)["sweep_dirty"].startswith("1 of the 4 records carry a +dirty commit")


def replace_cpu(r, cpu):
    return dict(r, machine=dict(r["machine"], cpu=cpu))


def test_the_summary_table_has_one_row_per_configuration_most_heads_first():
    table = study.summary_table(RECORDS)
    assert list(table.index) == [(8, 1), (4, 1)]
    assert table.loc[(4, 1), "best_val_loss"] == 4.2 and table.loc[(4, 1), "wall_minutes"] == 90.0
    assert table.loc[(4, 1), "machines"] in ("1 on Intel Xeon; 1 on AMD EPYC", "1 on AMD EPYC; 1 on Intel Xeon")


def test_design_words_count_sizes_configurations_and_runs():
    configs = [TrainConfig(layers=L, d_model=d, n_heads=h, n_kv_heads=1, head_dim=16, vocab_size=512, seed=s)
               for L, d in ((1, 128), (2, 128)) for h in (8, 4) for s in (0, 1)]
    n = sorted({c.shape(512).params().non_embedding for c in configs})
    assert study.design_words(configs) == (f"2 sizes from {n[0]:,} to {n[-1]:,} non-embedding parameters for "
                                           "2 head configurations, 8 runs")
    assert study.pilot_design_words(configs[:4]) == "(8, 1), (4, 1) at L = 1, d = 128 with 2 seeds each"


def test_the_live_run_caveat_says_when_data_repeat():
    splits = {"train": {"tokens": 1000, "documents": 9}, "val": {"tokens": 100, "documents": 1}}
    assert study.corpus_words(splits, 2048) == {"n_docs": "10", "n_train_tokens": "1,000", "n_val_tokens": "100",
                                                "vocab": "2,048"}
    run = {"tokens": 2500, "val_loss": 3.14159, "tokens_per_s": 1234.6}
    said = study.live_run_words(run, "L=1", 12345, 10, splits, 4_000_000)
    assert said["live_val"] == "3.14" and said["live_tok_s"] == "1,235" and said["live_N"] == "12,345"
    assert "the first 4 MB" in said["live_caveat"] and "2.50 passes" in said["live_caveat"]
    assert "sees data again" in said["live_caveat"]
    once = study.live_run_words(dict(run, tokens=500), "L=1", 12345, 10, splits, None)["live_caveat"]
    assert "sees data again" not in once and "the first" not in once and "0.500 passes" in once
    assert "on 1 held-out file;" in once  # one file, not "1 files"
    three = dict(splits, val={"tokens": 100, "documents": 3})
    assert "on 3 held-out files;" in study.live_run_words(run, "L=1", 12345, 10, three, None)["live_caveat"]


LIMITS = StudyLimits(runs=4, train_contexts=(128,), seeds_per_model=1, steps=(100, 5000), learning_rates=(2e-3,),
                     embedding_heavier=3, vocab=2048, widest=96, max_heads=8, query_width=128,
                     head_growth=(0.27, 0.64), paper_head_growth=0.07, e_at_bound=((8, 1),), e_upper=(0.5, 0.9),
                     configurations=2, median_loss=4.0, most_params=(1, 1), fewest_params=(8, 1),
                     heads_pair=((8, 1), (1, 1)), heads_ratio=1.5, heads_ratio_interval=(1.2, 1.9))


def test_limit_clauses_follow_the_numbers():
    said = words(LIMITS)
    assert said["lim_seeds"].startswith("1 seed per configuration and size (4 runs), so a difference")
    assert said["lim_steps"] == "100 to 5,000 optimizer steps, with one peak learning rate (0.002) for every size, " \
                                "not tuned per size"
    assert "d = 96, below n_h·d_h = 128" in said["lim_width"] and "adds 27–64% parameters" in said["lim_width"]
    assert said["lim_e"].startswith("E sits at its lower bound, 0, for 1 of the 2 configurations ((8, 1); upper "
                                    "95% limits 0.500 to 0.900)")
    assert said["lim_premise"].endswith("the opposite of the paper's premise")
    assert "(95% bootstrap interval 1.20–1.90)" in said["lim_premise"]


@pytest.mark.parametrize("interval, ending", [((0.5, 0.8), "as the paper's premise has it"),
                                              ((0.9, 1.1), "neither supports nor contradicts it"),
                                              ((float("nan"),) * 2, "neither supports nor contradicts it")])
def test_the_premise_verdict_is_read_from_the_interval(interval, ending):
    assert words(replace(LIMITS, heads_ratio_interval=interval))["lim_premise"].endswith(ending)


def test_limits_without_runs_or_pairs():
    assert set(words(None).values()) == {"no runs recorded"}
    assert words(replace(LIMITS, heads_pair=None))["lim_premise"].startswith("the study has no two")
    assert words(replace(LIMITS, e_at_bound=()))["lim_e"] == "no configuration's E sits at its lower bound"
    assert "up to 3 seeds" in words(replace(LIMITS, seeds_per_model=3))["lim_seeds"]
