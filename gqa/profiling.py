"""Measured checks of the cost model, and attention benchmarks.

- FLOPs: `torch.utils.flop_counter.FlopCounterMode` on the eager (math) path. The counter sees the full
  T×T products of a masked forward pass (it does not halve for causal masking), which is exactly Eq. 3
  at context T, times T tokens: per component, counted == B·T·`cost.components(shape, T)`.
- KV cache: the bytes of the model's own cache tensors after prefilling T tokens.
- Attention time and peak extra memory of one decode step and of one prefill, per backend. Peak memory
  is `torch.cuda.max_memory_allocated` on CUDA; on CPU it is the process high-water mark (VmHWM, reset
  through /proc/self/clear_refs) with glibc told to give large blocks back to the OS, so it also sees
  buffers that fused kernels allocate internally.
"""

from __future__ import annotations

import csv
import ctypes
import functools
import gc
import json
import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from gqa import attention, cost
from gqa.shapes import Shape

from gqa.paths import PROFILES_DATA_DIR as PROFILE_DIR

# FlopCounterMode module names -> Table 2 component names
_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")


# --- FLOPs and KV cache, measured on a real model -------------------------------------------------


def counted_flops_by_component(model: torch.nn.Module, input_ids: torch.Tensor,
                               cache=None) -> dict[str, float]:
    """FLOPs counted by FlopCounterMode in one forward pass, grouped by Table 2 component."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False, depth=None) as counter, torch.no_grad():
        model(input_ids, cache=cache, use_cache=cache is not None)
    totals = {"attention projections": 0.0, "attention operator": 0.0, "FFN": 0.0,
              "output projection": 0.0}
    for module, ops in counter.get_flop_counts().items():
        flops = float(sum(ops.values()))
        leaf = module.rsplit(".", 1)[-1]
        if leaf in _PROJECTIONS:
            totals["attention projections"] += flops
        elif leaf == "self_attn":  # everything under self_attn that is not a projection
            totals["attention operator"] += flops
        elif leaf == "mlp":
            totals["FFN"] += flops
        elif leaf == "lm_head":
            totals["output projection"] += flops
    totals["attention operator"] -= totals["attention projections"]
    totals["total"] = float(counter.get_total_flops())
    return totals


def analytic_flops_by_component(shape: Shape, context: int, new_tokens: int,
                                batch: int = 1) -> dict[str, float]:
    """Eq. 3 per component at `context`, for `new_tokens` tokens each attending to `context` keys."""
    out = {c.name: batch * new_tokens * c.flops for c in cost.components(shape, context) if c.flops}
    out["total"] = sum(out.values())
    return out


def measure_prefill_flops(model: torch.nn.Module, shape: Shape, tokens: int,
                          batch: int = 1) -> tuple[dict[str, float], dict[str, float]]:
    """(counted, analytic) FLOPs of prefilling `tokens` tokens from an empty cache."""
    ids = torch.randint(0, shape.vocab, (batch, tokens), generator=torch.Generator().manual_seed(0))
    return (counted_flops_by_component(model, ids.to(model.device)),
            analytic_flops_by_component(shape, tokens, tokens, batch))


def measure_decode_flops(model: torch.nn.Module, shape: Shape, context: int,
                         batch: int = 1) -> tuple[dict[str, float], dict[str, float]]:
    """(counted, analytic) FLOPs of one decode step whose new token makes the context `context`."""
    ids = torch.randint(0, shape.vocab, (batch, context), generator=torch.Generator().manual_seed(0))
    ids = ids.to(model.device)
    with torch.no_grad():
        cache = model(ids[:, :-1], use_cache=True).cache
    return (counted_flops_by_component(model, ids[:, -1:], cache=cache),
            analytic_flops_by_component(shape, context, 1, batch))


def cache_bytes(cache) -> int:
    """Bytes held by a transformers cache's key and value tensors."""
    return sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))


def measure_kv_cache_bytes(model: torch.nn.Module, tokens: int, batch: int = 1) -> int:
    """Bytes of the real KV cache after prefilling `tokens` tokens."""
    ids = torch.randint(0, model.config.vocab_size, (batch, tokens),
                        generator=torch.Generator().manual_seed(0)).to(model.device)
    with torch.no_grad():
        return cache_bytes(model(ids, use_cache=True).cache)


# --- Machine description, timing, memory -----------------------------------------------------------


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_slug(device: str) -> str:
    kind = "cuda" if device.startswith("cuda") else "cpu"
    name = re.sub(r"\(r\)|\(tm\)|cpu|@.*|processor|\d+-core", "", device_name(device).lower())
    return f"{kind}-" + re.sub(r"[^a-z0-9]+", "-", name).strip("-")


def profile_path(device: str, profile: str) -> Path:
    """Where `gqa profile` writes a sweep: data/profiles/<device slug>_<profile>.csv."""
    return PROFILE_DIR / f"{device_slug(device)}_{profile}.csv"


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_call(fn: Callable[[], object], device: str, *, min_seconds: float = 0.2,
              max_repeats: int = 50, warmup: int = 2) -> tuple[float, float]:
    """(median, min) wall time of fn() in seconds, repeating until min_seconds or max_repeats."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_repeats and (time.perf_counter() - start < min_seconds or len(times) < 3):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


_libc: ctypes.CDLL | None = None


def _return_large_blocks_to_os() -> None:
    """Make glibc hand freed memory back to the OS, so that RSS follows what is really live.

    Large blocks are served by mmap (unmapped on free), and free pages still held in the heap (say, from
    earlier timing runs) are released now; without this a reused block raises no high-water mark.
    """
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL("libc.so.6")
            _libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD
            _libc.mallopt(-1, 64 * 1024)  # M_TRIM_THRESHOLD
        except OSError:
            return
    _libc.malloc_trim(0)


def _status_bytes(key: str) -> int:
    match = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    if not match:
        raise RuntimeError(f"cannot read {key} from /proc/self/status")
    return int(match.group(1)) * 1024


def cpu_peak_memory_supported() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        _status_bytes("VmHWM")
        return True
    except (OSError, RuntimeError):
        return False


def peak_extra_memory(fn: Callable[[], object], device: str) -> int:
    """Peak bytes allocated by fn() beyond what was live before it (its result is dropped)."""
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        result = fn()
        torch.cuda.synchronize()
        del result
        return torch.cuda.max_memory_allocated() - base
    _return_large_blocks_to_os()
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to the current RSS
    base = _status_bytes("VmRSS")
    result = fn()
    del result
    return max(0, _status_bytes("VmHWM") - base)


def memory_bandwidth(device: str, nbytes: int = 256 * 2**20) -> float:
    """Measured copy bandwidth in bytes/s (bytes read + bytes written per second)."""
    src = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    median, _ = time_call(lambda: dst.copy_(src), device, min_seconds=0.5)
    return 2 * nbytes / median


def last_level_cache_bytes(device: str) -> int:
    """Size of the largest cache in front of memory (CPU: the highest-level cache sysfs lists; CUDA: L2);
    0 when unknown. Data smaller than this can stay cached between timed repeats, and then the memory
    bandwidth floor does not bound it."""
    if device.startswith("cuda"):
        return int(getattr(torch.cuda.get_device_properties(torch.device(device)), "L2_cache_size", 0))
    sizes = {}
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            level = int((index / "level").read_text())
            text = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:].upper(), 1)
        sizes[level] = int(text.rstrip("KMGkmg")) * scale
    return sizes[max(sizes)] if sizes else 0


def read_bandwidth(device: str, nbytes: int = 512 * 2**20, rounds: int = 5) -> float:
    """Measured streaming-read bandwidth in bytes/s: a max-reduction over a buffer far larger than the
    last-level cache, with the thread count attention runs with. A decode step mostly reads (the KV
    cache), so this, not the copy figure, is its floor's denominator. A shared machine's bandwidth varies
    from moment to moment, and a floor must not be beaten, so it is the fastest of several rounds of two
    reductions (max and sum), each timed for 0.3 s."""
    src = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    fastest = min(time_call(lambda: reduce(src), device, min_seconds=0.3)[1]
                  for _ in range(rounds) for reduce in (torch.amax, torch.sum))
    return nbytes / fastest


# --- The attention sweep ---------------------------------------------------------------------------


@dataclass
class SweepConfig:
    """One attention benchmark sweep (read from a profile's `attention_profile` section)."""

    device: str = "cpu"
    dtype: str = "fp32"
    batch: int = 1
    n_heads: int = 16
    kv_heads: list[int] = field(default_factory=lambda: [2, 16])
    head_dim: int = 64
    decode_contexts: list[int] = field(default_factory=lambda: [1024, 4096, 16384, 32768, 65536])
    prefill_contexts: list[int] = field(default_factory=lambda: [512, 1024, 2048, 4096])
    backends: list[str] = field(default_factory=lambda: ["sdpa", "repeat", "eager"])
    max_working_bytes: float = 4e9  # skip a case whose analytic working set exceeds this
    min_seconds: float = 0.2  # time each case for at least this long

    def __post_init__(self) -> None:
        from gqa.shapes import check_heads

        for n_kv in self.kv_heads:
            check_heads(self.n_heads, n_kv)

    @classmethod
    def from_dict(cls, raw: dict) -> SweepConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown attention_profile keys: {', '.join(sorted(unknown))}")
        return cls(**raw)


TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


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
    reads = [read_bandwidth(cfg.device)]  # sampled again between groups of cases: a VM's bandwidth drifts
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": platform.node(),
            "device": cfg.device, "device_name": device_name(cfg.device), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "dtype": cfg.dtype, "batch": cfg.batch,
            "n_heads": cfg.n_heads, "head_dim": cfg.head_dim, "bandwidth_gb_s": bandwidth / 1e9,
            "llc_bytes": last_level_cache_bytes(cfg.device)}
    rows: list[dict] = []
    bar = progress(total=2 * len(todo)) if progress else None
    group = None
    for c in todo:  # timings first: the memory pass changes how malloc behaves
        if (c.backend, c.phase, c.n_kv) != group and group is not None:
            reads.append(read_bandwidth(cfg.device, rounds=2))
        group = (c.backend, c.phase, c.n_kv)
        q, k, v = _inputs(cfg, c)
        call = functools.partial(attention.FUNCTIONS[c.backend], None, q, k, v, None)
        median, fastest = time_call(call, cfg.device, min_seconds=cfg.min_seconds)
        kernel = ""
        if c.backend in ("sdpa", "repeat"):
            kk, vv = (k, v) if c.backend == "sdpa" else (attention.repeat_kv(k, cfg.n_heads // c.n_kv),
                                                         attention.repeat_kv(v, cfg.n_heads // c.n_kv))
            kernel = attention.sdpa_kernel_chosen(q, kk, vv, is_causal=c.phase == "prefill")
        traffic = traffic_bytes(cfg, c)
        rows.append({**meta, **asdict(c), "n_kv": c.n_kv, "kernel": kernel,
                     "time_ms": median * 1e3, "time_ms_min": fastest * 1e3,
                     "kv_cache_bytes": 2 * q.element_size() * cfg.batch * c.n_kv * c.context * cfg.head_dim,
                     "traffic_bytes": traffic, "flops": case_flops(cfg, c)})
        if bar:
            bar.update()
        del q, k, v, call
    reads.append(read_bandwidth(cfg.device, rounds=2))
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

CHECK_SHAPES = [  # (shape, KV-cache dtype): n_kv = 1, n_kv = n_h, d_h != d/n_h, several dtypes
    (Shape(2, 128, 8, 1, head_dim=32, vocab=500), "fp32"),
    (Shape(2, 96, 6, 6, head_dim=16, vocab=300), "fp32"),
    (Shape(3, 128, 6, 2, head_dim=40, vocab=400, tied=False), "bf16"),
    (Shape(2, 64, 4, 4, head_dim=64, vocab=200), "fp16"),
]


def check_cost_model(device: str = "cpu", tokens: int = 64, batch: int = 2,
                     shapes: list[tuple[Shape, str]] | None = None) -> list[dict]:
    """Measured vs analytic: FLOPs of a prefill and a decode step per component, and KV-cache bytes, for
    each (shape, KV dtype) of `shapes` (default CHECK_SHAPES).

    FLOPs are counted on the eager backend in fp32; the KV cache is measured in each shape's dtype.
    """
    from gqa.model import build_model

    rows = []
    for shape, dtype in shapes or CHECK_SHAPES:
        label = f"L={shape.layers} d={shape.d_model} H=({shape.n_heads},{shape.n_kv_heads}) d_h={shape.head_dim}"
        model = build_model(shape, attention_backend="eager", device=device).eval()
        for phase, (counted, analytic) in (
                ("prefill", measure_prefill_flops(model, shape, tokens, batch)),
                ("decode", measure_decode_flops(model, shape, tokens + 1, batch))):
            for component, value in analytic.items():
                rows.append({"shape": label, "quantity": f"FLOPs, {phase}, {component}",
                             "measured": counted[component], "analytic": value})
        model = model.to(TORCH_DTYPES[dtype])
        rows.append({"shape": label, "quantity": f"KV-cache bytes ({dtype})",
                     "measured": float(measure_kv_cache_bytes(model, tokens, batch)),
                     "analytic": cost.kv_cache_bytes(shape, tokens, batch, dtype)})
    for row in rows:
        row["equal"] = row["measured"] == row["analytic"]
    return rows


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
    for path in sorted((directory or PROFILE_DIR).glob("*.csv")):
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
    kind = "cuda" if device.startswith("cuda") else "cpu"
    found = []
    for path in sorted((directory or PROFILE_DIR).glob("decode_*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ValueError(f"{path.name}: not a readable decode benchmark ({e})") from None
        if str(record.get("device", "")).split(":")[0] == kind:
            found.append({**record, "source": path.name})
    if not found:
        return None
    here = device_name(device) if kind == "cpu" else None
    return max(found, key=lambda r: (r.get("device_name") == here, r.get("date", "")))
