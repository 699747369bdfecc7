"""Appendix I's head-count law on a study's runs: fits per size, floors, reversals and the words for them,
on toy records whose answers are known by construction."""

import numpy as np

from gqa import head_law
from gqa.shapes import Shape


def _records(layers, d_model, losses):
    out = []
    for n_h, loss in losses.items():
        params = Shape(layers, d_model, n_h, 1, head_dim=16, vocab=512).params().non_embedding
        out.append({"layers": layers, "d_model": d_model, "n_heads": n_h, "n_kv_heads": 1, "val_loss": loss,
                    "n_non_embedding": params})
    return out


def test_a_true_floor_is_found_and_a_reversal_is_named():
    heads = [1, 2, 4, 8]
    floored = {h: 0.5 * h ** -0.8 + 2.0 for h in heads}  # diminishing returns to a floor of 2.0
    reversal = {1: 3.0, 2: 2.8, 4: 2.7, 8: 2.75}  # n_h = 8 above n_h = 4
    two_heads = {1: 3.0, 2: 2.9}  # too few head counts: left out
    fits = head_law.head_law_study(_records(2, 128, floored) + _records(3, 128, reversal) + _records(1, 64, two_heads))
    assert [f.label for f in fits] == ["L=2, d=128", "L=3, d=128"]
    first, second = fits
    assert first.floor and not first.reversed and first.bends_up
    assert abs(first.law.c - 2.0) < 1e-3 and abs(first.law.b + 0.8) < 1e-2
    assert not np.all(np.diff(second.loss) < 0) and second.reversed == second.floor  # a floor here is a reversal
    grow = (Shape(2, 128, 8, 1, head_dim=16, vocab=512).params().non_embedding
            / Shape(2, 128, 1, 1, head_dim=16, vocab=512).params().non_embedding - 1)
    assert np.isclose(first.param_growth, grow)
    sentence, short = head_law.words(fits)
    assert sentence.startswith("2 sizes of the study have runs at three or more")
    assert f"{100 * grow:.0f}" in sentence and short.startswith("Appendix I's head-count law is fitted at 2 sizes")
    assert [r["shape"] for r in head_law.rows(fits)] == ["L=2, d=128", "L=3, d=128"]


def test_no_size_with_three_head_counts_is_said():
    sentence, short = head_law.words(head_law.head_law_study(_records(1, 64, {1: 3.0, 2: 2.9})))
    assert "not fitted here" in sentence and short.startswith("No size has enough head counts")
