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


@pytest.mark.slow  # a real sweep: about 16 s
def test_sweep_rows_and_memory_behaviour():
    cfg = profiling.SweepConfig(n_heads=16, kv_heads=[2], head_dim=64, decode_contexts=[8192],
                                prefill_contexts=[128], min_seconds=0.01, bandwidth_rounds=1)
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
                                backends=["repeat"], max_working_bytes=1e3, min_seconds=0.01, bandwidth_rounds=1)
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


@pytest.mark.slow  # a whole attention sweep through the command: about 20 s
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



@pytest.mark.checkout
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
        tokens = 1024 + 4 + 3  # the prefill, four warm-up steps and the timed steps, all in the cache
        assert row["kv_cache_bytes"] == cost.kv_cache_bytes(shape, tokens, dtype="fp32")  # real tensors = Eq. 4
        assert row["step_ms_p10"] <= row["step_ms_median"] <= row["step_ms_p90"]
        assert 0 < row["floor_share"]
    assert report["predicted_by_memory"] == pytest.approx(base["memory_bytes"] / opt["memory_bytes"])
    # both models at buildable shapes whose fitted losses are within 0.02 nat: refit and predict independently
    from gqa import profiles, sources
    from gqa.runs import study_records

    records, _ = study_records(profiles.load("ci").section("sweep"), "ci")
    fits = sources.source_from_records(records, resamples=0).fits
    for row in (opt, base):
        law = fits[tuple(row["heads"])]
        assert row["fitted_loss"] == pytest.approx(float(law.predict(row["params_non_embedding"])), abs=1e-9)
    assert abs(opt["fitted_loss"] - base["fitted_loss"]) <= 0.02
    # the KV ratio is the KV heads' ratio (GQA) times the depths' ratio (the shapes)
    assert report["kv_ratio_from_heads"] == base["heads"][1] / opt["heads"][1]
    assert report["kv_ratio_from_depth"] == base["layers"] / opt["layers"]
    kv_per_token = [2 * r["layers"] * r["heads"][1] for r in (base, opt)]  # d_h and dtype cancel
    assert report["kv_ratio"] == pytest.approx(kv_per_token[0] / kv_per_token[1])
    assert report["kv_ratio"] == pytest.approx(report["kv_ratio_from_heads"] * report["kv_ratio_from_depth"])


def test_repeat_ratios_divide_repeat_by_sdpa_per_allocator():
    rows = [{"allocator": a, "backend": b, "n_kv": 2, "context": 8192, "time_ms": t, "time_ms_min": t,
             "repeated_tensor_mib": 32.0}
            for a, b, t in (("glibc default", "sdpa", 2.0), ("glibc default", "repeat", 60.0),
                            ("heap only", "sdpa", 2.0), ("heap only", "repeat", 20.0))]
    (ratio,) = profiling.repeat_ratios(rows)
    assert ratio == {"n_kv": 2, "context": 8192, "repeated_tensor_mib": 32.0, "glibc default": 30.0, "heap only": 10.0}


def test_heap_only_allocation_turns_mmap_off_and_restores_it():
    """Inside the block a large allocation comes from the heap (below the program break); outside, glibc maps
    it on its own (above the break, where mappings live). In a fresh process: in this one, earlier tests leave
    free heap chunks large enough to serve the allocation whatever mmap is allowed to do."""
    import subprocess
    import sys

    check = """
import ctypes
from gqa.machine import heap_only_allocation

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.sbrk.restype = ctypes.c_void_p
libc.sbrk.argtypes = [ctypes.c_ssize_t]
size = 64 * 2**20  # above glibc's largest mmap threshold (32 MiB)
with heap_only_allocation() as active:
    assert active
    block = libc.malloc(size)
    assert block and block + size <= libc.sbrk(0), "inside the block: not from the heap"
    libc.free(block)
block = libc.malloc(size)
assert block and block > libc.sbrk(0), "after the block: not a mapping of its own"
libc.free(block)
"""
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-1000:]


def test_bench_repeat_writes_both_allocators_for_every_grouped_case(tmp_path, capsys):
    out = tmp_path / "allocator_test_ci.json"  # the chapter reads data/profiles/allocator_*.json
    assert main(["bench", "repeat", "--profile", "ci", "--out", str(out)]) == 0
    import json

    record = json.loads(out.read_text())
    cases = {(r["allocator"], r["backend"], r["n_kv"], r["context"]) for r in record["rows"]}
    # the ci sweep: n_kv 2 of n_h 16, decode at 1K and 4K; only T >= 2K is timed
    assert cases == {(a, b, 2, 4096) for a in profiling.ALLOCATORS for b in ("sdpa", "repeat")}
    (ratio,) = profiling.repeat_ratios(record["rows"])
    assert ratio["repeated_tensor_mib"] == 16 * 4096 * 64 * 4 / 2**20  # n_h·T·d_h fp32 values
    assert "heap only" in capsys.readouterr().out
    assert profiling.find_allocator_study("cpu", tmp_path)["source"] == out.name


def test_a_users_profile_named_like_a_built_in_one_never_overwrites_its_measurements(tmp_path):
    from gqa.cli._common import profile_identity as _output_name
    from gqa.paths import PARAMS_DIR

    mine = tmp_path / "cpu.yaml"
    mine.write_text((PARAMS_DIR / "cpu.yaml").read_text())
    assert _output_name("cpu") == "cpu" and _output_name(str(PARAMS_DIR / "cpu.yaml")) == "cpu"
    name = _output_name(str(mine))
    assert name.startswith("cpu-") and len(name) == len("cpu-") + 8
    other = tmp_path / "b" / "cpu.yaml"  # same content elsewhere, or other content here: another name
    other.parent.mkdir()
    other.write_text(mine.read_text())
    assert _output_name(str(other)) != name
    mine.write_text(mine.read_text() + "\n# changed\n")
    assert _output_name(str(mine)) != name


def test_time_per_byte_slopes_tell_a_backend_that_follows_the_cache_from_one_that_does_not():
    """Synthetic decode rows: sdpa's time is bytes / bandwidth (slope 1), repeat's a constant copy cost
    (slope 0); rows in cache or at short contexts are left out, and a backend with under three points too."""
    rows = []
    for context in (1024, 8192, 16384, 32768, 65536):
        kv = context * 4096.0
        rows.append({"backend": "sdpa", "context": context, "kv_cache_bytes": kv, "time_ms": kv / 1e7,
                     "from_memory": True})
        rows.append({"backend": "repeat", "context": context, "kv_cache_bytes": kv, "time_ms": 5.0,
                     "from_memory": True})
        rows.append({"backend": "eager", "context": context, "kv_cache_bytes": kv, "time_ms": 1.0,
                     "from_memory": context == 65536})  # one point from memory: no slope
    rows.append({"backend": "sdpa", "context": 2048, "kv_cache_bytes": 1.0, "time_ms": 1e6, "from_memory": True})
    slopes = profiling.time_per_byte_slopes(rows)
    assert set(slopes) == {"sdpa", "repeat"}
    assert abs(slopes["sdpa"] - 1) < 1e-9 and abs(slopes["repeat"]) < 1e-9
    assert profiling.not_following_the_cache(slopes) == ["repeat"]


@pytest.mark.parametrize("kib, max_repeats", [(4, 8), (512, 50)])
def test_a_cold_timing_never_reads_a_copy_still_in_the_cache(kib, max_repeats, monkeypatch):
    """Small inputs: each timed call gets a copy of its own, read once (after a write of the eviction bytes).
    Large ones: the copies rotate, with at least `evict_bytes` of other copies read between two uses of one.
    The inputs themselves are never timed (making the copies reads them)."""
    import torch

    from gqa.machine import time_cold

    evict = 1 << 20  # 1 MiB to evict: 256 copies of 4 KiB, 2 of 512 KiB
    x = torch.zeros(kib * 256)  # kib KiB of float32
    seen, flushes, empty = [], [], torch.empty

    def counting_empty(*size, **kwargs):
        flushes.append((size, len(seen)))  # how big, and how many calls had run by then
        return empty(*size, **kwargs)

    monkeypatch.setattr(torch, "empty", counting_empty)
    time_cold(lambda t: seen.append(t.data_ptr()), (x,), "cpu", min_seconds=0.0, max_repeats=max_repeats,
              evict_bytes=evict)
    assert x.data_ptr() not in seen and len(seen) > 5
    rotation = -(-evict // (kib * 1024))
    if rotation > max_repeats:
        assert len(set(seen)) == len(seen)  # one copy per call (the warm-up's too), each read once
        assert flushes == [((evict,), 0)]  # and one write of the eviction bytes, before the first call
    else:  # between two reads of one copy (the warm-up's included), at least `evict` bytes of others are read
        last = {}
        for i, ptr in enumerate(seen):
            assert ptr not in last or (i - last[ptr]) * kib * 1024 > evict
            last[ptr] = i
        assert len(set(seen)) < len(seen) and flushes == []  # they rotate, and evict one another
