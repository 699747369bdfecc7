"""The `gqa` command line. Each subcommand is a thin layer over the library."""

from __future__ import annotations

import argparse
import json
import signal
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


def _profile_section(profile: str, key: str) -> dict:
    """One section of notebooks/params/<profile>.yaml, or a one-line error if it has none."""
    from gqa.book import load_profile

    section = load_profile(profile).get(key)
    if not section:
        raise CliError(f"profile {profile!r} has no {key} section")
    return dict(section)


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
    from gqa.book import build_book, check_built_book

    if args.check and args.no_html:
        raise CliError("--check needs the HTML build; drop --no-html")
    build_book(args.profile, force=args.force, html=not args.no_html, only=args.only)
    if args.check:
        links, pages = check_built_book(args.profile)
        if links.broken or links.external_resources or not all(p.ok for p in pages):
            raise CliError("the built book failed its checks (see above)")
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
    p.add_argument("--check", action="store_true",
                   help="then check it as a reader would: internal links offline, and the index and two "
                        "chapters in headless Chromium (images, a glued number, console errors), saving "
                        "screenshots in book/_build/screenshots/")
    p.set_defaults(func=cmd_book)


# --- gqa profile --------------------------------------------------------------------------------


def cmd_profile(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from gqa import profiling

    raw = _profile_section(args.profile, "attention_profile")
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


# --- gqa data / train / sweep ----------------------------------------------------------------------


def cmd_data(args: argparse.Namespace) -> int:
    from gqa import data

    spec = data.DataSpec(args.corpus, args.vocab_size, args.val_percent, args.max_bytes)
    prepared = data.prepare(spec, rebuild=args.rebuild)
    for split, info in prepared.meta["splits"].items():
        print(f"{split:5} {info['tokens']:>12,} tokens  {info['documents']:>6,} documents")
    print(f"vocabulary {prepared.vocab_size:,} (EOS id {prepared.eos_id}); cached in {prepared.directory}")
    return 0


def _add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="prepare a corpus: tokenizer and cached token streams")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION", parser_class=_Parser)
    prep = dsub.add_parser(
        "prepare", help="train the BPE tokenizer and cache train/validation token streams",
        description="Tokenize a corpus once (byte-level BPE trained on it) and cache the token ids "
                    "as fingerprinted memmaps under .cache/gqa-data (or $GQA_CACHE).")
    _add_data_args(prep)
    prep.add_argument("--rebuild", action="store_true", help="rebuild even if a valid cache exists")
    p.set_defaults(func=cmd_data)


def _add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--corpus", default="python-stdlib",
                   help="python-stdlib (default, offline), files:GLOB, or hf:NAME[:SPLIT] (needs datasets)")
    g.add_argument("--vocab-size", type=_positive_int, default=4096, help="BPE vocabulary size")
    g.add_argument("--val-percent", type=float, default=2.0, help="documents held out for validation")
    g.add_argument("--max-bytes", type=_positive_int, default=None, help="read at most this much text")


def cmd_train(args: argparse.Namespace) -> int:
    from gqa import runs
    from gqa.sweep import RUN_CACHE
    from gqa.train import TrainConfig, train

    if args.preset:
        base = get_preset(args.preset)
        shape = dict(layers=base.layers, d_model=base.d_model, n_heads=base.n_heads,
                     n_kv_heads=base.n_kv_heads, head_dim=base.head_dim)
    else:
        shape = {}
    for key, value in (("layers", args.layers), ("d_model", args.d_model), ("n_heads", args.heads),
                       ("n_kv_heads", args.kv_heads), ("head_dim", args.head_dim)):
        if value is not None:
            shape[key] = value
    if "n_heads" in shape and "n_kv_heads" not in shape:
        shape["n_kv_heads"] = shape["n_heads"]
    missing = [k for k in ("layers", "d_model", "n_heads") if k not in shape]
    if missing:
        raise CliError(f"give --preset NAME or an explicit shape; missing {', '.join(missing)}")
    cfg = TrainConfig(
        **shape, d_ff=args.ffn, corpus=args.corpus, vocab_size=args.vocab_size,
        val_percent=args.val_percent, max_bytes=args.max_bytes, context=args.context,
        batch_size=args.batch_size, tokens=args.tokens, tokens_per_param=args.tokens_per_param,
        lr=args.lr, seed=args.seed, attention=args.attention, device=args.device,
        eval_interval=args.eval_interval, eval_tokens=args.eval_tokens,
        checkpoint_every=args.checkpoint_every, log_every=args.log_every)
    out = Path(args.out) if args.out else RUN_CACHE / "train" / cfg.run_id()
    record_to = None if args.no_record else (Path(args.record) if args.record else runs.store_path("train"))
    train(cfg, out, resume=args.resume, record_to=record_to)
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train one model (the paper's recipe), resumable, recorded",
        description="Train one Llama-style GQA model: AdamW (0.9, 0.95, wd 0.1 on linear weights), "
                    "WSD schedule, clip 1.0, 20 tokens per non-embedding parameter by default. "
                    "Checkpoints every K steps; --resume continues a killed run exactly. Under "
                    "torchrun it trains with DDP. The finished run is appended to the run store.",
        epilog="example: gqa train --layers 2 --d-model 64 --heads 8 --kv-heads 2 --head-dim 16 "
               "--context 128 --batch-size 16 --max-bytes 2000000 --vocab-size 1024",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("model")
    g.add_argument("--preset", metavar="NAME", help="start from a preset shape")
    g.add_argument("--layers", type=_int)
    g.add_argument("--d-model", type=_int)
    g.add_argument("--heads", type=_int, help="query heads n_h")
    g.add_argument("--kv-heads", type=_int, help="KV heads n_kv (default n_h)")
    g.add_argument("--head-dim", type=_int, help="head dim d_h (default 64)")
    g.add_argument("--ffn", type=_int, default=None, help="SwiGLU width (default: the paper's rule)")
    _add_data_args(p)
    t = p.add_argument_group("training")
    t.add_argument("--context", type=_tokens, default=256, help="training context in tokens")
    t.add_argument("--batch-size", type=_positive_int, default=16, help="sequences per step (global)")
    t.add_argument("--tokens", type=_tokens, default=None, help="token budget (default: see next)")
    t.add_argument("--tokens-per-param", type=float, default=20.0,
                   help="budget as tokens per non-embedding parameter (default 20)")
    t.add_argument("--lr", type=float, default=1e-3, help="maximum learning rate")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--attention", default="sdpa", help="eager, sdpa, repeat or flash")
    t.add_argument("--device", default="cpu", help="cpu or cuda")
    t.add_argument("--eval-interval", type=int, default=0, help="steps between validation losses")
    t.add_argument("--eval-tokens", type=_positive_int, default=65_536)
    t.add_argument("--checkpoint-every", type=_positive_int, default=50, help="steps between checkpoints")
    t.add_argument("--log-every", type=_positive_int, default=10)
    o = p.add_argument_group("output")
    o.add_argument("--out", help="run folder (default .cache/runs/train/<run id>)")
    o.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    o.add_argument("--record", metavar="JSONL", help="run store (default data/runs/train.jsonl)")
    o.add_argument("--no-record", action="store_true", help="do not append a record")
    p.set_defaults(func=cmd_train)


def cmd_sweep(args: argparse.Namespace) -> int:
    from gqa.sweep import run_sweep, sweep_configs

    section = _profile_section(args.profile, "sweep")
    if args.dry_run:
        from gqa import runs

        done = runs.recorded_ids(runs.store_path(args.profile))
        for cfg in sweep_configs(section):
            mark = "done" if cfg.run_id() in done else "todo"
            print(f"{mark}  {cfg.run_id()}  H=({cfg.n_heads},{cfg.n_kv_heads}) L={cfg.layers} "
                  f"d={cfg.d_model} d_h={cfg.head_dim}")
        return 0
    run_sweep(args.profile, section, limit=args.limit)
    return 0


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="train every (head configuration, size) of a profile not yet recorded",
        description="Train the profile's sweep: every head configuration at every size. Runs "
                    "already in data/runs/<profile>.jsonl are skipped and an interrupted run "
                    "resumes from its checkpoint, so the sweep can be stopped and restarted.")
    p.add_argument("--profile", default="cpu", help="notebooks/params/<profile>.yaml")
    p.add_argument("--limit", type=_positive_int, help="train at most this many runs now")
    p.add_argument("--dry-run", action="store_true", help="list the runs and whether they are done")
    p.set_defaults(func=cmd_sweep)


# --- gqa bench --------------------------------------------------------------------------------------


def cmd_bench(args: argparse.Namespace) -> int:
    from gqa.benchmarks import training_throughput
    from gqa.sweep import sweep_configs

    configs = sweep_configs(_profile_section(args.profile, "sweep"))
    cfg = max(configs, key=lambda c: (c.layers * c.d_model, c.n_heads + c.n_kv_heads))
    if args.context:
        from dataclasses import replace as dc_replace

        cfg = dc_replace(cfg, context=args.context)
    r = training_throughput(cfg, cfg.vocab_size, steps=args.steps)
    print(f"training throughput, profile {args.profile}: {r['shape']}, context {r['context']}, "
          f"batch {r['batch']}, {r['threads']} threads, {r['tokens']:,} tokens timed")
    rows = [(f"gqa train step ({cfg.attention})", f"{r['gqa_tokens_per_s']:,.0f} tok/s"),
            ("plain transformers loop (eager)", f"{r['plain_eager_tokens_per_s']:,.0f} tok/s"),
            ("ratio", f"{r['ratio']:.2f}x")]
    for label, value in rows:
        print(f"  {label:34}{value:>16}")
    return 0


def cmd_bench_fit(args: argparse.Namespace) -> int:
    from gqa.benchmarks import fitting_speed

    r = fitting_speed(resamples=args.resamples)
    print("fitting and search speed (synthetic runs, 21 head configurations x 8 sizes):")
    for key, value in r.items():
        print(f"  {key:28}{value:>10.2f} s")
    return 0


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks that print figures")
    bsub = p.add_subparsers(dest="bench_command", required=True, metavar="BENCHMARK", parser_class=_Parser)
    t = bsub.add_parser(
        "train", help="tokens/s of gqa's training step vs a plain transformers eager loop",
        description="Time gqa's training step against a plain loop over transformers' "
                    "LlamaForCausalLM with eager attention: same shape (the profile's largest sweep "
                    "run), same batches, same device.")
    t.add_argument("--profile", default="cpu")
    t.add_argument("--steps", type=_positive_int, default=20, help="timed steps (after 3 warm-up)")
    t.add_argument("--context", type=_tokens, help="override the profile's training context")
    t.set_defaults(func=cmd_bench)
    f = bsub.add_parser("fit", help="seconds to fit + bootstrap 21 configurations, fill the Table-4 "
                                    "grid, and run gqa plan",
                        description="Time the fitting and search path on synthetic runs: 21 head "
                                    "configurations x 1,000 bootstrap resamples, an 8 x 5 grid of "
                                    "(target loss, context), and a whole `gqa plan` process.")
    f.add_argument("--resamples", type=_positive_int, default=1000)
    f.set_defaults(func=cmd_bench_fit)


# --- gqa fit / plan ---------------------------------------------------------------------------------


def _heads_pair(text: str) -> tuple[int, int]:
    try:
        n_h, n_kv = (int(x) for x in text.replace(" ", "").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid head configuration {text!r}: use N_H,N_KV like 32,8") from None
    from gqa.shapes import check_heads

    try:
        check_heads(n_h, n_kv)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return n_h, n_kv


def _shape_pair(text: str) -> tuple[int, int]:
    try:
        layers, d_model = (int(x) for x in text.replace(" ", "").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid shape {text!r}: use LAYERS,D_MODEL like 36,1536") from None
    if layers < 1 or d_model < 1:
        raise argparse.ArgumentTypeError(f"layers and d_model must be positive, got {text!r}")
    return layers, d_model


def _fit_source(args: argparse.Namespace):
    from gqa import search

    if args.runs and args.fits:
        raise CliError("give --runs or --fits, not both")
    if args.fits:
        return search.source_from_json(args.fits)
    if args.runs:
        path = Path(args.runs)
        if not path.exists():
            raise CliError(f"no run records at {path}: run `gqa sweep --profile cpu` or pass --fits")
        return search.source_from_records(path, resamples=args.resamples, seed=args.seed)
    from gqa import fig2

    source = fig2.source(resamples=args.resamples, seed=args.seed)
    source.description = f"default: {source.description}"
    return source


def cmd_fit(args: argparse.Namespace) -> int:
    source = _fit_source(args)
    report = source.to_json()
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
        print(f"wrote {len(source.fits)} fits to {args.out}")
    else:
        print(text)
    return 0


def _plan_baseline(args: argparse.Namespace, source) -> tuple[object, str]:
    """The baseline to compare with: an exact shape if given, else its fit; the paper's Figure 1
    baseline for (32, 8) when the paper's fits (which lack it) are the source."""
    from gqa import fig2
    from gqa.shapes import Shape

    heads = tuple(args.baseline)
    setting = source.setting
    if args.baseline_shape:
        layers, d_model = args.baseline_shape
        shape = Shape(layers, d_model, *heads, head_dim=setting.head_dim, vocab=setting.vocab)
        return shape, f"{heads} with L = {layers}, d = {d_model}, taken to reach the target loss"
    if heads in source.fits:
        return heads, f"{heads} sized by its own fit to reach the target loss"
    if heads == fig2.BASELINE.heads and setting == fig2.FIG2_SETTING:
        return fig2.BASELINE, (f"the paper's Figure 1 baseline {heads} at 1.2B (L = {fig2.BASELINE.layers}, "
                               f"d = {fig2.BASELINE.d_model}), which the paper reports at loss 2.615; "
                               "Figure 2 has no fit for it")
    raise CliError(f"no fit for the baseline H = {heads} in {source.description}; "
                   "give its size with --baseline-shape L,D")


def cmd_plan(args: argparse.Namespace) -> int:
    from gqa import search
    from gqa.shapes import shape_for_params

    if args.baseline_shape and not args.baseline:
        raise CliError("--baseline-shape needs --baseline N_H,N_KV")
    source = _fit_source(args)
    ranked = search.search(source.fits, args.target_loss, args.context, source.setting)
    best = ranked[0]
    setting = source.setting
    buildable = shape_for_params(best.params, *best.heads, head_dim=setting.head_dim, vocab=setting.vocab,
                                 anchors=setting.anchors)
    flops_unit = "per token" if setting.flops_per == "token" else "per sequence of T tokens"
    report = {"source": source.description, "context": args.context, "target_loss": args.target_loss,
              "recommended": {"n_heads": best.heads[0], "n_kv_heads": best.heads[1]},
              "params_non_embedding": best.params,
              "shape": {"layers": best.layers, "d_model": best.d_model, "head_dim": setting.head_dim,
                        "vocab": setting.vocab, "nearest_buildable": buildable.to_dict()},
              "cost_setting": {"params_in_cost": setting.params, "flops": flops_unit,
                               "z_on": f"memory in {setting.z_memory}", "dtype": setting.dtype},
              "memory_values": best.memory, "memory_bytes": best.memory_bytes, "flops": best.flops,
              "z": best.z, "ranking": [c.to_dict() for c in ranked]}
    if args.baseline:
        baseline, how = _plan_baseline(args, source)
        report["baseline"] = {"how": how, **search.compare(source.fits, args.target_loss, args.context, baseline,
                                                           setting).to_dict()}
    report["confidence"] = (search.confidence(source.boot, args.target_loss, args.context, setting)
                            if source.boot is not None else None)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"fits: {report['source']}")
    print(f"target loss {args.target_loss} at context {format_tokens(args.context)}: "
          f"use (n_h, n_kv) = {best.heads} with N* = {best.params:,.0f} non-embedding parameters")
    print(f"  shape: L = {best.layers:.2f}, d = {best.d_model:.1f} (nearest buildable: {buildable.describe()})")
    print(f"  memory {format_bytes(best.memory_bytes)} ({setting.dtype}), {format_count(best.flops)} FLOPs "
          f"{flops_unit}, Z = {best.z:,.1f}")
    if args.baseline:
        b = report["baseline"]
        print(f"  vs baseline: {b['how']}")
        print(f"    at the same loss: memory {-100 * b['memory_saving']:+.1f}%, FLOPs {-100 * b['flops_saving']:+.1f}%;"
              f" at equal Z the optimum reaches loss {b['loss_at_equal_z']:.3f} ({b['loss_gain']:+.3f})")
    if report["confidence"]:
        shares = ", ".join(f"({k}) {100 * v:.0f}%" for k, v in list(report["confidence"].items())[:4])
        print(f"  optimal in bootstrap resamples: {shares}")
    print("  all candidates by Z: " + ", ".join(f"{c.heads} {c.z:,.0f}" for c in ranked[:8]))
    return 0


def _add_fit_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", metavar="JSONL", help="run records to fit, e.g. data/runs/cpu.jsonl (default: the "
                                                  "paper's digitised Figure 2 points)")
    p.add_argument("--fits", metavar="JSON", help="fitted laws written by `gqa fit` instead of runs")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (0: none)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")


def _add_fit_plan(sub: argparse._SubParsersAction) -> None:
    f = sub.add_parser("fit", help="fit L(N; H) = (a/N)^b + E per head configuration from run records",
                       description="Fit the loss law per head configuration (Huber on log residuals, "
                                   "as in Epoch AI's Chinchilla replication) with bootstrap intervals.")
    _add_fit_source_args(f)
    f.add_argument("--out", metavar="JSON", help="write the fits here (default: print)")
    f.set_defaults(func=cmd_fit)
    p = sub.add_parser(
        "plan", help="the cost-optimal head configuration and size for a target loss and context",
        description="Step 3 of the paper: for each fitted head configuration, the size N* that reaches\n"
                    "the target loss, its shape, and its inference cost at the context; the configuration\n"
                    "with the smallest Z (Eq. 5) wins. Without --runs or --fits, the fits come from the\n"
                    "models of the paper's Figure 2 (data/paper/fig2_points.csv), costed as that figure\n"
                    "counts them (N without embeddings, FLOPs per sequence of T tokens, Z on bytes).",
        epilog="examples: gqa plan --context 128k --target-loss 2.615 --baseline 32,8  (the paper's fits)\n"
               "          gqa plan --runs data/runs/cpu.jsonl --context 8k --target-loss 3.0 --baseline 8,8",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--context", "-T", type=_tokens, required=True, help="expected context (128k = 131072)")
    p.add_argument("--target-loss", type=float, required=True, help="target loss L* (nats/token)")
    p.add_argument("--baseline", type=_heads_pair, help="compare with this H, e.g. 32,8")
    p.add_argument("--baseline-shape", type=_shape_pair, metavar="L,D",
                   help="the baseline's layers and hidden size, when its H has no fit (a model you run)")
    _add_fit_source_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_plan)


# --- gqa digitise -------------------------------------------------------------------------------


def cmd_digitise(args: argparse.Namespace) -> int:
    from gqa import digitise

    result = digitise.digitise(args.image)
    print(result.report())
    if args.out:
        csv_path, meta = digitise.write(result, args.image, args.out)
        print(f"wrote {len(result.points)} points to {csv_path} and provenance to {meta}")
    return 0


def _add_digitise(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "digitise", help="recover the plotted points of the paper's Figure 2 from its image",
        description="Calibrate each panel's axes from its tick marks, find the markers of each series "
                    "by legend colour, match them across panels by loss, and print the calibration "
                    "residuals and the points per series and panel.",
        epilog="example: gqa digitise ../shared/paper/fig2.png --out data/paper/fig2_points.csv")
    p.add_argument("image", help="Figure 2 as PNG (fig2.png in the paper's repository)")
    p.add_argument("--out", metavar="CSV", help="write the points here, with provenance in a .json beside it")
    p.set_defaults(func=cmd_digitise)


# --- entry point --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gqa",
        description="Cost-optimal grouped-query attention: cost, profile, train, fit and plan.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    _add_cost(sub)
    _add_profile(sub)
    _add_data(sub)
    _add_train(sub)
    _add_sweep(sub)
    _add_fit_plan(sub)
    _add_bench(sub)
    _add_digitise(sub)
    _add_book(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    if hasattr(signal, "SIGPIPE"):  # `gqa ... | head` ends quietly
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CliError, ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"gqa {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
