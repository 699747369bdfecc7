"""The attention benchmark: time and peak extra memory of one decode step and of one prefill, per
backend, n_kv and context, against a read-bandwidth floor; where sweeps are written and how they are
found again. The machine facts and timing it uses are in `gqa.machine`; the measured checks of the cost
model in `gqa.checks`.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import os
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from gqa import attention
from gqa.config import SweepConfig
from gqa.machine import (
    TORCH_DTYPES,
    cpu_peak_memory_supported,
    device_name,
    device_slug,
    heap_only_allocation,
    last_level_cache_bytes,
    memory_bandwidth,
    peak_extra_memory,
    read_bandwidth,
    time_call,
    time_cold,
)
from gqa.paths import PROFILES_DATA_DIR as PROFILE_DIR


def profile_path(device: str, profile: str) -> Path:
    """Where `gqa profile` writes a sweep: data/profiles/<device slug>_<profile>.csv."""
    return PROFILE_DIR / f"{device_slug(device)}_{profile}.csv"


# --- The attention sweep ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    backend: str
    phase: str  # "decode" (one new token against a cache of `context`) or "prefill" (`context` tokens)
    n_kv: int
    context: int


def cases(cfg: SweepConfig) -> list[Case]:
    out = []
    for n_kv in cfg.kv_heads:
        for backend in cfg.backends:
            out += [Case(backend, "decode", n_kv, t) for t in cfg.decode_contexts]
            out += [Case(backend, "prefill", n_kv, t) for t in cfg.prefill_contexts]
    return out


def working_bytes(cfg: SweepConfig, case: Case) -> float:
    """Analytic bytes a case needs at its peak: inputs, repeated K/V, and eager's score matrix."""
    b, h, d, s = cfg.batch, cfg.n_heads, cfg.head_dim, case.context
    size = torch.finfo(TORCH_DTYPES[cfg.dtype]).bits // 8
    q_len = 1 if case.phase == "decode" else s
    total = size * b * d * (2 * case.n_kv * s + 2 * h * q_len)
    if case.backend == "repeat":
        total += 2 * size * b * h * s * d
    if case.backend == "eager":
        total += 3 * 4 * b * h * q_len * s  # scores, fp32 probabilities, mask fill
    return float(total)


def _inputs(cfg: SweepConfig, case: Case) -> tuple[torch.Tensor, ...]:
    dtype = TORCH_DTYPES[cfg.dtype]
    g = torch.Generator(device="cpu").manual_seed(0)
    q_len = 1 if case.phase == "decode" else case.context

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float32).to(device=cfg.device, dtype=dtype)

    return (rand(cfg.batch, cfg.n_heads, q_len, cfg.head_dim),
            rand(cfg.batch, case.n_kv, case.context, cfg.head_dim),
            rand(cfg.batch, case.n_kv, case.context, cfg.head_dim))


def traffic_bytes(cfg: SweepConfig, case: Case) -> float:
    """Bytes an ideal kernel must move: read Q, K, V once and write the output."""
    size = torch.finfo(TORCH_DTYPES[cfg.dtype]).bits // 8
    q_len = 1 if case.phase == "decode" else case.context
    return float(size * cfg.batch * cfg.head_dim * (2 * cfg.n_heads * q_len + 2 * case.n_kv * case.context))


def case_flops(cfg: SweepConfig, case: Case) -> float:
    """Attention-operator FLOPs: QKᵀ and AV over every (query, key) pair the kernel computes."""
    q_len = 1 if case.phase == "decode" else case.context
    pairs = q_len * case.context if case.phase == "decode" else case.context * (case.context + 1) / 2
    return 4.0 * cfg.batch * cfg.n_heads * cfg.head_dim * pairs


def run_sweep(cfg: SweepConfig, progress: Iterable | None = None,
              log: Callable[[str], None] = print) -> list[dict]:
    """Time every case, then measure its peak extra memory; one row per case that fits."""
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but torch sees no CUDA device")
    for backend in cfg.backends:
        attention.check_backend(backend)
    if cfg.dtype not in TORCH_DTYPES:
        raise ValueError(f"unknown dtype {cfg.dtype!r}; choose one of {', '.join(TORCH_DTYPES)}")
    if cfg.device == "cpu" and not cpu_peak_memory_supported():
        raise RuntimeError("peak CPU memory needs Linux /proc/self/clear_refs, not available here")
    todo = [c for c in cases(cfg) if working_bytes(cfg, c) <= cfg.max_working_bytes]
    for c in cases(cfg):
        if c not in todo:
            log(f"skipped {c.backend} {c.phase} n_kv={c.n_kv} T={c.context}: needs "
                f"{working_bytes(cfg, c) / 1e9:.1f} GB > max_working_bytes")
    bandwidth = memory_bandwidth(cfg.device)
    # sampled again between groups of cases: a VM's bandwidth drifts
    reads = [read_bandwidth(cfg.device, rounds=cfg.bandwidth_rounds)]
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": platform.node(),
            "device": cfg.device, "device_name": device_name(cfg.device), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "dtype": cfg.dtype, "batch": cfg.batch,
            "n_heads": cfg.n_heads, "head_dim": cfg.head_dim, "bandwidth_gb_s": bandwidth / 1e9,
            "llc_bytes": last_level_cache_bytes(cfg.device)}
    rows: list[dict] = []
    bar = progress(total=2 * len(todo)) if progress else None
    group = None
    for c in todo:  # timings first: the memory pass changes how malloc behaves
        if (c.backend, c.phase, c.n_kv) != group and group is not None and cfg.bandwidth_rounds > 1:
            reads.append(read_bandwidth(cfg.device, rounds=1, seconds=0.05))  # a careful sweep follows the drift
        group = (c.backend, c.phase, c.n_kv)
        q, k, v = _inputs(cfg, c)
        step = functools.partial(attention.FUNCTIONS[c.backend], None, attention_mask=None)  # step(q, k, v)
        if c.phase == "decode":  # as in a model: this layer's cache is read after every other layer's
            median, fastest = time_cold(step, (q, k, v), cfg.device, min_seconds=cfg.min_seconds)
        else:
            median, fastest = time_call(functools.partial(step, q, k, v), cfg.device, min_seconds=cfg.min_seconds)
        kernel = ""
        if c.backend == "sdpa" and c.phase == "decode":
            kernel = attention.decode_kernel(q, k, v, None)
        elif c.backend in ("sdpa", "repeat"):
            kk, vv = (k, v) if c.backend == "sdpa" else (attention.repeat_kv(k, cfg.n_heads // c.n_kv),
                                                         attention.repeat_kv(v, cfg.n_heads // c.n_kv))
            kernel = attention.sdpa_kernel_chosen(q, kk, vv, is_causal=c.phase == "prefill")
        traffic = traffic_bytes(cfg, c)
        rows.append({**meta, **asdict(c), "n_kv": c.n_kv, "kernel": kernel,
                     "caches": "cold" if c.phase == "decode" else "warm",
                     "time_ms": median * 1e3, "time_ms_min": fastest * 1e3,
                     "kv_cache_bytes": 2 * q.element_size() * cfg.batch * c.n_kv * c.context * cfg.head_dim,
                     "traffic_bytes": traffic, "flops": case_flops(cfg, c)})
        if bar:
            bar.update()
        del q, k, v, step
    if cfg.bandwidth_rounds > 1:
        reads.append(read_bandwidth(cfg.device, rounds=1, seconds=0.05))
    read = max(reads)  # a floor must not be beaten: the fastest read the machine showed during the sweep
    for row in rows:
        row.update({"read_bandwidth_gb_s": read / 1e9, "read_bandwidth_low_gb_s": min(reads) / 1e9,
                    "read_samples": len(reads), "floor_ms": row["traffic_bytes"] / read * 1e3})
    for row in rows:
        c = Case(row["backend"], row["phase"], row["n_kv"], row["context"])
        call = functools.partial(attention.FUNCTIONS[c.backend], None, *_inputs(cfg, c), None)
        call()  # warm up: one-time allocations are not the op's
        row["peak_extra_bytes"] = min(peak_extra_memory(call, cfg.device) for _ in range(2))
        del call
        if bar:
            bar.update()
    if bar:
        bar.close()
    return rows


# --- repeat against sdpa, with and without the allocator's cost -------------------------------------

ALLOCATORS = ("glibc default", "heap only")


def allocator_path(device: str, profile: str) -> Path:
    """Where `gqa bench repeat --out` writes by default: data/profiles/allocator_<device slug>_<profile>.json."""
    return PROFILE_DIR / f"allocator_{device_slug(device)}_{profile}.json"


def repeat_allocator_rows(cfg: SweepConfig, min_context: int = 2048,
                          log: Callable[[str], None] = print) -> list[dict]:
    """Decode-step time of `repeat` and `sdpa` (cold, as in the sweep) under glibc's default allocator and
    with every allocation served from a heap that keeps freed pages (`machine.heap_only_allocation`).

    `repeat` allocates two (B, n_h, T, d_h) copies of K and V on every step. Once one copy passes glibc's
    largest mmap threshold (32 MiB), each step maps fresh pages and pays their page faults: a cost of the
    allocator, not of repeating. With the heap only, the copies reuse warm pages, and what remains is
    repeat's own cost (writing and reading the n_h/n_kv-fold cache). Only grouped n_kv (< n_h) are timed."""
    if not cfg.device == "cpu":
        raise ValueError("the allocator comparison is for glibc on a CPU (CUDA has a caching allocator)")
    contexts = [t for t in cfg.decode_contexts if t >= min_context]
    kv_heads = [k for k in cfg.kv_heads if k < cfg.n_heads]
    size = torch.finfo(TORCH_DTYPES[cfg.dtype]).bits // 8
    repeated = cfg.batch * cfg.n_heads * cfg.head_dim * size  # bytes per position of one repeated K or V
    rows = []
    for allocator in ALLOCATORS:
        with (heap_only_allocation() if allocator == "heap only" else contextlib.nullcontext()):
            for n_kv in kv_heads:
                for context in contexts:
                    for backend in ("sdpa", "repeat"):
                        case = Case(backend, "decode", n_kv, context)
                        step = functools.partial(attention.FUNCTIONS[backend], None, attention_mask=None)
                        median, fastest = time_cold(step, _inputs(cfg, case), cfg.device,
                                                    min_seconds=cfg.min_seconds)
                        rows.append({"allocator": allocator, "backend": backend, "n_kv": n_kv, "context": context,
                                     "time_ms": median * 1e3, "time_ms_min": fastest * 1e3,
                                     "repeated_tensor_mib": repeated * context / 2**20})
                        log(f"{allocator:14} {backend:6} n_kv={n_kv:<3} T={context:<6} {median * 1e3:9.2f} ms")
    return rows


def repeat_ratios(rows: list[dict]) -> list[dict]:
    """Per n_kv and context: repeat's time over sdpa's under each allocator (median steps)."""
    times = {(r["allocator"], r["backend"], int(r["n_kv"]), int(r["context"])): float(r["time_ms"]) for r in rows}
    keys = sorted({(n, t) for _, _, n, t in times})
    return [{"n_kv": n, "context": t, "repeated_tensor_mib": next(r["repeated_tensor_mib"] for r in rows
                                                                  if int(r["n_kv"]) == n and int(r["context"]) == t),
             **{a: times[(a, "repeat", n, t)] / times[(a, "sdpa", n, t)] for a in ALLOCATORS
                if (a, "repeat", n, t) in times and (a, "sdpa", n, t) in times}}
            for n, t in keys]


def find_allocator_study(device: str, directory: Path | None = None) -> dict | None:
    """The newest `gqa bench repeat` record (allocator_*.json) for this kind of device; None if none."""
    return _newest_record("allocator_*.json", "allocator study", device, directory,
                          lambda r: isinstance(r.get("rows"), list))


def write_rows(rows: list[dict], path: Path) -> Path:
    """Write rows as CSV atomically (a temporary file renamed into place)."""
    if not rows:
        raise ValueError("no rows to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)
    return path


def summarise(rows: list[dict]) -> list[dict]:
    """Per phase, n_kv and context: repeat/sdpa time ratio and each backend's memory over the KV cache."""
    by_key: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        by_key.setdefault((r["phase"], int(r["n_kv"]), int(r["context"])), {})[r["backend"]] = r
    out = []
    for (phase, n_kv, context), backends in sorted(by_key.items()):
        entry = {"phase": phase, "n_kv": n_kv, "context": context}
        kv = float(next(iter(backends.values()))["kv_cache_bytes"])
        for name, r in backends.items():
            entry[f"{name}_ms"] = float(r["time_ms"])
            entry[f"{name}_mem_over_kv"] = float(r["peak_extra_bytes"]) / kv
        if "sdpa" in backends and "repeat" in backends:
            entry["repeat_over_sdpa_time"] = float(backends["repeat"]["time_ms"]) / float(backends["sdpa"]["time_ms"])
        out.append(entry)
    return out


# --- The cost model against measurement, in one table ----------------------------------------------

def expected_cases(cfg: SweepConfig) -> list[Case]:
    """The cases a sweep measures: every case whose analytic working set fits max_working_bytes."""
    return [c for c in cases(cfg) if working_bytes(cfg, c) <= cfg.max_working_bytes]


SWEEP_COLUMNS = ("date", "device", "device_name", "dtype", "batch", "n_heads", "head_dim", "backend", "phase",
                 "n_kv", "context", "time_ms", "floor_ms", "kv_cache_bytes", "peak_extra_bytes")


def find_sweep(cfg: SweepConfig, directory: Path | None = None):
    """The measured rows of a sweep, found by what produced them, not by a profile's name.

    A CSV under data/profiles/ serves when it was measured with the same settings (device kind, dtype,
    batch, n_h, d_h) and holds every case the sweep asks for; only those cases' rows are returned, with
    the file's name in a `source` column. Where several files serve, this machine's is preferred, then
    the newest. None when no file serves (run `gqa profile` with these settings)."""
    import pandas as pd

    from gqa.paths import display_path

    want = {(c.backend, c.phase, c.n_kv, c.context) for c in expected_cases(cfg)}
    kind = "cuda" if cfg.device.startswith("cuda") else "cpu"
    found = []
    for path in sorted((directory or PROFILE_DIR).glob(f"{kind}-*.csv")):  # sweeps are <device slug>_<profile>.csv
        try:
            df = pd.read_csv(path)
        except (ValueError, OSError, UnicodeDecodeError) as e:
            raise ValueError(f"{display_path(path)}: not a readable sweep CSV ({e})") from None
        missing = [c for c in SWEEP_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"{display_path(path)}: not a sweep CSV (no column {missing[0]!r})")
        same = ((df["device"].astype(str).str.split(":").str[0] == kind) & (df["dtype"] == cfg.dtype)
                & (df["batch"] == cfg.batch) & (df["n_heads"] == cfg.n_heads) & (df["head_dim"] == cfg.head_dim))
        part = df[same]
        keys = [(b, p, int(n), int(t)) for b, p, n, t in zip(part.backend, part.phase, part.n_kv, part.context)]
        if want <= set(keys):
            found.append((path, part[[k in want for k in keys]].assign(source=path.name)))
    if not found:
        return None
    here = device_name(cfg.device) if kind == "cpu" else None
    mine = [f for f in found if (f[1]["device_name"] == here).all()] or found
    return max(mine, key=lambda f: (str(f[1]["date"].max()), f[0].name))[1].reset_index(drop=True)


def find_decode_bench(device: str, directory: Path | None = None) -> dict | None:
    """The newest `gqa bench decode --out` record under data/profiles/ (decode_*.json) measured on this kind
    of device, this machine's preferred; None when there is none. The record's file name is in `source`."""
    return _newest_record("decode_*.json", "decode benchmark", device, directory)


def _newest_record(pattern: str, what: str, device: str, directory: Path | None, usable=lambda record: True):
    """The newest JSON record matching `pattern` under data/profiles/ measured on this kind of device (this
    machine's preferred), with its file name in `source`; None when there is none."""
    kind = "cuda" if device.startswith("cuda") else "cpu"
    found = []
    for path in sorted((directory or PROFILE_DIR).glob(pattern)):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ValueError(f"{path.name}: not a readable {what} ({e})") from None
        if str(record.get("device", "")).split(":")[0] == kind and usable(record):
            found.append({**record, "source": path.name})
    if not found:
        return None
    here = device_name(device) if kind == "cpu" else None
    return max(found, key=lambda r: (r.get("device_name") == here, r.get("date", "")))


SLOPE_FOLLOWS = 0.5  # a backend whose decode time grows slower than bytes^0.5 does not follow the KV cache


def time_per_byte_slopes(rows: Iterable[dict], *, min_context: int = 8192) -> dict[str, float]:
    """Per backend, the log-log slope of decode time against the KV-cache bytes read, over the steps that read
    from memory (`from_memory` true) at contexts of at least `min_context` (long enough to dwarf a call's
    overhead), where a backend has three such points or more. A slope near 1: time follows the bytes GQA
    saves; near 0: it does not (repeat's copies to all n_h heads cost the same for every n_kv)."""
    import numpy as np

    points: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        if r["from_memory"] and r["context"] >= min_context:
            points.setdefault(r["backend"], []).append((r["kv_cache_bytes"], r["time_ms"]))
    return {backend: float(np.polyfit(np.log([b for b, _ in pts]), np.log([t for _, t in pts]), 1)[0])
            for backend, pts in points.items() if len(pts) >= 3}


def not_following_the_cache(slopes: dict[str, float]) -> list[str]:
    """The backends whose time does not grow with the bytes they read (slope under SLOPE_FOLLOWS)."""
    return [backend for backend, slope in slopes.items() if slope < SLOPE_FOLLOWS]
