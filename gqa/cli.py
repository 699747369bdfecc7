"""The `gqa` command line. Each subcommand is a thin layer over the library."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from gqa import cost as costs
from gqa.shapes import PUBLIC_MODELS, Shape, get_preset, preset_names
from gqa.units import format_bytes, format_count, format_tokens, parse_tokens


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        self.exit(2, f"{self.prog}: error: {message}\n")


def _tokens(text: str) -> int:
    try:
        return parse_tokens(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None


# --- gqa cost -----------------------------------------------------------------------------------

COST_EPILOG = """\
examples:
  gqa cost --preset llama-3.1-8b --context 128k
  gqa cost --preset paper-1.2b --heads 32 --kv-heads 8 --context 131072 --json
  gqa cost --layers 36 --d-model 2048 --heads 8 --kv-heads 1 --context 1m --batch 4 --kv-dtype fp8

Paper-exact numbers are per token at context T (Eq. 3-5): C = 2N + 4TLd_h n_h FLOPs,
M = N + 2TLd_h n_kv values, Z = 0.9 M^0.5 + 0.1 C^(1/3) on M in values. Context suffixes are
binary: 128k = 131072. --batch B (beyond the paper) multiplies the KV cache and the FLOPs of a
decode step by B; Z then uses the whole step.
"""


def _shape_from_args(args: argparse.Namespace) -> Shape:
    fields = {"layers": args.layers, "d_model": args.d_model, "n_heads": args.heads,
              "n_kv_heads": args.kv_heads, "head_dim": args.head_dim, "d_ff": args.ffn,
              "vocab": args.vocab}
    given = {k: v for k, v in fields.items() if v is not None}
    if args.untied:
        given["tied"] = False
    if args.preset:
        base = get_preset(args.preset)
        if "n_heads" in given and "n_kv_heads" not in given:
            given["n_kv_heads"] = given["n_heads"]
        name = base.name
        if "n_heads" in given:
            name = f"{base.name}@{given['n_heads']},{given['n_kv_heads']}"
        return replace(base, **given, name=name)
    missing = [flag for flag, key in (("--layers", "layers"), ("--d-model", "d_model"),
                                      ("--heads", "n_heads")) if key not in given]
    if missing:
        raise CliError(f"give --preset NAME or an explicit shape; missing {', '.join(missing)}")
    given.setdefault("n_kv_heads", given["n_heads"])
    return Shape(**given)


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x


def cost_report(shape: Shape, context: int, *, dtype: str, kv_dtype: str | None, batch: int,
                params: str, hw: costs.HardwareWeights) -> dict:
    """Everything `gqa cost` prints, as one JSON-ready dictionary."""
    c = costs.inference_cost(shape, context, params=params, dtype=dtype, kv_dtype=kv_dtype,
                             batch=batch, hw=hw)
    counts = shape.params()
    return {
        "shape": shape.to_dict(),
        "context": context,
        "batch": batch,
        "dtype": dtype,
        "kv_dtype": kv_dtype or dtype,
        "params_convention": params,
        "params": {"total": counts.total, "non_embedding": counts.non_embedding,
                   "norms": counts.norms, "numel": counts.numel},
        "flops_per_token": {"time_invariant": _num(c.flops_time_invariant / batch),
                            "time_variant": _num(c.flops_time_variant / batch),
                            "total": _num(c.flops / batch)},
        "flops_per_decode_step": _num(c.flops),
        "memory_values": {"weights": _num(c.memory_weights), "kv_cache": _num(c.memory_kv_cache),
                          "total": _num(c.memory)},
        "memory_bytes": {"weights": _num(c.bytes_weights), "kv_cache": _num(c.bytes_kv_cache),
                         "total": _num(c.bytes_total)},
        "kv_share_of_memory_bytes": c.kv_share_of_memory,
        "z": c.z,
        "hardware": {"lambda": hw.lam, "alpha": hw.alpha, "beta": hw.beta},
        "components": [
            {"name": comp.name, "params": comp.params, "flops_per_token": _num(comp.flops),
             "memory_values": _num(comp.memory)}
            for comp in costs.components(shape, context)
        ],
    }


def format_cost_report(r: dict) -> str:
    shape = Shape(**r["shape"])
    f, mv, mb = r["flops_per_token"], r["memory_values"], r["memory_bytes"]
    title = shape.name or "custom shape"
    kv_dtype = r["kv_dtype"]
    lines = [
        f"{title}: {shape.describe()}",
        f"context {format_tokens(r['context'])} ({r['context']:,} tokens), batch {r['batch']}, "
        f"weights {r['dtype']}, KV cache {kv_dtype}, N = {r['params_convention']} parameters",
        "",
        f"parameters  total {r['params']['total']:,}  non-embedding {r['params']['non_embedding']:,}"
        f"  (+{r['params']['norms']:,} RMSNorm gains, not in Table 2)",
        "",
        f"{'':22}{'time-invariant':>16}{'time-variant':>16}{'total':>16}",
        f"{'FLOPs per token':22}{format_count(f['time_invariant']):>16}"
        f"{format_count(f['time_variant']):>16}{format_count(f['total']):>16}",
        f"{'memory (values)':22}{format_count(mv['weights']):>16}{format_count(mv['kv_cache']):>16}"
        f"{format_count(mv['total']):>16}",
        f"{'memory (bytes)':22}{format_bytes(mb['weights']):>16}{format_bytes(mb['kv_cache']):>16}"
        f"{format_bytes(mb['total']):>16}",
        "",
        f"KV cache share of memory  {100 * r['kv_share_of_memory_bytes']:.1f}%",
    ]
    if r["batch"] > 1:
        lines.append(f"FLOPs per decode step     {format_count(r['flops_per_decode_step'])} "
                     f"({r['batch']} sequences)")
    hw = r["hardware"]
    lines += [
        f"Z (Eq. 5)                 {r['z']:,.1f}   (lambda={hw['lambda']:g}, alpha={hw['alpha']:g}, "
        f"beta={hw['beta']:.3g}; M in values)",
        "",
        f"{'by component (Table 2)':24}{'params':>16}{'FLOPs/token':>16}{'memory (values)':>18}",
    ]
    for comp in r["components"]:
        lines.append(f"  {comp['name']:22}{format_count(comp['params']):>16}"
                     f"{format_count(comp['flops_per_token']):>16}"
                     f"{format_count(comp['memory_values']):>18}")
    return "\n".join(lines)


def cmd_cost(args: argparse.Namespace) -> int:
    if args.list_presets:
        for name in preset_names():
            shape = get_preset(name)
            note = ""
            if name in PUBLIC_MODELS:
                note = f"  [{PUBLIC_MODELS[name].source}]"
            print(f"{name:18} {shape.describe()}{note}")
        return 0
    if args.context is None:
        raise CliError("--context is required (tokens; 128k = 131072)")
    shape = _shape_from_args(args)
    hw = costs.HardwareWeights(lam=args.lam, alpha=args.alpha, beta=args.beta)
    report = cost_report(shape, args.context, dtype=args.dtype, kv_dtype=args.kv_dtype,
                         batch=args.batch, params=args.params, hw=hw)
    print(json.dumps(report, indent=2) if args.json else format_cost_report(report))
    return 0


def _add_cost(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cost", help="inference cost of a model shape at a context length (Eq. 3-5)",
        description="Inference FLOPs, memory and hardware-aware cost Z of one model shape at one "
                    "context length, with the paper's formulas and a per-component breakdown.",
        epilog=COST_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", metavar="NAME", help="a named shape (see --list-presets); the shape "
                   "flags below override its fields")
    p.add_argument("--list-presets", action="store_true", help="list preset names and exit")
    p.add_argument("--context", "-T", type=_tokens, metavar="TOKENS",
                   help="context length T in tokens: 131072, 128k, 1m")
    g = p.add_argument_group("explicit shape")
    g.add_argument("--layers", type=_int, help="number of layers L")
    g.add_argument("--d-model", type=_int, help="hidden size d")
    g.add_argument("--heads", type=_int, help="query heads n_h")
    g.add_argument("--kv-heads", type=_int, help="KV heads n_kv (default: n_h, i.e. MHA)")
    g.add_argument("--head-dim", type=_int, help="head dim d_h (default 64, independent of d)")
    g.add_argument("--ffn", type=_int, help="SwiGLU width d_ff (default 8d/3 up to a multiple of 32)")
    g.add_argument("--vocab", type=_int, help="vocabulary size V (default 50304)")
    g.add_argument("--untied", action="store_true", help="untied output projection")
    o = p.add_argument_group("options")
    o.add_argument("--dtype", default="bf16", help="dtype of weights and, by default, KV cache")
    o.add_argument("--kv-dtype", default=None, help="dtype of the KV cache (beyond the paper)")
    o.add_argument("--batch", type=_positive_int, default=1,
                   help="sequences decoded together (beyond the paper; default 1)")
    o.add_argument("--params", choices=["total", "non_embedding"], default="total",
                   help="which N enters Eq. 3-4 (default: total, tied embedding counted once)")
    o.add_argument("--lambda", dest="lam", type=float, default=0.9, help="Eq. 5 lambda (0.9)")
    o.add_argument("--alpha", type=float, default=0.5, help="Eq. 5 alpha (0.5)")
    o.add_argument("--beta", type=float, default=1 / 3, help="Eq. 5 beta (1/3)")
    o.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_cost)


# --- gqa book -----------------------------------------------------------------------------------


def cmd_book(args: argparse.Namespace) -> int:
    from gqa.book import build_book

    build_book(args.profile, force=args.force, html=not args.no_html, only=args.only)
    return 0


def _add_book(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "book", help="execute the notebooks under a profile and build the HTML book",
        description="Execute each notebook with papermill and the profile's parameters into "
                    "book/_build, skipping notebooks whose inputs are unchanged, then build the "
                    "Jupyter Book offline with Sphinx warnings as errors.")
    p.add_argument("--profile", default="cpu",
                   help="compute profile: notebooks/params/<profile>.yaml (ci, cpu, gpu)")
    p.add_argument("--force", action="store_true", help="re-execute every notebook")
    p.add_argument("--only", metavar="NOTEBOOK", action="append",
                   help="execute only this notebook (stem, repeatable); others must be cached")
    p.add_argument("--no-html", action="store_true", help="execute notebooks, skip the HTML build")
    p.set_defaults(func=cmd_book)


# --- gqa profile --------------------------------------------------------------------------------


def cmd_profile(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from gqa import profiling
    from gqa.book import load_profile

    raw = dict(load_profile(args.profile).get("attention_profile") or {})
    if not raw:
        raise CliError(f"profile {args.profile!r} has no attention_profile section")
    if args.device:
        raw["device"] = args.device
    if args.dtype:
        raw["dtype"] = args.dtype
    cfg = profiling.SweepConfig.from_dict(raw)
    if cfg.device.startswith("cuda") and not __import__("torch").cuda.is_available():
        raise CliError("--device cuda: torch sees no CUDA device here")

    print(f"1. cost model vs measurement on {cfg.device} (FlopCounterMode on the eager path; "
          "real cache tensors)")
    checks = profiling.check_cost_model(cfg.device)
    for row in checks:
        mark = "ok " if row["equal"] else "DIFF"
        print(f"  {mark} {row['shape']:34} {row['quantity']:44} measured {row['measured']:>14,.0f}"
              f"  analytic {row['analytic']:>14,.0f}")
    failed = [r for r in checks if not r["equal"]]
    if failed:
        raise RuntimeError(f"{len(failed)} measured quantities differ from the cost model")
    if args.checks_only:
        return 0

    print(f"\n2. attention sweep: {cfg.device} ({profiling.device_name(cfg.device)}), {cfg.dtype}, "
          f"batch {cfg.batch}, n_h={cfg.n_heads}, n_kv in {cfg.kv_heads}, d_h={cfg.head_dim}")
    rows = profiling.run_sweep(cfg, progress=lambda total: tqdm(total=total, unit="case"),
                               log=lambda msg: print("  " + msg))
    out = Path(args.out) if args.out else profiling.profile_path(cfg.device, args.profile)
    profiling.write_rows(rows, out)
    print(f"  measured bandwidth {rows[0]['bandwidth_gb_s']:.1f} GB/s; {len(rows)} rows -> {out}")
    print(f"\n{'phase':8}{'n_kv':>5}{'T':>8}{'sdpa ms':>10}{'repeat ms':>11}{'repeat/sdpa':>12}"
          f"{'sdpa mem/KV':>13}{'repeat mem/KV':>15}")
    for s in profiling.summarise(rows):
        if "repeat_over_sdpa_time" not in s:
            continue
        print(f"{s['phase']:8}{s['n_kv']:>5}{format_tokens(s['context']):>8}{s['sdpa_ms']:>10.3f}"
              f"{s['repeat_ms']:>11.3f}{s['repeat_over_sdpa_time']:>12.2f}"
              f"{s['sdpa_mem_over_kv']:>13.3f}{s['repeat_mem_over_kv']:>15.3f}")
    return 0


def _add_profile(sub: argparse._SubParsersAction) -> None:
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
                   help="output file (default data/profiles/<device>_<profile>.csv)")
    p.add_argument("--checks-only", action="store_true", help="run the measured checks, no sweep")
    p.set_defaults(func=cmd_profile)


# --- entry point --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gqa",
        description="Cost-optimal grouped-query attention: cost, profile, train, fit and plan.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    _add_cost(sub)
    _add_profile(sub)
    _add_book(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CliError, ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"gqa {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
