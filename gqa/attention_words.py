"""What chapter 2 says about a measured attention sweep (`gqa profile`), the repeat allocator study
(`gqa bench repeat`) and the decode benchmark (`gqa bench decode`): the sentences and tables the book shows.

A sweep is a DataFrame of `profiling.run_sweep` rows: times in ms (`time_ms` the median, `time_ms_min` the
fastest repeat), the read-bandwidth floor `floor_ms` (the bytes a step must read over the measured read
bandwidth), bytes, contexts T in tokens. Counts are returned as ints (as the book glues them), everything
else as text.
"""

from __future__ import annotations

import pandas as pd

from gqa import profiling
from gqa.units import format_bytes, format_number, format_tokens

HALF = 0.5  # a decode step under half of the floor's pace is named in the text


def llc_bytes(first: pd.Series) -> float | None:
    """The last-level cache size a sweep recorded (its first row), None when not recorded."""
    llc = first.get("llc_bytes")
    return llc if llc == llc and llc else None


def decode_rows(sweep: pd.DataFrame) -> pd.DataFrame:
    return sweep[sweep["phase"] == "decode"]


def cold(decode: pd.DataFrame) -> bool:
    """Whether every decode step read its inputs from memory (rotated through copies beyond the cache)."""
    return "caches" in decode and bool((decode["caches"] == "cold").all())


def sweep_words(sweep: pd.DataFrame) -> dict[str, str | int]:
    """Where and how the sweep was measured: the device, the source, dtype, threads, batch and heads, the
    read and copy bandwidths, the last-level cache and whether steps read cold or warm caches."""
    first = sweep.iloc[0]
    n_heads = int(first["n_heads"])
    read_gb_s = first["read_bandwidth_gb_s"]
    llc = llc_bytes(first)
    llc_text = format_bytes(llc) if llc else "size not recorded"
    cache = ("In a model, a layer's cache is read after every other layer's cache and weights have passed "
             "through the caches, so each timed step here reads its own copy of the inputs, rotated through "
             f"copies that fill four times the last-level cache ({llc_text}): the step reads its cache from "
             "memory, as the floor assumes, while the code it runs stays cached, as in a model."
             if cold(decode_rows(sweep)) else
             f"This sweep timed repeated steps on warm caches: where the bytes fit in the last-level cache "
             f"({llc_text}) they can stay cached between repeats, and there the floor does not bind.")
    return {
        "n_heads_label": n_heads, "device_name": str(first["device_name"]), "sweep_source": str(first["source"]),
        "sweep_meta": (f"{first['dtype']}, torch {first['torch']}, {int(first['threads'])} threads, "
                       f"batch {int(first['batch'])}, n_h = {n_heads}, d_h = {int(first['head_dim'])}"),
        "bandwidth": (f"{format_number(read_gb_s)} GB/s read (the floor's: the fastest of "
                      f"{int(first.get('read_samples', 1))} samples taken through the sweep; the slowest was "
                      f"{format_number(first.get('read_bandwidth_low_gb_s', read_gb_s))}), "
                      f"{format_number(first['bandwidth_gb_s'])} GB/s copy"),
        "llc": llc_text, "cache_sentence": cache,
    }


def floor_words(decode: pd.DataFrame) -> dict[str, str]:
    """Whether any decode step beat the read floor (its fastest repeat under it), and where the first
    backend reaches the floor from 16K on: its share of the floor's pace, median and fastest, and the steps
    under half of it."""
    beat = decode[decode["time_ms_min"] < decode["floor_ms"]]
    beaten = (f"No decode measurement beats this floor ({len(decode)} measured)." if len(beat) == 0 else
              f"{len(beat)} of {len(decode)} decode measurements beat this floor, the largest by "
              f"{100 * (beat['floor_ms'] / beat['time_ms_min']).max() - 100:.0f}%: where the bytes read are within a "
              "few times the last-level cache, part of them stays cached between repeats.")
    backend = decode["backend"].iloc[0]
    frac = decode[(decode["backend"] == backend) & (decode["context"] >= 16384)]
    frac = frac.assign(share=frac["floor_ms"] / frac["time_ms"])
    fastest = frac["floor_ms"] / frac["time_ms_min"]
    short = frac[frac["share"] < HALF]
    return {
        "floor_beaten": beaten,
        "floor_share_range": f"{format_number(frac['share'].min())}–{format_number(frac['share'].max())}"
        if len(frac) else "n/a",
        "floor_backend": str(backend),
        "floor_share_fastest": f"{format_number(fastest.min())}–{format_number(fastest.max())}" if len(frac) else "n/a",
        "floor_share_sentence": ("so every number of KV heads reaches at least half of it." if len(short) == 0 else
                                 "below half of it at " + ", ".join(
                                     f"n_kv = {int(r.n_kv)}, T = {format_tokens(int(r.context))} ({r.kernel})"
                                     for r in short.itertuples()) + "."),
    }


def floor_share_table(decode: pd.DataFrame) -> pd.DataFrame:
    """At the longest context: each backend's share of the floor's pace (floor over median time) per n_kv."""
    longest = decode[decode["context"] == decode["context"].max()]
    return (longest.assign(share=longest["floor_ms"] / longest["time_ms"])
            .pivot(index="backend", columns="n_kv", values="share").rename(columns=lambda k: f"n_kv = {k}").round(2))


def from_memory(decode: pd.DataFrame, llc: float | None) -> pd.Series:
    """Which decode steps read their cache from memory: every one on cold caches, else those whose traffic
    exceeds the last-level cache."""
    return cold(decode) | (decode["traffic_bytes"] > (llc or 0))


def slope_words(decode: pd.DataFrame, llc: float | None) -> dict[str, str]:
    """How each backend's time grows with the KV bytes it reads (log-log slopes over the steps read from
    memory), and which backends do not follow the cache."""
    slopes = profiling.time_per_byte_slopes(decode.assign(from_memory=from_memory(decode, llc)).to_dict("records"))
    flat = profiling.not_following_the_cache(slopes)
    return {
        "kv_slopes": "; ".join(f"{b} {format_number(k)}" for b, k in slopes.items())
        or "not enough points beyond the cache",
        "slope_sentence": (f"{', '.join(flat)} does not follow the cache: for every n_kv < n_h it copies K and V to "
                           "all n_h heads and then reads the copies, so its time follows n_h·T (and the allocator's "
                           "page faults), not the bytes GQA saves; only at n_kv = n_h, where nothing is copied, does "
                           "it keep pace." if flat else "Every backend's time grows with the bytes it reads."),
    }


def headline_case(summary: pd.DataFrame, n_heads: int, context: int) -> pd.Series:
    """The decode case the text quotes: at `context`, the grouped n_kv closest to n_h / 8."""
    head = summary[(summary["phase"] == "decode") & (summary["context"] == context)]
    grouped = head[head["n_kv"] < n_heads]
    return grouped.iloc[(grouped["n_kv"] - n_heads / 8).abs().argsort()[:1]].iloc[0]


def headline_words(pick: pd.Series, decode: pd.DataFrame, n_heads: int) -> dict[str, str]:
    """The quoted case: sdpa's and repeat's peak memory over the KV cache, repeat's and eager's time over
    sdpa's, and sdpa's share of the floor's pace."""
    ratio = pick["repeat_over_sdpa_time"]
    eager = pick["eager_ms"] / pick["sdpa_ms"]
    row = decode[(decode["context"] == pick["context"]) & (decode["n_kv"] == pick["n_kv"])].set_index("backend")
    return {
        "head_T": format_tokens(int(pick["context"])), "head_ratio": f"{n_heads // int(pick['n_kv'])}",
        "head_sdpa_mem": f"{format_number(pick['sdpa_mem_over_kv'])}",
        "head_repeat_mem": f"{format_number(pick['repeat_mem_over_kv'])}",
        "head_time_ratio": f"{format_number(ratio)}",
        "repeat_vs_sdpa": (f"{format_number(ratio)} times slower than" if ratio >= 1 else
                           f"{format_number(1 / ratio)} times faster than"),
        "head_eager_vs_sdpa": f"{format_number(eager)}",
        "eager_remark": ("a reminder that a fused kernel is not automatically the fastest one for decoding."
                         if eager < 1 else "as expected of the fused kernel."),
        "head_sdpa_floor": f"{format_number(row.loc['sdpa', 'floor_ms'] / row.loc['sdpa', 'time_ms'])}",
        "head_kernel": str(row.loc["sdpa", "kernel"]),
    }


def allocator_words(pick: pd.Series, allocator: dict | None, dtype: str, n_heads: int,
                    profile: str) -> dict[str, str]:
    """Repeat's time over sdpa's under glibc's default allocator and with every allocation from a heap that
    keeps its pages (`gqa bench repeat`), at the quoted case, and from where each repeated tensor passes
    glibc's largest mmap threshold (32 MiB); "not measured" when no study with this sweep's settings exists."""
    ratios = pd.DataFrame(profiling.repeat_ratios(allocator["rows"])) if allocator else pd.DataFrame()
    n_kv, context = int(pick["n_kv"]), int(pick["context"])
    at = ratios[(ratios["n_kv"] == n_kv) & (ratios["context"] == context)] if len(ratios) else ratios
    if not (len(at) and allocator["dtype"] == dtype and int(allocator["n_heads"]) == n_heads):
        return {"repeat_heap": "not measured", "repeat_default_same_run": "not measured",
                "repeat_allocator_sentence": (
                    "No gqa bench repeat record with this sweep's settings is in data/profiles/, so the part of "
                    "repeat's time that is glibc's (fresh pages mapped on every step for copies of 32 MiB or more) "
                    f"is not separated here: run gqa bench repeat --profile {profile}.")}
    big = ratios[ratios["repeated_tensor_mib"] >= 32]
    cross = int(big["context"].min()) if len(big) else None
    same = ratios[(ratios["n_kv"] == n_kv) & (ratios["context"] >= (cross or context))]
    heap, default = at["heap only"].iloc[0], at["glibc default"].iloc[0]
    sentence = (
        "These ratios are measured under glibc's default allocator. Each repeated K or V tensor holds "
        "n_h·T·d_h values, "
        + (f"{at['repeated_tensor_mib'].iloc[0]:.0f} MiB at {format_tokens(context)}, and from "
           f"T = {format_tokens(cross)} on at least 32 MiB, glibc's largest mmap threshold: there every step maps "
           "fresh pages for the copies and pays their page faults, for every n_kv < n_h. " if cross else "")
        + f"gqa bench repeat times the same cold steps again with every allocation served from a heap that "
        f"keeps freed pages (glibc's mmap turned off): at T = {format_tokens(context)} and n_kv = {n_kv}, repeat "
        f"then takes {format_number(heap)} times the time of sdpa instead of {format_number(default)} in the same "
        f"run (the sweep above measured {format_number(pick['repeat_over_sdpa_time'])}). The heap-only ratio is "
        "closer to repeat's own cost, writing and reading the n_h/n_kv-fold copy (while the copies still fit in "
        "the last-level cache it is a little flattering); the rest is the allocator's. These timings are noisy: "
        f"at n_kv = {n_kv} and T ≥ {format_tokens(cross or context)} the heap-only ratio runs from "
        f"{format_number(same['heap only'].min())} to {format_number(same['heap only'].max())} and the default "
        f"one from {format_number(same['glibc default'].min())} to {format_number(same['glibc default'].max())}. "
        f"({allocator['source']}, {allocator['device_name']}, {allocator['date']}, {allocator['threads']} threads.)")
    return {"repeat_default_same_run": f"{format_number(default)}", "repeat_heap": f"{format_number(heap)}",
            "repeat_allocator_sentence": sentence}


def repeat_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Repeat's decode time over sdpa's, one row per context and one column per n_kv."""
    table = summary[summary["phase"] == "decode"].pivot(index="context", columns="n_kv",
                                                        values="repeat_over_sdpa_time").sort_index()
    table.index = pd.Index([format_tokens(int(t)) for t in table.index], name="T")
    table.columns = [f"n_kv = {c}" for c in table.columns]
    return table.map(lambda x: f"{format_number(x)}")


def table5_words(table5_row: pd.Series, as_written: dict, as_plotted: dict) -> str:
    """The paper's Table 5 throughput ratio beside the memory ratio Eq. 4 predicts for its two models."""
    return (f"The paper's Table 5 measured this on GPUs at 128K for its own two models, (32, 8) at 1.2B and (8, 1) at "
            f"1.8B: {table5_row['ours_8_1']:,.0f} against {table5_row['baseline_32_8']:,.0f} tokens/s, "
            f"{format_number(table5_row['ours_8_1'] / table5_row['baseline_32_8'])} times faster, for models whose "
            f"memory ratio by Eq. 4 is {format_number(as_written['memory_ratio'])} (as Eq. 3-5 are written; "
            f"{format_number(as_plotted['memory_ratio'])} as Figure 2 counts). Ours is another experiment: tiny "
            "models on a CPU, at another memory ratio. What carries over is the comparison of a measured throughput "
            "ratio with the ratio Eq. 4 predicts, not the number.")


def _named(r: dict) -> str:
    return f"({r['heads'][0]}, {r['heads'][1]})"


def bench_words(bench: dict | None, profile: str) -> str:
    """The decode benchmark in one paragraph: the two shapes at equal fitted loss, where their KV caches
    differ (heads against depths), the measured throughput ratio against Eq. 4's and Eq. 3's predictions,
    step times and their share of the read floor."""
    if bench is None or "fitted_loss" not in bench["rows"]["optimum"]:
        return ("No decode benchmark with fitted losses for this kind of device is recorded in data/profiles/: run "
                f"gqa bench decode --profile {profile} --out data/profiles/decode_<device>_{profile}.json.")
    opt, base = bench["rows"]["optimum"], bench["rows"]["baseline"]
    measured, predicted = bench["measured_throughput_ratio"], bench["predicted_by_memory"]
    off = measured / predicted - 1
    n = format_number
    return (
        f"At T = {format_tokens(bench['context'])} and loss {n(bench['target_loss'])}, {_named(opt)} is built as "
        f"L = {opt['layers']}, d = {opt['d_model']} and {_named(base)} as L = {base['layers']}, d = {base['d_model']}, "
        f"with fitted losses {n(opt['fitted_loss'])} and {n(base['fitted_loss'])} ({n(bench['loss_gap'])} nat "
        f"apart). Their KV caches differ {n(bench['kv_ratio'])} times: "
        f"{bench['kv_ratio_from_heads']:.0f} times from the KV heads (what GQA gives) and "
        f"{n(bench['kv_ratio_from_depth'])} times from the depths (what the two shapes give)"
        + (": at these tiny sizes few buildable shapes reach the loss (the FFN width moves in steps of 32), "
           "so the depths are what the shapes allow, not a choice GQA makes. " if bench["kv_ratio_from_depth"] != 1
           else ". ")
        + f"({opt['heads'][0]}, {opt['heads'][1]}) decodes {opt['tokens_per_s']:,.0f} tokens/s against "
        f"{base['tokens_per_s']:,.0f}: {n(measured)} times faster, where the cost model predicts {n(predicted)} "
        f"from memory (Eq. 4) and {n(bench['predicted_by_flops'])} from FLOPs (Eq. 3); the measured ratio is "
        f"{100 * abs(off):.0f}% " + ("below" if off < 0 else "above") + " the memory prediction. "
        f"The median step of {_named(opt)} takes {n(opt['step_ms_median'])} ms (10-90%: {n(opt['step_ms_p10'])}-"
        f"{n(opt['step_ms_p90'])}) and of {_named(base)} {n(base['step_ms_median'])} ms ({n(base['step_ms_p10'])}-"
        f"{n(base['step_ms_p90'])}), over {bench['steps']} steps of one run; they reach only "
        f"{100 * opt['floor_share']:.0f}% and {100 * base['floor_share']:.0f}% of the read floor (weights and KV "
        f"cache read once at {n(bench['read_bandwidth_gb_s'])} GB/s): at these sizes most of a step is work that "
        "does not scale with the bytes (Python, small matrix products) and transformers' dynamic cache, which "
        "appends each step's K and V by concatenation and so copies the cache it reads. "
        + (f"Both models fit in this machine's last-level cache ({format_bytes(bench.get('llc_bytes', 0))}), so "
           "a step can read them from there rather than from memory. "
           if max(opt["memory_bytes"], base["memory_bytes"]) < bench.get("llc_bytes", 0) else "")
        + "Read the ratio as a rough check of the direction, not a measurement at the floor. "
        f"({bench['source']}, {bench['device_name']}, {bench['date']}, {opt['threads']} threads.)")


def bench_table(bench: dict) -> pd.DataFrame:
    """One row per benchmarked model: its shape, fitted loss, throughput, share of the read floor, memory and
    FLOPs per token."""
    n = format_number
    return pd.DataFrame([{"model": f"{label}: {_named(r)}", "shape": r["shape"],
                          "fitted loss": f"{n(r['fitted_loss'])}", "tokens/s": f"{n(r['tokens_per_s'])}",
                          "share of read floor": f"{n(r['floor_share'])}",
                          "memory (MB)": f"{n(r['memory_bytes'] / 1e6)}",
                          "MFLOPs/token": f"{n(r['flops_per_token'] / 1e6)}"}
                         for label, r in bench["rows"].items()]).set_index("model")


def real_table(real: pd.DataFrame) -> pd.DataFrame:
    """Real architectures measured (`gqa bench real`): KV bytes against the prediction, peak memory against
    the predicted, decode tokens/s and its multiple of the roofline."""
    shown = real.assign(**{"KV (MB)": real["kv_bytes"] / 1e6,
                           "= predicted": real["kv_bytes"] == real["kv_bytes_predicted"],
                           "peak (GB)": real["peak_rss_bytes"] / 1e9,
                           "predicted (GB)": real["memory_predicted_bytes"] / 1e9,
                           "tokens/s": real["decode_tokens_per_s"], "x roofline": real["decode_vs_roofline"]})
    return shown.set_index(["model", "context"])[["KV (MB)", "= predicted", "peak (GB)", "predicted (GB)",
                                                  "tokens/s", "x roofline"]].round(2)


def prefill_words(prefill: pd.DataFrame) -> str:
    """How far the sweep measured each backend's prefill (it stops one where its working set passes the cap)."""
    longest_by = prefill.groupby("backend")["context"].max()
    if longest_by.nunique() == 1:
        return f"The sweep measures every backend up to T = {format_tokens(int(longest_by.max()))}."
    return ("The sweep stops a backend where its working set would pass the sweep's memory cap: "
            + ", ".join(f"{b} at T = {format_tokens(int(t))}" for b, t in longest_by.items()) + ".")
