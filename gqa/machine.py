"""Facts about the machine and how to time on it: device names, memory bandwidth (copy and streaming
read), the last-level cache, wall-clock timing with warm-up or with the inputs read from memory, and peak
extra memory of a call.

Peak memory is `torch.cuda.max_memory_allocated` on CUDA; on CPU it is the process high-water mark
(VmHWM, reset through /proc/self/clear_refs) with glibc told to give large blocks back to the OS, so it
also sees buffers that fused kernels allocate internally.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from gqa.config import ATTENTION_DTYPES

TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
assert tuple(TORCH_DTYPES) == ATTENTION_DTYPES, "the dtypes a profile may name (gqa.config) each map to torch"

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


def describe() -> dict:
    """Where a run ran, as its record says: host, processor or GPU, core count, torch and Python versions."""
    info = {"host": platform.node(), "cpu": device_name("cpu"), "cores": os.cpu_count(),
            "torch": torch.__version__, "python": platform.python_version()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def device_slug(device: str) -> str:
    kind = "cuda" if device.startswith("cuda") else "cpu"
    name = re.sub(r"\(r\)|\(tm\)|cpu|@.*|processor|\d+-core", "", device_name(device).lower())
    return f"{kind}-" + re.sub(r"[^a-z0-9]+", "-", name).strip("-")


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_call(fn: Callable[[], object], device: str, *, min_seconds: float = 0.2,
              max_repeats: int = 50, warmup: int = 2) -> tuple[float, float]:
    """(median, min) wall time of fn() in seconds, repeating until min_seconds or max_repeats."""
    for _ in range(warmup):
        fn()
    sync(device)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_repeats and (time.perf_counter() - start < min_seconds or len(times) < 3):
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4  # glibc's mallopt parameters (malloc.h)
GLIBC_MMAP_MAX, GLIBC_TRIM_THRESHOLD = 65536, 128 * 1024  # glibc's defaults


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library, to steer glibc's allocator with mallopt; None where it is not glibc."""
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


_small_mmap_threshold_set = False


def _return_large_blocks_to_os() -> None:
    """Make glibc hand freed memory back to the OS, so that RSS follows what is really live.

    Large blocks are served by mmap (unmapped on free), and free pages still held in the heap (say, from
    earlier timing runs) are released now; without this a reused block raises no high-water mark.
    """
    global _small_mmap_threshold_set
    libc = _glibc()
    if libc is None:
        return
    if not _small_mmap_threshold_set:
        libc.mallopt(M_MMAP_THRESHOLD, 64 * 1024)
        libc.mallopt(M_TRIM_THRESHOLD, 64 * 1024)
        _small_mmap_threshold_set = True
    libc.malloc_trim(0)


@contextlib.contextmanager
def heap_only_allocation():
    """Within the block, glibc serves every allocation from its heap and keeps freed memory there.

    By default glibc maps a block above its mmap threshold (at most 32 MiB on 64-bit, however it adapts)
    afresh with mmap and unmaps it on free, so a call that allocates such a block on every step pays the
    page faults of zeroed pages every time, which is the allocator's cost, not the op's. M_MMAP_MAX = 0
    turns mmap off and a large M_TRIM_THRESHOLD keeps freed pages: a repeated step then reuses warm memory,
    as a caching allocator would. Restores glibc's defaults on exit and returns the kept pages (the
    peak-memory probe, `peak_extra_memory`, sets its smaller thresholds again before its next use). A no-op
    where glibc is not loaded.
    """
    global _small_mmap_threshold_set
    libc = _glibc()
    if libc is None:
        yield False
        return
    libc.mallopt(M_MMAP_MAX, 0)
    libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)
    try:
        yield True
    finally:
        libc.mallopt(M_MMAP_MAX, GLIBC_MMAP_MAX)
        libc.mallopt(M_TRIM_THRESHOLD, GLIBC_TRIM_THRESHOLD)
        libc.malloc_trim(0)  # hand back what the heap kept, so large blocks are mapped again
        _small_mmap_threshold_set = False  # the peak-memory probe sets its own thresholds again when next used


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


def _cache_size(text: str) -> int:
    scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:].upper(), 1)
    return int(text.rstrip("KMGkmg")) * scale


def last_level_cache_bytes(device: str) -> int:
    """Bytes of the last cache in front of memory (CPU: the highest-level cache sysfs lists, summed over its
    instances, one per socket or per chiplet, as the CPUs sharing each are listed; CUDA: L2); 0 when unknown.
    Data smaller than this can stay cached between timed repeats, and then the memory bandwidth floor does
    not bound it."""
    if device.startswith("cuda"):
        return int(getattr(torch.cuda.get_device_properties(torch.device(device)), "L2_cache_size", 0))
    instances: dict[int, dict[str, int]] = {}  # level -> {CPUs sharing an instance: its size}
    for index in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cache/index*"):
        try:
            level = int((index / "level").read_text())
            shared = (index / "shared_cpu_list").read_text().strip()
            instances.setdefault(level, {})[shared] = _cache_size((index / "size").read_text().strip())
        except (OSError, ValueError):
            continue
    return sum(instances[max(instances)].values()) if instances else 0


def streaming_bytes(device: str, least: int = 512 * 2**20) -> int:
    """A buffer size far beyond the last-level cache: four times it, and at least `least` bytes."""
    return max(least, 4 * last_level_cache_bytes(device))


def read_bandwidth(device: str, nbytes: int | None = None, rounds: int = 5, seconds: float = 0.3) -> float:
    """Measured streaming-read bandwidth in bytes/s: a max-reduction over a buffer far larger than the
    last-level cache (`streaming_bytes`), with the thread count attention runs with. A decode step mostly
    reads (the KV cache), so this, not the copy figure, is its floor's denominator. A shared machine's
    bandwidth varies from moment to moment, and a floor must not be beaten, so it is the fastest of several
    rounds of two reductions (max and sum), each timed for `seconds`."""
    nbytes = streaming_bytes(device) if nbytes is None else nbytes
    src = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    fastest = min(time_call(lambda: reduce(src), device, min_seconds=seconds)[1]
                  for _ in range(rounds) for reduce in (torch.amax, torch.sum))
    return nbytes / fastest


def time_cold(fn: Callable[..., object], inputs: tuple[torch.Tensor, ...], device: str, *,
              min_seconds: float = 0.2, max_repeats: int = 50,
              evict_bytes: int | None = None) -> tuple[float, float]:
    """(median, min) wall time in seconds of fn(*inputs) with the inputs read from memory, not from a cache.

    In a model, one layer's KV cache is read once per token, after the other layers' caches and weights
    have passed through the caches; timing the same small cache over and over would read it from the
    last-level cache instead (hundreds of MiB on a server CPU) and beat any memory floor. So each call gets
    its own copy of the inputs, rotated through enough copies that more than `evict_bytes` (default:
    `streaming_bytes`, four times the last-level cache) of other copies are read between two uses of one.
    Only data is streamed: the code the call runs stays cached, as in a model (evicting everything, code
    included, adds tens of microseconds of instruction misses to every call). The inputs themselves are not
    used: making the copies reads them again and again, and keeps them cached. When more copies would be
    needed than calls are timed (`max_repeats`), each call gets its own copy, used once, and one write of
    `evict_bytes` after they are made evicts them all, and the warm-up call reads a copy no timed call reads.
    Repeats as `time_call` does, after that one warm-up call.
    """
    size = sum(t.numel() * t.element_size() for t in inputs)
    evict = streaming_bytes(device) if evict_bytes is None else evict_bytes
    rotation = -(-evict // max(size, 1))  # copies that, read in turn, evict one another
    copies = [tuple(t.clone() for t in inputs)]  # not the inputs: the copying reads them, and they stay cached
    for _ in range(min(rotation, max_repeats)):
        copies.append(tuple(t.clone() for t in copies[-1]))  # each copy made from the last, so no source stays hot
    if rotation > max_repeats:
        # Small inputs: every timed call gets a copy of its own, used once, so one stream of `evict` bytes
        # written after the copies are made evicts them all (thousands of small copies would take minutes).
        flush = torch.empty(evict, dtype=torch.uint8, device=device)
        flush.fill_(1)
        sync(device)
        del flush
    fn(*copies[-1])
    times: list[float] = []
    while len(times) < max_repeats and (sum(times) < min_seconds or len(times) < 5):
        args = copies[len(times) % len(copies)]
        sync(device)
        t = time.perf_counter()
        fn(*args)
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)
