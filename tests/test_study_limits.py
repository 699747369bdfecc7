"""The limits chapter 3's box states, computed from hand-made records whose answers are known."""

import numpy as np
import pytest

from gqa.scaling import PowerLaw
from gqa.shapes import Shape
from gqa.study_limits import study_limits


def record(n_h, n_kv, layers, d, loss, steps, lr=2e-3, context=128, seed=0):
    s = Shape(layers, d, n_h, n_kv, head_dim=16, vocab=2048)
    return {"n_heads": n_h, "n_kv_heads": n_kv, "layers": layers, "d_model": d, "head_dim": 16, "vocab": 2048,
            "n_total": s.params().total, "n_non_embedding": s.params().non_embedding, "val_loss": loss,
            "steps": steps, "seed": seed, "config": {"context": context, "lr": lr}}


def test_limits_of_a_hand_made_study():
    records = [record(8, 1, 1, 32, 4.5, 100), record(8, 1, 1, 32, 4.52, 100, seed=1),
               record(1, 1, 4, 256, 3.5, 5000, lr=1e-3), record(8, 1, 4, 256, 3.4, 5000, context=256)]
    fits = {(8, 1): PowerLaw(1e5, 0.3, 0.0), (1, 1): PowerLaw(1e6, 0.3, 1.0)}
    lim = study_limits(records, fits, None)
    assert lim.runs == 4 and lim.train_contexts == (128, 256) and lim.seeds_per_model == 2
    assert lim.steps == (100, 5000) and lim.learning_rates == (1e-3, 2e-3)
    # embedding 2048·d against the rest: heavier at d = 32 (65,536 > 28,672), lighter at d = 256
    assert lim.embedding_heavier == 2
    assert lim.widest == 256 and lim.query_width == 8 * 16
    # n_h 1 -> 8 at (1, 32): attention 2·32·16·(8+1) - 2·32·16·2 = 7,168 more on 1·(2,048 + 3·32·96) = 11,264
    def n(h):
        return Shape(1, 32, h, 1, head_dim=16).params().non_embedding

    small = n(8) / n(1) - 1
    assert lim.head_growth[1] == pytest.approx(small) and small == pytest.approx(7168 / 11264)
    assert lim.e_at_bound == ((8, 1),)
    # at the median loss (4.0) the (1, 1) law needs 1e6/3^(1/0.3) ≈ 2.6e4 and (8, 1) 1e5/4^(1/0.3) ≈ 9.8e2
    assert lim.median_loss == pytest.approx(4.0)
    assert lim.most_params == (1, 1) and lim.fewest_params == (8, 1)


def test_provenance_names_each_machine_and_keeps_dirty_commits_dirty():
    from gqa.runs import provenance

    def made(cpu, commit, hours):
        return {"machine": {"cpu": cpu, "cores": 2, "torch": "2.13.0+cpu"}, "git_commit": commit,
                "wall_time_s": hours * 3600}

    records = [made("Intel Xeon", "a" * 40 + "+dirty", 1.0), made("Intel Xeon", "a" * 40 + "+dirty", 0.5),
               made("AMD EPYC", "b" * 40, 0.25)]
    p = provenance(records)
    assert p.machines == [("Intel Xeon", 2, "2.13.0+cpu", 2, 1.5), ("AMD EPYC", 2, "2.13.0+cpu", 1, 0.25)]
    assert p.commits == ["a" * 10 + "+dirty", "b" * 10] and p.dirty == 2 and p.runs == 3


def test_the_premise_ratio_and_its_bootstrap_interval():
    from gqa.scaling import Bootstrap

    records = [record(8, 1, 1, 32, 4.5, 100), record(1, 1, 4, 256, 3.5, 5000)]
    point = {(8, 1): PowerLaw(1e5, 0.3, 0.0), (1, 1): PowerLaw(1e6, 0.3, 1.0)}
    # two resamples: (8, 1)'s a doubled, then halved; (1, 1) unchanged
    samples = {(8, 1): np.array([(2e5, 0.3, 0.0), (5e4, 0.3, 0.0)]), (1, 1): np.array([(1e6, 0.3, 1.0)] * 2)}
    lim = study_limits(records, point, Bootstrap(point, samples, False, 0))
    median = 4.0
    want = PowerLaw(1e5, 0.3, 0.0).params_for_loss(median) / PowerLaw(1e6, 0.3, 1.0).params_for_loss(median)
    assert lim.heads_pair == ((8, 1), (1, 1)) and lim.heads_ratio == pytest.approx(want)
    # N* is proportional to a: the resampled ratios are 2x and 0.5x the point ratio
    lo, hi = lim.heads_ratio_interval
    assert lo == pytest.approx(want * (0.5 + 0.025 * 1.5)) and hi == pytest.approx(want * (2 - 0.025 * 1.5))
