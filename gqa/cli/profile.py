"""`gqa profile`: the cost model against measurement, and the attention sweep."""

from __future__ import annotations

import argparse
from pathlib import Path

from gqa.cli._common import CliError, _profile_section, check_output, profile_identity
from gqa.units import format_tokens


def cmd_profile(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from gqa import checks, machine, profiling

    raw = _profile_section(args.profile, "attention_profile")
    if args.device:
        raw["device"] = args.device
    if args.dtype:
        raw["dtype"] = args.dtype
    cfg = profiling.SweepConfig.from_dict(raw)
    if args.out:
        check_output(args.out)
    if cfg.device.startswith("cuda") and not __import__("torch").cuda.is_available():
        raise CliError("--device cuda: torch sees no CUDA device here")

    print(f"1. cost model vs measurement on {cfg.device} (FlopCounterMode on the eager path; "
          "real cache tensors)")
    checks = checks.check_cost_model(cfg.device, shapes=args.check_shape)
    for row in checks:
        mark = "ok " if row["equal"] else "DIFF"
        print(f"  {mark} {row['shape']:34} {row['quantity']:44} measured {row['measured']:>14,.0f}"
              f"  analytic {row['analytic']:>14,.0f}")
    failed = [r for r in checks if not r["equal"]]
    if failed:
        raise RuntimeError(f"{len(failed)} measured quantities differ from the cost model")
    if args.checks_only:
        return 0

    print(f"\n2. attention sweep: {cfg.device} ({machine.device_name(cfg.device)}), {cfg.dtype}, "
          f"batch {cfg.batch}, n_h={cfg.n_heads}, n_kv in {cfg.kv_heads}, d_h={cfg.head_dim}")
    rows = profiling.run_sweep(cfg, progress=lambda total: tqdm(total=total, unit="case"),
                               log=lambda msg: print("  " + msg))
    out = Path(args.out) if args.out else profiling.profile_path(cfg.device, profile_identity(args.profile))
    profiling.write_rows(rows, out)
    print(f"  measured read bandwidth {rows[0]['read_bandwidth_low_gb_s']:.1f}-{rows[0]['read_bandwidth_gb_s']:.1f} "
          f"GB/s over {rows[0]['read_samples']} samples (the floor uses the fastest), copy "
          f"{rows[0]['bandwidth_gb_s']:.1f} GB/s; {len(rows)} rows -> {out}")
    print(f"\n{'phase':8}{'n_kv':>5}{'T':>8}{'sdpa ms':>10}{'repeat ms':>11}{'repeat/sdpa':>12}"
          f"{'sdpa mem/KV':>13}{'repeat mem/KV':>15}")
    for s in profiling.summarise(rows):
        if "repeat_over_sdpa_time" not in s:
            continue
        print(f"{s['phase']:8}{s['n_kv']:>5}{format_tokens(s['context']):>8}{s['sdpa_ms']:>10.3f}"
              f"{s['repeat_ms']:>11.3f}{s['repeat_over_sdpa_time']:>12.2f}"
              f"{s['sdpa_mem_over_kv']:>13.3f}{s['repeat_mem_over_kv']:>15.3f}")
    return 0


def _check_shape(text: str):
    """`2,64,8,2,24[,bf16]`: a small model to measure, with its KV-cache dtype."""
    from gqa.machine import TORCH_DTYPES
    from gqa.shapes import Shape

    *numbers, dtype = text.split(",") if text.count(",") == 5 else (*text.split(","), "fp32")
    try:
        layers, d_model, n_heads, n_kv, head_dim = (int(v) for v in numbers)
        shape = Shape(layers, d_model, n_heads, n_kv, head_dim=head_dim, vocab=512)
    except (ValueError, TypeError) as e:
        raise argparse.ArgumentTypeError(f"expected L,D,N_H,N_KV,D_H[,DTYPE], got {text!r} ({e})") from None
    if dtype not in TORCH_DTYPES:
        raise argparse.ArgumentTypeError(f"unknown KV dtype {dtype!r} in {text!r}; choose {', '.join(TORCH_DTYPES)}")
    return shape, dtype


def add_profile(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "profile", help="measure the cost model (FLOPs, KV cache) and benchmark attention backends",
        description="Check the cost model against measurement (FLOPs counted on the eager path, the "
                    "real KV-cache tensors), then time one decode step and one prefill per attention "
                    "backend, context length and KV-head count, with their peak extra memory. Writes "
                    "a CSV under data/profiles/ named by device.")
    p.add_argument("--profile", default="cpu", help="profile whose attention_profile section to run")
    p.add_argument("--device", help="cpu or cuda (default: the profile's)")
    p.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], help="default: the profile's")
    p.add_argument("--out", metavar="CSV",
                   help="output file (default data/profiles/<device>_<profile>.csv; a profile given as a file "
                        "is named <stem>-<digest of its path and content>, never a built-in profile's name)")
    p.add_argument("--checks-only", action="store_true", help="run the measured checks, no sweep")
    p.add_argument("--check-shape", type=_check_shape, action="append", metavar="L,D,N_H,N_KV,D_H[,DTYPE]",
                   help="check this shape instead of the built-in ones (repeatable; DTYPE of the KV cache: fp32 "
                        "by default, or bf16/fp16)")
    p.set_defaults(func=cmd_profile)
