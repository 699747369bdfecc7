"""The cost model against measurement, and the attention sweep's bookkeeping."""

import csv

import pytest

from gqa import checks, cpu_decode, profiling
from gqa.cli import main


def test_counted_flops_and_real_cache_bytes_equal_the_cost_model():
    rows = checks.check_cost_model("cpu", tokens=32, batch=2)
    assert len(rows) == len(checks.CHECK_SHAPES) * 11
    bad = [r for r in rows if not r["equal"]]
    assert not bad, bad


def test_decode_flops_follow_eq3_at_the_new_context():
    from gqa.model import build_model
    from gqa.shapes import Shape

    shape = Shape(2, 64, 8, 2, head_dim=24, vocab=97)
    model = build_model(shape, attention_backend="eager").eval()
    counted, analytic = checks.measure_decode_flops(model, shape, context=40, batch=3)
    # Eq. 3 per token at T = 40, by hand: 2*(matmul params) + 4*T*L*d_h*n_h
    matmul = 2 * 2 * 64 * 24 * 10 + 3 * 2 * 64 * 192 + 64 * 97
    assert counted["total"] == analytic["total"] == 3 * (2 * matmul + 4 * 40 * 2 * 24 * 8)


def test_sweep_rows_and_memory_behaviour():
    cfg = profiling.SweepConfig(n_heads=16, kv_heads=[2], head_dim=64, decode_contexts=[8192],
                                prefill_contexts=[128], min_seconds=0.01)
    rows = profiling.run_sweep(cfg, log=lambda msg: None)
    assert {(r["backend"], r["phase"]) for r in rows} == {
        (b, p) for b in ("sdpa", "repeat", "eager") for p in ("decode", "prefill")}
    decode = {r["backend"]: r for r in rows if r["phase"] == "decode"}
    kv = decode["sdpa"]["kv_cache_bytes"]
    assert kv == 2 * 4 * 2 * 8192 * 64
    # native GQA reads the cache in place; repeating K/V materialises n_h/n_kv = 8 copies of it
    assert decode["sdpa"]["peak_extra_bytes"] <= 1.1 * kv
    assert decode["repeat"]["peak_extra_bytes"] >= 6 * kv
    assert all(r["time_ms"] > 0 and r["floor_ms"] > 0 and r["bandwidth_gb_s"] > 0 for r in rows)
    assert {r["caches"] for r in rows if r["phase"] == "decode"} == {"cold"}  # read from memory, as in a model
    assert decode["sdpa"]["kernel"] == ("gqa-cpu" if cpu_decode.available() else "flash")
    summary = profiling.summarise(rows)
    assert {s["phase"] for s in summary} == {"decode", "prefill"}
    assert all(s["repeat_over_sdpa_time"] > 0 for s in summary)


def test_oversized_cases_are_skipped_with_a_message():
    cfg = profiling.SweepConfig(kv_heads=[16], decode_contexts=[1024], prefill_contexts=[],
                                backends=["repeat"], max_working_bytes=1e3, min_seconds=0.01)
    messages = []
    with pytest.raises(ValueError, match="no rows"):
        profiling.write_rows(profiling.run_sweep(cfg, log=messages.append), profiling.PROFILE_DIR / "x.csv")
    assert messages and "skipped repeat decode" in messages[0]
    assert not (profiling.PROFILE_DIR / "x.csv").exists()


def test_bad_sweep_settings_are_clear_errors():
    with pytest.raises(ValueError, match="colour"):
        profiling.SweepConfig.from_dict({"colour": "blue"})
    with pytest.raises(ValueError, match="n_heads=16.*n_kv_heads=3"):
        profiling.SweepConfig(n_heads=16, kv_heads=[2, 3])
    with pytest.raises(ValueError, match="'fp64'"):
        profiling.run_sweep(profiling.SweepConfig(dtype="fp64"))
    with pytest.raises(ValueError, match="'xformers'"):
        profiling.run_sweep(profiling.SweepConfig(backends=["xformers"]))


def test_profile_cli_writes_csv(tmp_path, capsys):
    out = tmp_path / "sweep.csv"
    assert main(["profile", "--profile", "ci", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "DIFF" not in printed and "repeat/sdpa" in printed
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert rows and {"device", "device_name", "torch", "dtype", "time_ms", "peak_extra_bytes"} <= set(rows[0])


def test_profile_cli_errors(capsys):
    import torch

    if not torch.cuda.is_available():
        assert main(["profile", "--profile", "ci", "--device", "cuda"]) == 2
        assert "cuda" in capsys.readouterr().err
    assert main(["profile", "--profile", "nope"]) == 2
    assert "'nope'" in capsys.readouterr().err



def test_bench_decode_measures_both_models_and_their_real_kv_cache(capsys):
    import json

    from gqa import cost
    from gqa.cli import main
    from gqa.shapes import Shape

    assert main(["bench", "decode", "--profile", "ci", "--context", "1k", "--steps", "3", "--baseline", "4,4",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    opt, base = report["rows"]["optimum"], report["rows"]["baseline"]
    assert base["heads"] == [4, 4] and opt["tokens_per_s"] > 0 and base["tokens_per_s"] > 0
    for row in (opt, base):
        fields = dict(part.split("=") for part in row["shape"].split(", ")[:-1])
        shape = Shape(int(fields["L"]), int(fields["d"]), int(fields["n_h"]), int(fields["n_kv"]),
                      head_dim=int(fields["d_h"]), d_ff=int(fields["d_ff"]), vocab=int(fields["V"]))
        tokens = 1024 + 2 + 3  # the prefill, two warm-up steps and the timed steps, all in the cache
        assert row["kv_cache_bytes"] == cost.kv_cache_bytes(shape, tokens, dtype="fp32")  # real tensors = Eq. 4
    assert report["predicted_by_memory"] == pytest.approx(base["memory_bytes"] / opt["memory_bytes"])


def test_no_committed_decode_measurement_beats_its_read_floor_beyond_its_noise():
    """Every committed sweep carries the read bandwidth its floor divides by (the fastest of the samples
    taken through the sweep). Where the step read its cache from memory (timed with the caches evicted, or
    traffic beyond the last-level cache), a measurement's fastest time may undercut its floor only by its
    own spread (median over fastest), never more."""
    import pandas as pd

    from gqa.paths import PROFILES_DATA_DIR

    files = sorted(PROFILES_DATA_DIR.glob("*.csv"))
    assert files
    for path in files:
        rows = pd.read_csv(path)
        assert {"read_bandwidth_gb_s", "read_bandwidth_low_gb_s", "read_samples"} <= set(rows.columns), path.name
        assert (rows.read_bandwidth_gb_s >= rows.read_bandwidth_low_gb_s).all()
        floor_ms = rows.traffic_bytes / (rows.read_bandwidth_gb_s * 1e9) * 1e3  # recomputed, not read
        assert floor_ms.to_numpy() == pytest.approx(rows.floor_ms.to_numpy(), rel=1e-9)
        cold = rows["caches"] == "cold" if "caches" in rows else False
        beyond = rows[(rows.phase == "decode") & (cold | (rows.traffic_bytes > rows.llc_bytes))]
        assert len(beyond) >= 10, path.name
        noise = (beyond.time_ms - beyond.time_ms_min) / beyond.time_ms
        bad = beyond[beyond.time_ms_min < floor_ms[beyond.index] * (1 - noise)]
        assert bad.empty, bad[["backend", "n_kv", "context", "time_ms_min", "floor_ms"]]


def test_cold_timing_rotates_copies_of_the_inputs_past_the_eviction_size():
    """Each timed call reads a copy no call has touched since more than evict_bytes of other copies were
    read; the copies hold the inputs' values; the inputs themselves, kept hot by the copying, are not used."""
    import torch

    from gqa.machine import time_cold

    x = torch.arange(1000, dtype=torch.float32)  # 4,000 bytes
    seen = []

    def fn(t):
        seen.append(t.data_ptr())
        assert torch.equal(t, x)

    time_cold(fn, (x,), "cpu", min_seconds=60.0, max_repeats=30, evict_bytes=20_000)  # stops at 30 calls
    timed = seen[1:]  # after the warm-up call
    assert len(timed) == 30 and x.data_ptr() not in timed
    distinct = len(set(timed))
    assert distinct == 1 + 20_000 // 4_000  # six copies: the other five, 20,000 bytes, read between two uses
    for i, ptr in enumerate(timed):  # between two uses of one copy, every other copy is read
        if ptr in timed[i + 1:]:
            j = timed.index(ptr, i + 1)
            assert len(set(timed[i + 1:j])) == distinct - 1
