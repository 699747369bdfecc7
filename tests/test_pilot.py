"""The pilot's decision, on toy records whose verdicts are known by hand."""

import math

import pytest

from gqa.pilot import analyse


def _records(losses: dict[tuple[int, int], list[float]], layers: int = 2, d: int = 128) -> list[dict]:
    return [{"layers": layers, "d_model": d, "n_heads": h, "n_kv_heads": kv, "seed": seed, "val_loss": loss,
             "n_non_embedding": 1000 * (7 + kv), "tokens": 20_000 * (7 + kv)}
            for (h, kv), seeds in losses.items() for seed, loss in enumerate(seeds)]


def test_a_clear_effect_is_go():
    # spreads 0.01 each (losses m - .01, m, m + .01); effect 0.30 between (8, 8) and (8, 1)
    r = analyse(_records({(8, 8): [2.49, 2.50, 2.51], (8, 2): [2.64, 2.65, 2.66], (8, 1): [2.79, 2.80, 2.81]}))
    assert [c.heads for c in r.configurations] == [(8, 8), (8, 2), (8, 1)]
    assert r.pooled_sd == pytest.approx(0.01) and r.effect == pytest.approx(0.30)
    assert r.standard_error == pytest.approx(0.01 * math.sqrt(2 / 3))
    assert r.go and r.monotone and "36.7 standard errors" in r.reason


def test_an_effect_inside_the_seed_noise_is_no_go():
    r = analyse(_records({(8, 8): [2.40, 2.50, 2.60], (8, 1): [2.45, 2.55, 2.65]}))
    assert r.pooled_sd == pytest.approx(0.1) and r.effect == pytest.approx(0.05)
    assert not r.go and "only 0.6 standard errors" in r.reason


def test_a_non_monotone_ordering_is_no_go():
    r = analyse(_records({(8, 8): [2.50, 2.50], (8, 4): [2.90, 2.90], (8, 1): [2.80, 2.81]}))
    assert not r.monotone and not r.go and "monotonically" in r.reason


@pytest.mark.parametrize("records, message", [
    (_records({(8, 8): [2.5, 2.6]}) + _records({(8, 1): [2.7, 2.8]}, d=96), "one backbone"),
    (_records({(8, 8): [2.5], (8, 1): [2.7]}), "one seed only"),
    (_records({(8, 8): [2.5, 2.6]}), "at least two head configurations"),
])
def test_records_that_are_no_pilot_are_refused(records, message):
    with pytest.raises(ValueError, match=message):
        analyse(records)


def test_gqa_pilot_reads_a_profiles_runs_and_states_the_decision(tmp_path, monkeypatch, capsys):
    import json

    from gqa import runs
    from gqa.cli import main
    from gqa.config import sweep_configs

    profile = tmp_path / "toy.yaml"
    profile.write_text("profile: toy\ndescription: a toy pilot\nsweep:\n  train: {head_dim: 8, context: 32}\n"
                       "  heads: [[4, 4], [4, 1]]\n  sizes: [[1, 32]]\n  seeds: [0, 1, 2]\n")
    monkeypatch.setattr(runs, "RUNS_DIR", tmp_path / "runs")
    (tmp_path / "runs").mkdir()
    section = {"train": {"head_dim": 8, "context": 32}, "heads": [[4, 4], [4, 1]], "sizes": [[1, 32]],
               "seeds": [0, 1, 2]}
    losses = {(4, 4, 0): 3.00, (4, 4, 1): 3.01, (4, 4, 2): 3.02, (4, 1, 0): 3.10, (4, 1, 1): 3.11}
    with open(tmp_path / "runs" / "toy.jsonl", "w") as store:
        for cfg in sweep_configs(section):
            if (cfg.n_heads, cfg.n_kv_heads, cfg.seed) in losses:
                store.write(json.dumps({"run_id": cfg.run_id(), "config": cfg.identity(), "n_heads": cfg.n_heads,
                                        "n_kv_heads": cfg.n_kv_heads, "head_dim": 8, "vocab": 300, "layers": 1,
                                        "d_model": 32, "n_non_embedding": 1000.0, "seed": cfg.seed,
                                        "val_loss": losses[(cfg.n_heads, cfg.n_kv_heads, cfg.seed)]}) + "\n")
    assert main(["pilot", "--profile", str(profile)]) == 2  # one run missing: named, with the command
    assert "1 of the 6 runs" in capsys.readouterr().err
    assert main(["pilot", "--profile", str(profile), "--partial"]) == 0
    out = capsys.readouterr().out
    assert "5 of 6 runs recorded" in out
    assert out.strip().splitlines()[-1].startswith("GO: the effect, 0.095 nats, is 12.0")
    assert main(["pilot", "--profile", str(profile), "--partial", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # means 3.01 and 3.105; variances 1e-4 and 5e-5 pooled to sqrt(7.5e-5); SE = pooled·sqrt(1/3 + 1/2)
    assert result["go"] and result["pooled_sd"] == pytest.approx(7.5e-5 ** 0.5) and result["runs"] == 5
    assert result["ratio"] == pytest.approx(0.095 / (7.5e-5 ** 0.5 * (1 / 3 + 1 / 2) ** 0.5))


def test_words_state_the_numbers_and_the_decision():
    from gqa.pilot import words

    r = analyse(_records({(8, 8): [2.49, 2.50, 2.51], (8, 1): [2.79, 2.80, 2.81]}))
    said = words(r, _records({(8, 8): [2.49, 2.50, 2.51], (8, 1): [2.79, 2.80, 2.81]}), 6)
    assert "2.50 nats with (8, 8) and 2.80 with (8, 1), a difference of +0.300 nats" in said["pilot_numbers"]
    assert said["pilot_decision"].startswith("Go: the effect, 0.300 nats, is 36.7 standard errors")
    assert said["pilot_confound"].startswith("(8, 1) has 47% fewer parameters than (8, 8) and, at 20 tokens per "
                                             "parameter, 47% fewer training tokens")
    assert "the smallest step, from (8, 8) to (8, 1), is 0.300 nats" in said["pilot_caveats"]
    waiting = words(None, [{}] * 5, 12)
    assert waiting["pilot_numbers"].startswith("5 of its 12 runs are recorded")
