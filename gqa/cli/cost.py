"""`gqa cost`: FLOPs, memory and Z of a shape at a context (Eq. 3-5, Table 2)."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from gqa import cost as costs
from gqa.cli._common import CliError, _finite_float, _int, _positive_int, _positive_tokens
from gqa.shapes import PUBLIC_MODELS, Shape, get_preset, preset_names
from gqa.units import format_bytes, format_count, format_duration, format_tokens


COST_EPILOG = """\
examples:
  gqa cost --preset llama-3.1-8b --context 128k
  gqa cost --preset paper-1.2b --heads 32 --kv-heads 8 --context 131072 --json
  gqa cost --config path/to/model/config.json --context 32k
  gqa cost --layers 36 --d-model 2048 --heads 8 --kv-heads 1 --context 1m --batch 4 --kv-dtype fp8

Paper-exact numbers are per token at context T (Eq. 3-5): C = 2N + 4TLd_h n_h FLOPs,
M = N + 2TLd_h n_kv values, Z = 0.9 M^0.5 + 0.1 C^(1/3) on M in values. Context suffixes are
binary: 128k = 131072. --batch B (beyond the paper) multiplies the KV cache and the FLOPs of a
decode step by B; Z then uses the whole step.
"""


# What an explicit shape assumes when a flag is left out (said in the output, never silent).
ASSUMED_DEFAULTS = {"head_dim": ("--head-dim", "64, the paper's head dim"),
                    "vocab": ("--vocab", "50,304, the paper's vocabulary"),
                    "d_ff": ("--ffn", "the paper's 8d/3 rounded up to a multiple of 32")}


def _shape_from_args(args: argparse.Namespace) -> tuple[Shape, dict[str, str]]:
    """The shape to cost and what it assumed: {field: why} for every value not given."""
    fields = {"layers": args.layers, "d_model": args.d_model, "n_heads": args.heads,
              "n_kv_heads": args.kv_heads, "head_dim": args.head_dim, "d_ff": args.ffn,
              "vocab": args.vocab}
    given = {k: v for k, v in fields.items() if v is not None}
    if args.untied:
        given["tied"] = False
    if args.config and args.preset:
        raise CliError("give --preset or --config, not both")
    if args.config or args.preset:
        if args.config:
            from gqa.hf_config import shape_from_config

            base, notes = shape_from_config(args.config)
        else:
            base, notes = get_preset(args.preset), {}
        if "n_heads" in given and "n_kv_heads" not in given and given["n_heads"] % base.n_kv_heads:
            raise CliError(f"--heads {given['n_heads']} is not a multiple of {base.name}'s n_kv = {base.n_kv_heads}; "
                           "give --kv-heads too")
        changed = {k: v for k, v in given.items() if getattr(base, k) != v}
        name = base.name
        if changed:  # the name says the shape is no longer the named model
            name += " with " + ", ".join(f"{_FLAG_NAMES[k]}={v}" for k, v in changed.items())
        return replace(base, **given, name=name), notes
    missing = [flag for flag, key in (("--layers", "layers"), ("--d-model", "d_model"),
                                      ("--heads", "n_heads")) if key not in given]
    if missing:
        raise CliError(f"give --preset NAME, --config PATH or an explicit shape; missing {', '.join(missing)}")
    assumed = {key: f"{why} (set {flag})" for key, (flag, why) in ASSUMED_DEFAULTS.items() if key not in given}
    if "n_kv_heads" not in given:
        given["n_kv_heads"] = given["n_heads"]
        assumed["n_kv_heads"] = "= n_h, multi-head attention (set --kv-heads)"
    return Shape(**given), assumed


_FLAG_NAMES = {"layers": "L", "d_model": "d", "n_heads": "n_h", "n_kv_heads": "n_kv", "head_dim": "d_h",
               "d_ff": "d_ff", "vocab": "V", "tied": "tied"}


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x


def decode_report(shape: Shape, context: int, *, dtype: str, kv_dtype: str | None, batch: int,
                  device) -> dict:
    """The ideal (roofline) decode step of `batch` sequences at `context` on `device`: what it reads (every
    weight, with the embedding, and every cache) and computes, its time, tokens/s, and how many sequences
    fit in the device's memory beside the weights."""
    from gqa.hardware import decode_step_time

    c = costs.inference_cost(shape, context, params="total", dtype=dtype, kv_dtype=kv_dtype, batch=batch)
    # an untied input embedding is held but only looked up (B rows a step), so it is not read
    lookup_only = 0 if shape.tied else shape.params().embedding * c.weight_bytes
    read = c.bytes_total - lookup_only
    step = decode_step_time(read, c.flops, device)
    per_sequence = c.bytes_kv_cache / batch
    room = device.memory - c.bytes_weights
    return {"hardware": device.name, "bandwidth_bytes_per_s": device.bandwidth, "peak_flops_per_s": device.peak_flops,
            "memory_bytes": device.memory, "bytes_read": _num(read), "flops": _num(c.flops),
            "step_s": step, "bound": "memory" if read / device.bandwidth >= c.flops / device.peak_flops
            else "compute", "tokens_per_s": batch / step, "fits": c.bytes_total <= device.memory,
            "max_batch": int(room // per_sequence) if per_sequence > 0 and room > 0 else 0}


def cost_report(shape: Shape, context: int, *, dtype: str, kv_dtype: str | None, batch: int,
                params: str, hw: costs.HardwareWeights, assumed: dict | None = None, device=None) -> dict:
    """Everything `gqa cost` prints, as one JSON-ready dictionary (with `device`, the ideal decode step)."""
    c = costs.inference_cost(shape, context, params=params, dtype=dtype, kv_dtype=kv_dtype,
                             batch=batch, hw=hw)
    counts = shape.params()
    decode = (decode_report(shape, context, dtype=dtype, kv_dtype=kv_dtype, batch=batch, device=device)
              if device is not None else None)
    return {"decode": decode,
        "shape": shape.to_dict(),
        "assumed": assumed or {},
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
            for comp in costs.components(shape, context, params=params, batch=batch)
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
        *[f"assumed {key}: {why}" for key, why in r["assumed"].items()],
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
    d = r.get("decode")
    if d:
        lines.append(f"ideal decode step on {d['hardware']}  {format_duration(d['step_s'])} "
                     f"({d['bound']}-bound: reads {format_bytes(d['bytes_read'])}, computes "
                     f"{format_count(d['flops'])} FLOPs), {d['tokens_per_s']:,.0f} tokens/s; "
                     + (f"fits in its {format_bytes(d['memory_bytes'])}" if d["fits"] else
                        f"does NOT fit in its {format_bytes(d['memory_bytes'])}")
                     + f"; at most {d['max_batch']:,} sequences of this context fit beside the weights")
    hw = r["hardware"]
    lines += [
        f"Z (Eq. 5)                 {r['z']:,.1f}   (lambda={hw['lambda']:g}, alpha={hw['alpha']:g}, "
        f"beta={hw['beta']:.3g}; M in values)",
        "",
        f"{'by component (Table 2)':24}{'params':>16}{'FLOPs/token':>16}{'memory (values)':>18}"
        + (f"  (KV cache of {r['batch']} sequences)" if r["batch"] > 1 else ""),
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
    shape, assumed = _shape_from_args(args)
    hw = costs.HardwareWeights(lam=args.lam, alpha=args.alpha, beta=args.beta)
    device = None
    if args.hardware:
        from gqa.hardware import preset

        try:
            device = preset(args.hardware)
        except ValueError as e:
            raise CliError(f"--hardware: {e}") from None
    report = cost_report(shape, args.context, dtype=args.dtype, kv_dtype=args.kv_dtype,
                         batch=args.batch, params=args.params, hw=hw, assumed=assumed, device=device)
    print(json.dumps(report, indent=2, allow_nan=False) if args.json else format_cost_report(report))
    return 0


def add_cost(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cost", help="inference cost of a model shape at a context length (Eq. 3-5)",
        description="Inference FLOPs, memory and hardware-aware cost Z of one model shape at one "
                    "context length, with the paper's formulas and a per-component breakdown.",
        epilog=COST_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", metavar="NAME", help="a named shape (see --list-presets); the shape "
                   "flags below override its fields")
    p.add_argument("--list-presets", action="store_true", help="list preset names and exit")
    p.add_argument("--config", metavar="PATH", help="a Hugging Face config.json or local model folder (Llama, "
                   "Mistral, Qwen2/2.5, Qwen3), read offline with transformers; shape flags override it")
    p.add_argument("--context", "-T", type=_positive_tokens, metavar="TOKENS",
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
    o.add_argument("--lambda", dest="lam", type=_finite_float, default=0.9, help="Eq. 5 lambda, in [0, 1] (0.9)")
    o.add_argument("--alpha", type=_finite_float, default=0.5, help="Eq. 5 alpha, > 0 (0.5)")
    o.add_argument("--beta", type=_finite_float, default=1 / 3, help="Eq. 5 beta, > 0 (1/3)")
    from gqa.hardware import PRESETS

    o.add_argument("--hardware", metavar="NAME", help="also the ideal decode step on this accelerator (roofline: "
                                                      "bytes / bandwidth vs FLOPs / dense BF16 peak) and how many "
                                                      "sequences fit: " + ", ".join(PRESETS))
    o.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_cost)
