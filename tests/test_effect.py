"""Does a study show the paper's effect: the seed bootstrap, the row moves and the verdict, on toy laws whose
answers are known by hand or from the brute-force search."""

import numpy as np
import pytest

from gqa import effect
from gqa.pilot import PilotResult
from gqa.scaling import PowerLaw, fit_family, seed_bootstrap
from gqa.search import CostSetting, brute_force
from gqa.shapes import anchors_from_shapes

SIZES = [2e5, 4e5, 8e5]


def _law(a: float, b: float, e: float, losses=(2.0, 3.1)) -> PowerLaw:
    return PowerLaw(a, b, e, n_range=(SIZES[0], SIZES[-1]), loss_range=losses)


def _data(laws: dict) -> dict:
    return {h: (SIZES, [float(law.predict(n)) for n in SIZES]) for h, law in laws.items()}


def test_without_noise_every_seed_resample_is_the_point_fit():
    data = _data({(8, 8): _law(3e5, 0.8, 1.7), (8, 1): _law(2.4e5, 0.9, 1.9)})
    point = fit_family(data)
    boot = seed_bootstrap(data, 0.0, resamples=20, point=point)
    for h, law in point.items():
        assert np.allclose(boot.samples[h], [[law.a, law.b, law.e]] * 20, rtol=1e-6)


def test_seed_noise_moves_an_exact_fit_by_sigma_at_its_own_sizes():
    # three sizes, three constants: each refit passes through its noisy points, so the predicted loss at a
    # trained size spreads exactly as the noise put on it (standard deviation sigma)
    sigma = 0.02
    data = _data({(8, 8): _law(3e5, 0.8, 1.7)})
    boot = seed_bootstrap(data, sigma, resamples=3000, seed=1)
    s = boot.samples[(8, 8)]
    preds = (s[:, :1] / np.array(SIZES)[None, :]) ** s[:, 1:2] + s[:, 2:3]
    assert preds.std(axis=0) == pytest.approx([sigma] * 3, rel=0.06)
    assert preds.mean(axis=0) == pytest.approx(data[(8, 8)][1], abs=3 * sigma / np.sqrt(3000) + 2e-4)


@pytest.mark.parametrize("sigma", [-0.01, float("nan"), float("inf")])
def test_a_seed_noise_that_is_not_a_spread_is_refused(sigma):
    with pytest.raises(ValueError, match="sigma"):
        seed_bootstrap(_data({(8, 8): _law(3e5, 0.8, 1.7)}), sigma, resamples=2)


@pytest.mark.parametrize("optima, move", [
    ([(8, 8), (8, 2), (8, 1)], "fewer"),
    ([(8, 8), None, (8, 8), (8, 4)], "fewer"),
    ([(4, 1), (8, 1), (8, 1)], "same"),  # more query heads, the same KV heads
    ([(8, 1)], "same"),
    ([(8, 1), (8, 2)], "more"),
    ([(8, 2), (8, 1), (8, 4)], "both ways"),
])
def test_a_row_moves_by_its_kv_heads(optima, move):
    assert effect.kv_move(optima) == move


def _row(move: str, inside: bool = True) -> effect.Row:
    return effect.Row(2.5, (), inside, move)


@pytest.mark.parametrize("moves, verdict", [
    ([("fewer", True), ("same", True)], True),
    ([("same", True), ("same", True)], False),
    ([("fewer", True), ("more", True)], False),
    ([("fewer", True), ("both ways", True)], False),
    ([("same", True), ("fewer", False)], False),  # an extrapolated row does not count
    ([("fewer", True), ("more", False)], True),
])
def test_the_verdict_is_joint_over_the_rows_inside(moves, verdict):
    assert effect.shown([_row(m, inside) for m, inside in moves]) is verdict


def test_targets_inside_lie_strictly_within_every_fit_s_losses():
    fits = {(8, 8): _law(1, 1, 1, (2.1, 3.0)), (8, 1): _law(1, 1, 1, (2.3, 3.2))}
    assert effect.common_losses(fits) == (2.3, 3.0)
    assert effect.inside_targets(fits, 6) == [2.9, 2.8, 2.7, 2.6, 2.5, 2.4]
    assert effect.default_targets(fits, 6)[-2:] == [2.1, 2.0]  # the lowest loss reached, then one step below
    assert effect.inside_targets({(8, 8): _law(1, 1, 1, (2.1, 2.2)), (8, 1): _law(1, 1, 1, (2.3, 3.2))}) == []


SETTING = CostSetting(head_dim=16, vocab=512, anchors=anchors_from_shapes([(1, 128), (2, 128), (2, 192), (3, 256)]))
CONTEXTS = [512, 2048, 8192, 32768, 131072]


def test_the_verdict_follows_the_brute_force_optima():
    # (8, 8) reaches low losses with far fewer parameters but caches 8x the KV: at 2.1 nats it wins short
    # contexts and loses long ones; at 2.8 nats (8, 1) wins everywhere
    fits = {(8, 8): _law(2.8e5, 0.81, 1.74), (8, 2): _law(2.5e5, 0.85, 1.86), (8, 1): _law(2.35e5, 0.92, 1.93)}
    boot = seed_bootstrap(_data(fits), 0.0, resamples=3, point=fits)
    v = effect.assess(fits, boot, [2.8, 2.1], CONTEXTS, SETTING)
    for row in v.rows:
        assert list(row.optima) == [brute_force(fits, row.target, c, SETTING) for c in CONTEXTS]
        kv = [h[1] for h in row.optima]
        assert row.move == ("same" if len(set(kv)) == 1 else "fewer" if kv == sorted(kv, reverse=True) else "other")
    assert [r.move for r in v.rows] == ["same", "fewer"]  # the hand-chosen laws do what the comment says
    assert v.shown and v.agreement == 1.0
    words = effect.verdict_words(_study(fits, boot), v)
    assert words["eff_verdict"].startswith("Yes, at the 2 target losses inside the range every configuration's")
    assert "100% of the 3 seed resamples reach the same verdict" in words["eff_verdict"]
    assert "(8, 8) at 512 tokens" in words["eff_why"] and words["eff_beyond"] == ""
    assert words["eff_headline"] == "shows the effect (6 runs, 4.0× in size)"  # 2e5 to 8e5 parameters


def test_a_study_whose_extra_kv_heads_do_not_pay_says_no_and_by_how_much():
    fits = {(8, 2): _law(2.5e5, 0.85, 1.86), (8, 1): _law(2.35e5, 0.92, 1.93)}
    boot = seed_bootstrap(_data(fits), 0.0, resamples=2, point=fits)
    v = effect.assess(fits, boot, [2.8, 2.6], CONTEXTS, SETTING)
    assert not v.shown and {r.move for r in v.rows} == {"same"}
    gap = effect.cost_gap(fits, 2.8, 512, SETTING)
    from gqa.search import cost_at

    z = {h: cost_at(h, fits[h].params_for_loss(2.8), 512, SETTING).score for h in fits}
    assert gap == ((8, 1), (8, 2), pytest.approx(z[(8, 2)] / z[(8, 1)]))
    words = effect.verdict_words(_study(fits, boot), v)
    assert words["eff_verdict"].startswith("No, not within the sizes trained")
    assert "keeps n_kv = 1 at every context from 512 to 128K" in words["eff_verdict"]
    assert f"costs {100 * (z[(8, 2)] / z[(8, 1)] - 1):.1f}%" in words["eff_why"]
    assert "gains query heads" not in words["eff_verdict"]  # (8, 1) everywhere
    assert words["eff_headline"] == "does not show the effect within the sizes trained (4 runs, 4.0× in size)"


def test_a_row_that_gains_query_heads_is_named_against_the_paper_s_pattern():
    row = effect.Row(2.8, ((4, 1), (4, 1), (8, 1)), True, "same")
    verdict = effect.Verdict((512, 2048, 8192), (row,), False, 1.0, 10, (2.5, 3.0))
    fits = {(4, 1): _law(2.5e5, 0.85, 1.86), (8, 1): _law(2.35e5, 0.92, 1.93)}
    text = effect.verdict_words(_study(fits, None), verdict)["eff_verdict"]
    assert text.endswith("In 1 of these rows the optimum gains query heads as the context grows ((4, 1) at 512 "
                         "tokens, (8, 1) from 8K), against the paper's pattern of fewer heads at longer contexts.")


def _study(fits, boot) -> effect.Study:
    pilot = PilotResult((2, 128), (), 0.0133, 0.1, 0.01, True, True, "")
    records = [{"layers": 2, "d_model": d, "n_heads": h, "n_kv_heads": kv, "head_dim": 16, "d_ff": None, "vocab": 512,
                "config": {}} for d in (128, 192) for h, kv in fits]
    return effect.Study("toy", records, [], _data(fits), fits, boot, pilot, SETTING)


def test_progress_names_the_runs_still_training():
    class Config:  # what progress reads of a TrainConfig
        def __init__(self, layers, d_model):
            self.layers, self.d_model = layers, d_model

    text = effect.progress_words(15, [Config(3, 256)] * 5, "study")
    assert text == ("15 of the 20 runs profile study plans are recorded; the 5 runs at L = 3, d = 256 are still "
                    "training (the command gqa sweep --profile study resumes them), so what follows is provisional.")
    assert effect.progress_words(20, [], "study") == "20 of the 20 runs profile study plans are recorded."
