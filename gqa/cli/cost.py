"""`gqa cost`: FLOPs, memory and Z of a shape at a context (Eq. 3-5, Table 2)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace

from gqa import architecture as arch
from gqa import cost as costs
from gqa.architecture import Architecture
from gqa.cli._common import CliError, _finite_float, _int, _positive_float, _positive_int, _positive_tokens
from gqa.shapes import PUBLIC_MODELS, Shape, get_preset, preset_names
from gqa.units import format_bytes, format_count, format_duration, format_tokens

COST_EPILOG = """\
examples:
  gqa cost --preset llama-3.1-8b --context 128k
  gqa cost --preset paper-1.2b --heads 32 --kv-heads 8 --context 131072 --json
  gqa cost --config path/to/model/config.json --context 32k
  gqa cost --layers 36 --d-model 2048 --heads 8 --kv-heads 1 --context 1m --batch 4 --kv-dtype fp8
  gqa cost --preset llama-3.1-8b --context 32k --hardware h100 --batch 16 --efficiency 0.7
  gqa cost --preset llama-3.1-8b --context 32k --hardware rtx-4090 --kv-dtype fp8 --max-context --max-batch
  gqa cost --preset llama-3.2-1b --context 8k --bandwidth 100 --peak-flops 20 --memory 16

Paper-exact numbers are per token at context T (Eq. 3-5): C = 2N + 4TLd_h n_h FLOPs (an untied
input embedding is a lookup: not in the 2N), M = N + 2TLd_h n_kv values, and
Z = 0.9 M^0.5 + 0.1 C^(1/3) on M in values. Context suffixes are
binary: 128k = 131072. --batch B (beyond the paper) multiplies the KV cache and the FLOPs of a
decode step by B; Z then uses the whole step. Beyond a Llama shape (--config): a sliding-window
layer holds min(T, W) tokens, a mixture's FLOPs use its active parameters and its memory all of
them, an MLA model caches its latent (kv_lora_rank + rope dims per token and layer). Hardware
times are ideal rooflines, max(bytes / bandwidth, FLOPs / peak): prefill of B prompts of T tokens,
and one decode step of B sequences at T; --efficiency divides them, shown apart.
"""


# What an explicit shape assumes when a flag is left out (said in the output, never silent).
ASSUMED_DEFAULTS = {"head_dim": ("--head-dim", "64, the paper's head dim"),
                    "vocab": ("--vocab", "50,304, the paper's vocabulary"),
                    "d_ff": ("--ffn", "the paper's 8d/3 rounded up to a multiple of 32")}


def _model_from_args(args: argparse.Namespace) -> tuple[Architecture, Shape | None, dict[str, str]]:
    """The model to cost (an Architecture, with its Shape when it is one) and what it assumed:
    {field: why} for every value not given."""
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
            from gqa.hf_config import model_from_config

            model = model_from_config(args.config)
            if model.shape is None:
                if given:
                    flags = ", ".join(_FLAGS[k] for k in given)
                    raise CliError(f"{flags}: shape what-ifs need a plain Llama-style shape, which this "
                                   f"{model.architecture.family} config is not: {model.not_a_shape}; it is costed as "
                                   "its config describes it")
                return model.architecture, None, model.assumed
            base, notes, architecture = model.shape, model.assumed, model.architecture
        else:
            base, notes = get_preset(args.preset), {}
            public = PUBLIC_MODELS.get(base.name)
            architecture = replace(Architecture.from_shape(base), max_position=public.max_position if public else None)
        if "n_heads" in given and "n_kv_heads" not in given and given["n_heads"] % base.n_kv_heads:
            raise CliError(f"--heads {given['n_heads']} is not a multiple of {base.name}'s n_kv = {base.n_kv_heads}; "
                           "give --kv-heads too")
        changed = {k: v for k, v in given.items() if getattr(base, k) != v}
        if not changed:
            return architecture, base, notes
        name = base.name + " with " + ", ".join(f"{_FLAG_NAMES[k]}={v}" for k, v in changed.items())
        shape = replace(base, **given, name=name)  # the name says the shape is no longer the named model
        return replace(Architecture.from_shape(shape), max_position=architecture.max_position), shape, notes
    missing = [flag for flag, key in (("--layers", "layers"), ("--d-model", "d_model"),
                                      ("--heads", "n_heads")) if key not in given]
    if missing:
        raise CliError(f"give --preset NAME, --config PATH or an explicit shape; missing {', '.join(missing)}")
    assumed = {key: f"{why} (set {flag})" for key, (flag, why) in ASSUMED_DEFAULTS.items() if key not in given}
    if "n_kv_heads" not in given:
        given["n_kv_heads"] = given["n_heads"]
        assumed["n_kv_heads"] = "= n_h, multi-head attention (set --kv-heads)"
    shape = Shape(**given)
    return Architecture.from_shape(shape), shape, assumed


_FLAGS = {"layers": "--layers", "d_model": "--d-model", "n_heads": "--heads", "n_kv_heads": "--kv-heads",
          "head_dim": "--head-dim", "d_ff": "--ffn", "vocab": "--vocab", "tied": "--untied"}
_FLAG_NAMES = {"layers": "L", "d_model": "d", "n_heads": "n_h", "n_kv_heads": "n_kv", "head_dim": "d_h",
               "d_ff": "d_ff", "vocab": "V", "tied": "tied"}


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x


def _roofline_dict(r: arch.Roofline) -> dict:
    """One phase: ideal figures, then the same at the efficiency (equal when it is 1); tokens/s across the batch,
    and for decode per sequence (a decode token's time is the step's)."""
    out = {"tokens": r.tokens, "bytes": _num(round(r.bytes)), "flops": _num(r.flops), "bound": r.bound,
           "ideal_s": r.seconds, "ideal_tokens_per_s": r.tokens / r.seconds, "efficiency": r.efficiency,
           "s": r.seconds_at_efficiency, "tokens_per_s": r.tokens_per_s}
    if r.phase == "prefill":  # a prompt token's share of the prefill
        out.update(ideal_s_per_token=r.seconds / r.tokens, s_per_token=r.seconds_per_token)
    else:  # every sequence gets one token a step: a token's latency is the step, its rate the step's inverse
        out.update(ideal_s_per_token=r.seconds, s_per_token=r.seconds_at_efficiency,
                   ideal_tokens_per_s_per_sequence=1 / r.seconds, tokens_per_s_per_sequence=1 / r.seconds_at_efficiency)
    return out


def hardware_report(model: Architecture, context: int, device, *, dtype: str, kv_dtype: str | None, batch: int,
                    efficiency: float = 1.0, cache: str = "default") -> dict:
    """The ideal (roofline) prefill of `batch` prompts of `context` tokens and decode step of `batch` sequences
    at `context` on `device` (times divided by `efficiency`, shown apart)."""
    kw = dict(dtype=dtype, kv_dtype=kv_dtype, cache=cache)
    decode = arch.decode_roofline(model, context, device, batch=batch, efficiency=efficiency, **kw)
    prefill = arch.prefill_roofline(model, context, device, batch=batch, efficiency=efficiency, **kw)
    return {"hardware": device.name, "source": device.source, "bandwidth_bytes_per_s": device.bandwidth,
            "peak_flops_per_s": device.peak_flops, "memory_bytes": device.memory,
            "prefill": _roofline_dict(prefill), "decode": _roofline_dict(decode),
            "moe_routing": "uniform (a batch of B tokens reads E·(1 − (1 − k/E)^B) experts per layer)"
            if model.experts else None}


def memory_report(model: Architecture, context: int, memory: float, *, batch: int, dtype: str,
                  kv_dtype: str | None, cache: str = "default") -> dict:
    """Whether weights and `batch` caches fit in `memory` bytes, and the inverse questions: the most
    sequences at `context`, the longest context at `batch` (None: every context fits)."""
    kw = dict(dtype=dtype, kv_dtype=kv_dtype, cache=cache)
    most = arch.max_context(model, memory, batch, **kw)
    limit = model.max_position
    return {"memory_budget_bytes": memory, "counts": "weights and KV caches only (no activations, runtime or "
            "allocator overhead)", "weight_bytes": arch.memory_bytes(model, 0, batch, **kw),
            "fits": arch.memory_bytes(model, context, batch, **kw) <= memory,
            "max_batch": max(arch.max_batch(model, context, memory, **kw), 0),
            "max_context": most, "max_position_embeddings": limit,
            "max_context_within_model": most if limit is None else (limit if most is None else min(most, limit))}


def cost_report(model: Architecture | Shape, context: int, *, dtype: str, kv_dtype: str | None, batch: int,
                params: str, hw: costs.HardwareWeights, assumed: dict | None = None, device=None,
                shape: Shape | None = None, efficiency: float = 1.0, memory: float | None = None,
                cache: str = "default") -> dict:
    """Everything `gqa cost` prints, as one JSON-ready dictionary: the cost model's numbers, and with
    `device` the ideal prefill and decode on it, with `memory` (bytes) what fits in that budget."""
    if isinstance(model, Shape):
        model, shape = Architecture.from_shape(model), model
    c = arch.inference_cost(model, context, params=params, dtype=dtype, kv_dtype=kv_dtype, batch=batch, hw=hw,
                            cache=cache)
    kw = dict(dtype=dtype, kv_dtype=kv_dtype, batch=batch, cache=cache)
    warnings = []
    if model.max_position is not None and context > model.max_position:
        warnings.append(f"context {_context_text(context)} is beyond the model's "
                        f"max_position_embeddings = {model.max_position:,}: it was not built for it")
    alternative = None
    if model.alternative_cache:
        name = model.alternative_cache[0]
        alternative = {"name": name, "kv_cache_bytes": _num(model.kv_values(context, batch, cache=name)
                                                           * c.kv_bytes)}
    if cache != "default":
        alternative = {"name": "default", "kv_cache_bytes": _num(model.kv_values(context, batch) * c.kv_bytes)}
    return {"roofline": hardware_report(model, context, device, efficiency=efficiency, **kw) if device else None,
        "memory_budget": memory_report(model, context, memory, **kw) if memory is not None else None,
        "warnings": warnings,
        "shape": shape.to_dict() if shape is not None else None,
        "model": {"name": model.name or (shape.name if shape else ""), "family": model.family,
                  "description": shape.describe() if shape is not None else model.describe(),
                  "layers": len(model.layers), "windows": list(model.windows),
                  "experts": asdict(model.experts) if model.experts else None,
                  "max_position_embeddings": model.max_position, "cache": cache, "notes": list(model.notes)},
        "assumed": assumed or {},
        "context": context,
        "batch": batch,
        "dtype": dtype,
        "kv_dtype": kv_dtype or dtype,
        "params_convention": params,
        "params": {"total": model.total, "active": model.active, "active_matmul": model.matmul_params(),
                   "non_embedding": model.non_embedding, "norms": model.norms, "numel": model.numel},
        "flops_per_token": {"time_invariant": _num(c.flops_time_invariant / batch),
                            "time_variant": _num(c.flops_time_variant / batch),
                            "total": _num(c.flops / batch)},
        "flops_per_decode_step": _num(c.flops),
        "memory_values": {"weights": _num(c.memory_weights), "kv_cache": _num(c.memory_kv_cache),
                          "total": _num(c.memory)},
        "memory_bytes": {"weights": _num(c.bytes_weights), "kv_cache": _num(c.bytes_kv_cache),
                         "total": _num(c.bytes_total)},
        "kv_share_of_memory_bytes": c.kv_share_of_memory,
        "alternative_cache": alternative,
        "z": c.z,
        "z_constants": {"lambda": hw.lam, "alpha": hw.alpha, "beta": hw.beta},
        "components": [
            {"name": comp.name, "params": comp.params, "flops_per_token": _num(comp.flops),
             "memory_values": _num(comp.memory)}
            for comp in arch.components(model, context, params=params, batch=batch, cache=cache)
        ],
    }


def _context_text(tokens: int) -> str:
    """'128K (131,072 tokens)', or '1,536 tokens' where the short form adds nothing."""
    short = format_tokens(tokens)
    return f"{tokens:,} tokens" if short == f"{tokens:,}" else f"{short} ({tokens:,} tokens)"


def _longest_context(m: dict) -> str:
    most, limit = m["max_context"], m["max_position_embeddings"]
    if most == 0:
        return (f"none: the weights alone ({format_bytes(m['weight_bytes'])}) exceed "
                f"{format_bytes(m['memory_budget_bytes'])}")
    if most is None:
        return ("every context fits in memory (each layer's cache stops growing at its window)"
                + (f"; the model was built for {limit:,} tokens" if limit is not None else ""))
    text = _context_text(most)
    if limit is not None and most > limit:
        text += f", beyond the model's max_position_embeddings = {limit:,}"
    return text


def _fits_line(m: dict, batch: int, context: int) -> str:
    budget = format_bytes(m["memory_budget_bytes"])
    if m["max_context"] == 0:
        return (f"in {budget}, counting {m['counts']}: does NOT fit: the weights alone "
                f"({format_bytes(m['weight_bytes'])}) exceed it")
    return (f"in {budget}, counting {m['counts']}: " + ("fits" if m["fits"] else "does NOT fit")
            + f"; at most {m['max_batch']:,} sequence{'' if m['max_batch'] == 1 else 's'} of {format_tokens(context)} "
            "fit beside the weights; "
            + f"the longest context for a batch of {batch}: " + _longest_context(m))


def _roofline_line(phase: str, r: dict, what: str, batch: int) -> str:
    """Prefill: time, time a prompt token, tokens/s. Decode: time of a step (each sequence's time a token),
    tokens/s across the batch and per sequence. Ideal first; at the efficiency after, when it is below 1."""
    def figures(seconds: float, tokens_per_s: float) -> str:
        if phase == "prefill":
            return (f"{format_duration(seconds)}: {format_duration(seconds / r['tokens'])} a token, "
                    f"{tokens_per_s:,.0f} tokens/s")
        return (f"{format_duration(seconds)} a token per sequence: {tokens_per_s:,.0f} tokens/s across the batch"
                + (f", {tokens_per_s / batch:,.0f} per sequence" if batch > 1 else ""))

    line = (f"  {phase:8}{what}, ideal {figures(r['ideal_s'], r['ideal_tokens_per_s'])} ({r['bound']}-bound: "
            f"{format_bytes(r['bytes'])} moved, {format_count(r['flops'])} FLOPs)")
    if r["efficiency"] != 1:
        line += f"; at {r['efficiency']:.0%} of the peaks {figures(r['s'], r['tokens_per_s'])}"
    return line


def format_cost_report(r: dict) -> str:
    m = r["model"]
    f, mv, mb = r["flops_per_token"], r["memory_values"], r["memory_bytes"]
    title = m["name"] or "custom shape"
    kv_dtype = r["kv_dtype"]
    p = r["params"]
    params_line = f"parameters  total {p['total']:,}"
    if p["active"] != p["total"]:
        params_line += f"  active per token {p['active']:,}"
        if p["active_matmul"] != p["active"]:
            params_line += f" ({p['active_matmul']:,} without the input embedding, a lookup)"
    params_line += f"  non-embedding {p['non_embedding']:,}  (+{p['norms']:,} RMSNorm gains, not in Table 2)"
    lines = [
        f"{title}: {m['description']}",
        f"context {_context_text(r['context'])}, batch {r['batch']}, "
        f"weights {r['dtype']}, KV cache {kv_dtype}, N = {r['params_convention']} parameters"
        + ("" if m["cache"] == "default" else f", {m['cache']} cache"),
        *[f"assumed {key}: {why}" for key, why in r["assumed"].items()],
        *[f"warning: {w}" for w in r["warnings"]],
        *[f"note: {n}" for n in m["notes"]],
        "",
        params_line,
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
    if any(w is not None for w in m["windows"]):
        sliding = [w for w in m["windows"] if w is not None]
        lines.append(f"sliding windows           {len(sliding)} of {m['layers']} layers keep the last "
                     f"{'/'.join(f'{w:,}' for w in sorted(set(sliding)))} tokens")
    if r["alternative_cache"]:
        alt = r["alternative_cache"]
        lines.append(f"the {alt['name']} cache would hold  {format_bytes(alt['kv_cache_bytes'])} "
                     f"(--cache {alt['name']})")
    if p["active"] != p["total"]:
        lines.append("FLOPs count the active parameters, memory every expert")
    if p["active_matmul"] < p["active"] and r["params_convention"] == "total":
        lines.append("time-invariant FLOPs: 2 x the parameters a token multiplies by (the untied input embedding "
                     "is a lookup)")
    if r["batch"] > 1:
        lines.append(f"FLOPs per decode step     {format_count(r['flops_per_decode_step'])} "
                     f"({r['batch']} sequences)")
    d = r.get("roofline")
    if d:
        lines += ["", f"ideal roofline on {d['hardware']} ({format_bytes(d['bandwidth_bytes_per_s'])}/s, "
                  f"{format_count(d['peak_flops_per_s'])} FLOP/s), a lower bound on time",
                  _roofline_line("prefill", d["prefill"], f"{r['batch']} x {format_tokens(r['context'])} prompt tokens",
                                 r["batch"]),
                  _roofline_line("decode", d["decode"], f"one step of {r['batch']} sequence"
                                 + ("s" if r["batch"] > 1 else "") + f" at {format_tokens(r['context'])}", r["batch"])]
        if d["moe_routing"]:
            lines.append(f"  experts read: routing taken as {d['moe_routing']}")
    if r.get("memory_budget"):
        lines.append(_fits_line(r["memory_budget"], r["batch"], r["context"]))
    hw = r["z_constants"]
    lines += [
        "",
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


def _device(args: argparse.Namespace):
    """The accelerator of --hardware, with --bandwidth, --peak-flops and --memory over its figures (or
    on their own); None without any."""
    from gqa import hardware

    own = {"bandwidth": args.bandwidth and args.bandwidth * 1e9, "peak_flops": args.peak_flops and
           args.peak_flops * 1e12, "memory": args.memory and args.memory * 1e9}
    given = {k: v for k, v in own.items() if v}
    if args.hardware:
        try:
            device = hardware.preset(args.hardware)
        except ValueError as e:
            raise CliError(f"--hardware: {e}") from None
        if given:
            device = replace(device, name=device.name + " with " + ", ".join(f"--{k.replace('_', '-')}" for k in given),
                             source=device.source + "; figures given on the command line", **given)
        return device
    if args.bandwidth or args.peak_flops:
        if not (args.bandwidth and args.peak_flops):
            raise CliError("--bandwidth and --peak-flops describe a machine together (or name one: --hardware NAME)")
        return hardware.custom(given["bandwidth"], given["peak_flops"], given.get("memory"))
    return None


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
    model, shape, assumed = _model_from_args(args)
    if args.cache != "default":
        try:
            model.cache_layers(args.cache)
        except ValueError as e:
            raise CliError(f"--cache: {e}") from None
    try:
        hw = costs.HardwareWeights(lam=args.lam, alpha=args.alpha, beta=args.beta)
    except ValueError as e:
        raise CliError(f"--{e}") from None  # the message starts with the field: lambda, alpha or beta
    device = _device(args)
    memory = device.memory if device is not None else (args.memory * 1e9 if args.memory else None)
    if (args.max_context or args.max_batch) and memory is None:
        raise CliError("--max-context and --max-batch need a memory budget: --hardware NAME or --memory GB")
    if not 0 < args.efficiency <= 1:
        raise CliError(f"--efficiency must lie in (0, 1] (the share of the peaks real kernels reach), "
                       f"got {args.efficiency}")
    report = cost_report(model, args.context, dtype=args.dtype, kv_dtype=args.kv_dtype, batch=args.batch,
                         params=args.params, hw=hw, assumed=assumed, device=device, shape=shape,
                         efficiency=args.efficiency, memory=memory, cache=args.cache)
    if args.json:
        print(json.dumps(report, indent=2, allow_nan=False))
        return 0
    if args.max_context or args.max_batch:  # the inverse questions, answered first
        m = report["memory_budget"]
        budget = format_bytes(m["memory_budget_bytes"])
        if args.max_context:
            print(f"max context at batch {args.batch} in {budget}: {_longest_context(m)}")
        if args.max_batch:
            print(f"max batch at {format_tokens(args.context)} in {budget}: {m['max_batch']:,} sequences"
                  + ("" if m["max_batch"] or m["max_context"] != 0 else " (the weights alone do not fit)"))
        print()
    print(format_cost_report(report))
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
    p.add_argument("--config", metavar="PATH", help="a Hugging Face config.json or local model folder, read offline "
                   "with transformers' config classes (no torch): llama, granite, mistral, phi3, qwen2, qwen3, olmo2, "
                   "gemma2, gemma3_text, mixtral, qwen2_moe, qwen3_moe, deepseek_v2, deepseek_v3; sliding windows, "
                   "experts (total and active) and MLA's latent cache are honoured; shape flags override a "
                   "Llama-style one")
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
    o = p.add_argument_group("cost options")
    o.add_argument("--dtype", default="bf16", help="dtype of weights and, by default, KV cache")
    o.add_argument("--kv-dtype", default=None, help="dtype of the KV cache (beyond the paper)")
    o.add_argument("--batch", type=_positive_int, default=1,
                   help="sequences decoded together (beyond the paper; default 1)")
    o.add_argument("--params", choices=["total", "non_embedding"], default="total",
                   help="which N enters Eq. 3-4 (default: total, tied embedding counted once)")
    o.add_argument("--lambda", dest="lam", type=_finite_float, default=0.9, help="Eq. 5 lambda, in [0, 1] (0.9)")
    o.add_argument("--alpha", type=_finite_float, default=0.5, help="Eq. 5 alpha, > 0 (0.5)")
    o.add_argument("--beta", type=_finite_float, default=1 / 3, help="Eq. 5 beta, > 0 (1/3)")
    o.add_argument("--cache", default="default", metavar="NAME",
                   help="the cache layout to cost: default (the latent for MLA models, the last W tokens of a "
                        "sliding-window layer) or expanded (MLA's per-head K and V, decompressed from the latent)")
    from gqa.hardware import ALIASES, PRESETS

    h = p.add_argument_group("hardware (ideal roofline: the longer of bytes / bandwidth and FLOPs / peak)")
    h.add_argument("--hardware", metavar="NAME", help="an accelerator from its datasheet: the prefill and decode "
                   "time per token, tokens/s, and what fits in its memory: " + ", ".join(PRESETS)
                   + " (aliases " + ", ".join(f"{a} = {n}" for a, n in ALIASES.items()) + ")")
    h.add_argument("--bandwidth", type=_positive_float, metavar="GB/S", help="memory bandwidth in GB/s (1e9 bytes/s); "
                   "with --peak-flops, any other machine; with --hardware, overrides its figure")
    h.add_argument("--peak-flops", type=_positive_float, metavar="TFLOP/S", help="dense peak in TFLOP/s at the "
                   "weights' dtype (the presets give dense BF16)")
    h.add_argument("--memory", type=_positive_float, metavar="GB", help="memory budget in GB (1e9 bytes): what "
                   "fits, --max-context and --max-batch")
    h.add_argument("--efficiency", type=_finite_float, default=1.0, help="the share of the peaks real kernels "
                   "reach, in (0, 1]; times are shown ideal and at it (default 1)")
    h.add_argument("--max-context", action="store_true", help="print the longest context whose weights and "
                   "--batch caches fit in the memory")
    h.add_argument("--max-batch", action="store_true", help="print the most sequences of --context that fit")
    o.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_cost)
