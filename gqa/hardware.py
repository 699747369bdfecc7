"""Accelerators as a decode step sees them, and the ideal (roofline) time of one decode step.

A decode step reads every weight once and every sequence's KV cache once, and performs the step's
FLOPs; on an ideal machine it takes the longer of the two times,

    t = max(bytes read / memory bandwidth, FLOPs / peak FLOP rate).

Real kernels reach 60-90% of either roof, so t is a lower bound, good for comparing configurations on
one machine, not for promising a latency. Presets are vendor datasheet figures: HBM bandwidth in
bytes/s, dense (no sparsity) BF16 tensor-core FLOP/s, and memory capacity in bytes (1e9 = GB).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hardware:
    """One accelerator: memory bandwidth (bytes/s), dense BF16 peak (FLOP/s), memory (bytes; None: not
    known, for hardware described only by its roofs)."""

    name: str
    bandwidth: float
    peak_flops: float
    memory: float | None
    source: str = ""

    def __post_init__(self) -> None:
        for key in ("bandwidth", "peak_flops", "memory"):
            value = getattr(self, key)
            if key == "memory" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
                raise ValueError(f"hardware {self.name!r}: {key} must be a positive finite number, got {value!r}")

    @property
    def ridge(self) -> float:
        """FLOPs per byte read at which the two roofs meet: below it a step is bound by memory."""
        return self.peak_flops / self.bandwidth


PRESETS: dict[str, Hardware] = {h.name: h for h in (
    Hardware("h100-sxm", 3.35e12, 989e12, 80e9, "NVIDIA H100 SXM5 80GB datasheet"),
    Hardware("h100-pcie", 2.0e12, 756e12, 80e9, "NVIDIA H100 PCIe 80GB datasheet"),
    Hardware("h200", 4.8e12, 989e12, 141e9, "NVIDIA H200 SXM datasheet"),
    Hardware("a100-80gb", 2.039e12, 312e12, 80e9, "NVIDIA A100 SXM4 80GB datasheet"),
    Hardware("a800", 2.039e12, 312e12, 80e9, "NVIDIA A800 SXM4 80GB datasheet (the paper's GPU)"),
    Hardware("l40s", 0.864e12, 362e12, 48e9, "NVIDIA L40S datasheet"),
    Hardware("rtx-4090", 1.008e12, 165.2e12, 24e9, "NVIDIA Ada Lovelace architecture whitepaper (RTX 4090; "
             "BF16 tensor with FP32 accumulate, dense)"),
    Hardware("mi300x", 5.3e12, 1307e12, 192e9, "AMD Instinct MI300X datasheet"),
)}
ALIASES = {"h100": "h100-sxm", "a100": "a100-80gb", "4090": "rtx-4090"}


def preset(name: str) -> Hardware:
    """A preset by name (case-insensitive; `h100` and `a100` name the SXM 80 GB parts). ValueError otherwise."""
    key = ALIASES.get(name.lower(), name.lower())
    try:
        return PRESETS[key]
    except KeyError:
        raise ValueError(f"unknown hardware {name!r}; known: {', '.join([*PRESETS, *ALIASES])}") from None


def custom(bandwidth: float, peak_flops: float, memory: float | None = None, name: str = "custom") -> Hardware:
    """Hardware from figures a user gives: bandwidth in bytes/s, peak in FLOP/s, memory in bytes (or None)."""
    return Hardware(name, bandwidth, peak_flops, memory, "given on the command line")


def decode_step_time(bytes_read: float, flops: float, hardware: Hardware) -> float:
    """Seconds of one ideal decode step: the longer of reading `bytes_read` and computing `flops`."""
    if not bytes_read >= 0 or not flops >= 0:
        raise ValueError(f"bytes and FLOPs must be non-negative, got {bytes_read!r} and {flops!r}")
    return max(bytes_read / hardware.bandwidth, flops / hardware.peak_flops)
