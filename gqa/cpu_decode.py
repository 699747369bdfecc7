"""The CPU decode kernel (`kernels/decode_cpu.cpp`): built on first use, called through ctypes.

One new token per sequence, fp32: the g query heads of a KV head share the lanes of one vector, so each
K/V byte is read once, and the cached positions are split across threads when batch × n_kv leaves threads
idle. PyTorch's own CPU kernels stay well under half of the read-bandwidth floor when g is large (they
run the g queries as a small matrix product); this kernel is the reason `sdpa` decode follows the memory
term.

The library is compiled with the system C++ compiler (`$CXX`, else `c++`; -O3 -march=native -fopenmp) into
`<cache>/kernels/decode_cpu-<digest>.so` (the project's .cache/, else ~/.cache/gqa/; only a directory this
user owns and no one else can write to), the digest covering the source, the flags, the compiler and the
CPU, so another machine or compiler builds its own. Two processes building at once wait on a file lock; a
library that will not load is rebuilt once. Without a compiler, or with GQA_CPU_DECODE=0 (or false, no,
off), `available()` is False and decode falls back to PyTorch's kernels, with one warning saying why
(`reason()`); nothing else changes.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shlex
import shutil
import stat
import subprocess
import time
import warnings
from pathlib import Path

import torch

from .paths import CACHE_DIR

SOURCE = Path(__file__).with_name("kernels") / "decode_cpu.cpp"
FLAGS = ("-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=c++17")
MIN_PART_KEYS = 2048  # fewer cached positions per thread than this, and splitting costs more than it gains

_lib: ctypes.CDLL | None = None
_reason: str | None = None  # why the kernel is unavailable, once a build was tried


def _compiler() -> list[str]:
    """The C++ compiler's command line ($CXX may carry a launcher or flags: "ccache g++")."""
    return shlex.split(os.environ.get("CXX", "c++")) or ["c++"]


def _cpu_signature() -> str:
    """What -march=native depends on: the CPU's model and feature flags."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    lines = [ln for ln in text.splitlines() if ln.startswith(("model name", "flags", "Features"))]
    return "\n".join(sorted(set(lines)))


def _private(directory: Path) -> bool:
    """Whether a library loaded from here can only have been put there by this user: the folder is this
    user's and no one else may write to it, and no folder above it can be swapped by another user (each is
    this user's or root's, and writable by others only with the sticky bit, as /tmp is)."""
    info = directory.stat()
    if not (info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
            and os.access(directory, os.W_OK)):
        return False
    for parent in directory.resolve().parents:
        above = parent.stat()
        if above.st_uid not in (0, os.getuid()):
            return False
        if above.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not above.st_mode & stat.S_ISVTX:
            return False
    return True


def _build_dir() -> Path:
    user_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gqa" / "kernels"
    for directory in (CACHE_DIR / "kernels", user_cache):
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            if _private(directory):
                return directory
        except OSError:
            continue
    raise OSError(f"no private, writable directory for the compiled kernel ({CACHE_DIR / 'kernels'}, {user_cache})")


def library_path() -> Path:
    """Where this machine's build of the kernel lives (it may not exist yet)."""
    version = subprocess.run([*_compiler(), "--version"], capture_output=True, text=True, check=True).stdout
    digest = hashlib.sha256("\n".join([SOURCE.read_text(), " ".join(FLAGS), version, _cpu_signature()])
                            .encode()).hexdigest()[:16]
    return _build_dir() / f"decode_cpu-{digest}.so"


def build(rebuild: bool = False) -> Path:
    """Compile the kernel unless this machine's build exists (or `rebuild`); returns the library's path."""
    from filelock import FileLock

    path = library_path()
    with FileLock(str(path) + ".lock"):
        if rebuild or not path.exists():
            tmp = path.with_suffix(f".tmp{os.getpid()}.so")
            compiler = _compiler()
            result = subprocess.run([*compiler, *FLAGS, str(SOURCE), "-o", str(tmp)], capture_output=True,
                                    text=True)
            if result.returncode:
                tmp.unlink(missing_ok=True)
                raise RuntimeError(f"{' '.join(compiler)} failed to build {SOURCE.name}: "
                                   f"{(result.stderr.strip().splitlines() or ['no message'])[-1]}")
            tmp.replace(path)
    return path


def _load() -> ctypes.CDLL | None:
    global _lib, _reason
    if _lib is not None or _reason is not None:
        return _lib
    setting = os.environ.get("GQA_CPU_DECODE", "1")
    if setting.strip().lower() in ("0", "false", "no", "off"):
        _reason = f"disabled by GQA_CPU_DECODE={setting}"
        return None
    try:
        try:
            lib = ctypes.CDLL(str(build()))
            if not hasattr(lib, "gqa_decode"):  # a loadable library that is not this kernel
                raise OSError("the library at the kernel's path has no gqa_decode")
        except OSError:  # a library left truncated, built for another CPU, or not ours: build it again, once
            path = build(rebuild=True)
            # the same path, loaded again, would give back the first library (the loader keys by path):
            # load the rebuilt file through a fresh copy of its own
            fresh = path.with_name(f"{path.stem}-{os.getpid()}-{time.monotonic_ns()}.so")
            shutil.copyfile(path, fresh)
            try:
                lib = ctypes.CDLL(str(fresh))
            finally:
                fresh.unlink(missing_ok=True)
    except (OSError, RuntimeError, subprocess.CalledProcessError) as err:
        _reason = f"not built: {err}"
        warnings.warn(f"gqa: the CPU decode kernel is {_reason}; decode falls back to PyTorch's kernels "
                      "(slower when many query heads share a KV head)", RuntimeWarning, stacklevel=3)
        return None
    i, l_, f, p = ctypes.c_int, ctypes.c_long, ctypes.c_float, ctypes.c_void_p
    lib.gqa_decode.argtypes = [i, i, i, i, l_, p, p, p, l_, l_, l_, l_, l_, l_, p, l_, l_, f, i, i, p]
    lib.gqa_decode.restype = ctypes.c_int
    _lib = lib
    return _lib


def available() -> bool:
    """True when the kernel is built (building it now if needed) and enabled."""
    return _load() is not None


def reason() -> str | None:
    """Why the kernel is unavailable (None when it is available or was never tried)."""
    return _reason


def _mask_strides(mask: torch.Tensor | None, batch: int, n_heads: int, keys: int) -> tuple[int, int] | None:
    """(batch, query-head) strides of a decode mask along S, or None when the kernel cannot read it."""
    if mask is None:
        return 0, 0
    if (mask.dtype != torch.bool or mask.device.type != "cpu" or mask.dim() != 4 or mask.shape[2] != 1
            or mask.shape[-1] != keys or mask.shape[0] not in (1, batch) or mask.shape[1] not in (1, n_heads)
            or mask.stride(-1) != 1):
        return None
    return (mask.stride(0) if mask.shape[0] > 1 else 0), (mask.stride(1) if mask.shape[1] > 1 else 0)


def applies(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None) -> bool:
    """Whether these decode inputs are the kernel's: CPU fp32, shapes that agree exactly (no broadcasting),
    rows of K/V contiguous, at least one sequence and one cached position, a mask it can read, more than one
    query head per KV head (one per head is PyTorch's fused kernel's case), no autograd. Anything else goes to PyTorch,
    which broadcasts or raises as it always has."""
    tensors = (query, key, value)
    if not all(t.device.type == "cpu" and t.dtype == torch.float32 and t.dim() == 4 for t in tensors):
        return False
    (b, n_heads, t, d), (n_kv, keys) = query.shape, key.shape[1:3]
    return (t == 1 and key.shape == value.shape == (b, n_kv, keys, d) and keys > 0 and b > 0
            and n_heads > n_kv > 0 and n_heads % n_kv == 0
            and key.stride(-1) == 1 and value.stride(-1) == 1
            and not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))
            and _mask_strides(mask, b, n_heads, keys) is not None and available())


def lanes(group: int) -> int:
    """fp32 lanes per query tile, as gqa_decode in decode_cpu.cpp picks them: 16 above 8 query heads."""
    return 16 if group > 8 else 8


def parts_for(tasks: int, keys: int, threads: int) -> int:
    """How many runs to split each KV head's cached positions into, so every thread has work."""
    parts = max(1, threads // tasks)
    return max(1, min(parts, keys // MIN_PART_KEYS))


def attend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None,
           scaling: float | None) -> torch.Tensor:
    """(B, n_h, 1, d) queries against (B, n_kv, S, d) keys and values -> (B, n_h, 1, d); `applies` first."""
    lib = _load()
    b, n_heads, _, d = query.shape
    n_kv, keys = key.shape[1], key.shape[2]
    group = n_heads // n_kv
    q = query.contiguous()
    out = torch.empty_like(q)
    mask_b, mask_q = _mask_strides(mask, b, n_heads, keys)
    threads = torch.get_num_threads()
    tasks = b * n_kv * -(-group // lanes(group))  # (sequence, KV head, query tile) triples
    status = lib.gqa_decode(b, n_kv, group, d, keys, q.data_ptr(), key.data_ptr(), value.data_ptr(),
                            key.stride(0), key.stride(1), key.stride(2),
                            value.stride(0), value.stride(1), value.stride(2),
                            None if mask is None else mask.data_ptr(), mask_b, mask_q,
                            d**-0.5 if scaling is None else scaling, parts_for(tasks, keys, threads), threads,
                            out.data_ptr())
    if status:
        raise MemoryError("the CPU decode kernel could not allocate its work buffers")
    return out
