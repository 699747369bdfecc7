"""Chapter 2's sentences about a sweep, from a synthetic sweep whose times are set by hand: sdpa reads its
cache at exactly the floor's pace, repeat costs the same at every n_kv (it copies K and V to all heads)."""

import pandas as pd
import pytest

from gqa import attention_words as words
from gqa.profiling import summarise

N_HEADS, MB = 8, 1e6


def sweep(cold=True, llc=32 * MB):
    rows = []
    for context in (4096, 16384, 65536, 262144):
        for n_kv in (1, 2, 8):
            kv = 2 * context * 16 * n_kv * 2  # K and V, d_h = 16, bf16
            floor = kv / 10e9 * 1e3  # read at 10 GB/s
            copies = N_HEADS / n_kv
            for backend, time, peak in (("sdpa", floor, kv), ("repeat", 3 * floor * copies, kv * copies),
                                        ("eager", 2 * floor, 2 * kv)):
                rows.append({"phase": "decode", "backend": backend, "n_kv": n_kv, "context": context,
                             "time_ms": time, "time_ms_min": time * 0.99, "floor_ms": floor, "kv_cache_bytes": kv,
                             "traffic_bytes": kv, "peak_extra_bytes": peak, "caches": "cold" if cold else "warm",
                             "kernel": "math"})
    frame = pd.DataFrame(rows)
    return frame.assign(n_heads=N_HEADS, device_name="Test CPU", source="synthetic", dtype="bf16", torch="2.13.0",
                        threads=2, batch=1, head_dim=16, read_bandwidth_gb_s=10.0, bandwidth_gb_s=8.0,
                        llc_bytes=llc, read_samples=5, read_bandwidth_low_gb_s=9.0)


def test_sweep_words_name_the_machine_and_the_cache_regime():
    said = words.sweep_words(sweep())
    assert said["n_heads_label"] == 8 and said["llc"] == "32.0 MB"
    assert said["sweep_meta"] == "bf16, torch 2.13.0, 2 threads, batch 1, n_h = 8, d_h = 16"
    assert said["bandwidth"].startswith("10.0 GB/s read (the floor's: the fastest of 5 samples")
    assert said["cache_sentence"].startswith("In a model, a layer's cache is read after")
    warm = words.sweep_words(sweep(cold=False, llc=float("nan")))
    assert warm["llc"] == "size not recorded" and warm["cache_sentence"].startswith("This sweep timed repeated")


def test_floor_words_see_sdpa_at_the_floor_and_the_fastest_repeats_under_it():
    decode = words.decode_rows(sweep())
    said = words.floor_words(decode)
    # every fastest repeat is 1% under its median, so sdpa's (at the floor) beat it: 12 of 36, by 1/0.99 − 1 = 1%
    assert said["floor_beaten"].startswith("12 of 36 decode measurements beat this floor, the largest by 1%")
    assert said["floor_backend"] == "sdpa" and said["floor_share_range"] == "1.00–1.00"
    assert said["floor_share_sentence"] == "so every number of KV heads reaches at least half of it."
    table = words.floor_share_table(decode)
    assert table.loc["repeat", "n_kv = 1"] == pytest.approx(round(1 / 24, 2))  # 3 × 8 copies' time


def test_slopes_follow_the_cache_for_sdpa_and_not_for_repeat():
    decode = words.decode_rows(sweep())
    # at one long context (16K) the n_kv alone move the bytes: sdpa's time moves with them, repeat's does not
    said = words.slope_words(decode[decode.context <= 16384], 32 * MB)
    slopes = dict(part.split(" ") for part in said["kv_slopes"].split("; "))
    assert float(slopes["sdpa"]) == pytest.approx(1.0, abs=0.01)
    assert float(slopes["repeat"]) == pytest.approx(0.0, abs=0.01)
    assert said["slope_sentence"].startswith("repeat does not follow the cache")
    every = words.slope_words(decode[(decode.context <= 16384) & (decode.backend != "repeat")], 32 * MB)
    assert every["slope_sentence"] == "Every backend's time grows with the bytes it reads."


def test_the_headline_case_is_n_h_over_8_at_the_headline_context():
    frame = sweep()
    summary = pd.DataFrame(summarise(frame.to_dict("records")))
    pick = words.headline_case(summary, N_HEADS, 16384)
    assert (pick["n_kv"], pick["context"]) == (1, 16384)
    said = words.headline_words(pick, words.decode_rows(frame), N_HEADS)
    assert said["head_ratio"] == "8" and said["head_time_ratio"] == "24.0"
    assert said["repeat_vs_sdpa"] == "24.0 times slower than" and said["head_sdpa_floor"] == "1.00"
    assert said["eager_remark"] == "as expected of the fused kernel."  # eager takes twice sdpa's time
    assert words.repeat_table(summary).loc["16K", "n_kv = 2"] == "12.0"


def test_allocator_words_without_a_study_say_how_to_measure_it():
    summary = pd.DataFrame(summarise(sweep().to_dict("records")))
    pick = words.headline_case(summary, N_HEADS, 16384)
    said = words.allocator_words(pick, None, "bf16", N_HEADS, "ci")
    assert said["repeat_heap"] == "not measured"
    assert said["repeat_allocator_sentence"].endswith("run gqa bench repeat --profile ci.")


def test_allocator_words_quote_both_allocators_at_the_case():
    summary = pd.DataFrame(summarise(sweep().to_dict("records")))
    pick = words.headline_case(summary, N_HEADS, 16384)
    rows = [{"allocator": a, "backend": b, "n_kv": 1, "context": t, "time_ms": ms, "repeated_tensor_mib": mib}
            for t, mib in ((16384, 4.0), (262144, 64.0))
            for a, b, ms in (("glibc default", "sdpa", 1.0), ("glibc default", "repeat", 6.0),
                             ("heap only", "sdpa", 1.0), ("heap only", "repeat", 2.0))]
    study = {"rows": rows, "dtype": "bf16", "n_heads": N_HEADS, "source": "gqa bench repeat",
             "device_name": "Test CPU", "date": "2026-12-07", "threads": 2}
    said = words.allocator_words(pick, study, "bf16", N_HEADS, "ci")
    assert said["repeat_heap"] == "2.00" and said["repeat_default_same_run"] == "6.00"
    assert "from T = 256K on at least 32 MiB" in said["repeat_allocator_sentence"]
    other_dtype = words.allocator_words(pick, study, "fp32", N_HEADS, "ci")
    assert other_dtype["repeat_heap"] == "not measured"  # a study of other settings is not quoted


def test_prefill_words_say_where_a_backend_stopped():
    prefill = pd.DataFrame({"backend": ["sdpa", "sdpa", "eager"], "context": [4096, 65536, 4096]})
    assert words.prefill_words(prefill) == ("The sweep stops a backend where its working set would pass the "
                                            "sweep's memory cap: eager at T = 4K, sdpa at T = 64K.")
    assert words.prefill_words(prefill[prefill.backend == "sdpa"]) == "The sweep measures every backend up to T = 64K."


def test_without_a_bench_the_sentence_says_how_to_make_one():
    assert words.bench_words(None, "ci").startswith("No decode benchmark with fitted losses")


def _model(heads, layers, d, tokens_s, mem):
    return {"heads": heads, "layers": layers, "d_model": d, "fitted_loss": 3.0, "tokens_per_s": tokens_s,
            "step_ms_median": 1000 / tokens_s, "step_ms_p10": 0.9 * 1000 / tokens_s,
            "step_ms_p90": 1.1 * 1000 / tokens_s, "floor_share": 0.25, "memory_bytes": mem, "threads": 2,
            "shape": f"L={layers} d={d}", "flops_per_token": 2e6}


def _bench(opt_tokens, depth_ratio, llc):
    return {"context": 4096, "target_loss": 3.0, "loss_gap": 0.001, "kv_ratio": 8 * depth_ratio,
            "kv_ratio_from_heads": 8.0, "kv_ratio_from_depth": depth_ratio,
            "measured_throughput_ratio": opt_tokens / 100,
            "predicted_by_memory": 2.0, "predicted_by_flops": 1.1, "steps": 64, "read_bandwidth_gb_s": 10.0,
            "llc_bytes": llc, "source": "gqa bench decode", "device_name": "Test CPU", "date": "2026-12-07",
            "rows": {"optimum": _model([8, 1], 2, 64, opt_tokens, 5e6), "baseline": _model([8, 8], 2, 64, 100, 9e6)}}


def test_the_bench_paragraph_follows_its_numbers():
    said = words.bench_words(_bench(150, 1.0, 0), "cpu")
    # measured 1.5x against 2x predicted from memory: 25% below
    assert "(8, 1) decodes 150 tokens/s against 100: 1.50 times faster, where the cost model predicts 2.00" in said
    assert "the measured ratio is 25% below the memory prediction" in said
    assert "1.00 times from the depths (what the two shapes give). " in said and "steps of 32" not in said
    assert "last-level cache" not in said.split("copies the cache it reads.")[1]
    other = words.bench_words(_bench(250, 1.5, 64e6), "cpu")
    assert "25% above the memory prediction" in other  # 2.5x against 2x
    assert "the FFN width moves in steps of 32" in other  # the depths differ too
    assert "Both models fit in this machine's last-level cache (64.0 MB)" in other
    table = words.bench_table(_bench(150, 1.0, 0))
    assert list(table.index) == ["optimum: (8, 1)", "baseline: (8, 8)"]
    assert table.loc["optimum: (8, 1)", "memory (MB)"] == "5.00"


def test_table5_sentence_puts_the_papers_ratio_beside_eq4s():
    row = pd.Series({"ours_8_1": 160.0, "baseline_32_8": 100.0})
    said = words.table5_words(row, {"memory_ratio": 1.25}, {"memory_ratio": 1.5})
    assert "160 against 100 tokens/s, 1.60 times faster, for models whose memory ratio by Eq. 4 is 1.25" in said
    assert "(as Eq. 3-5 are written; 1.50 as Figure 2 counts)" in said
