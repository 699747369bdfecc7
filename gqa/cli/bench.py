"""`gqa bench`: benchmarks that print figures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gqa.cli._common import (
    CliError,
    _finite_float,
    _heads_pair,
    _Parser,
    _positive_int,
    _positive_tokens,
    _profile_section,
    check_output,
)
from gqa.units import format_tokens


def _bench_options(args: argparse.Namespace, cfg) -> int:
    import torch

    from gqa.benchmarks import training_options

    rows = training_options(cfg, cfg.vocab_size, steps=args.steps)
    print(f"training-step options, profile {args.profile}: {cfg.label()}, context {cfg.context}, batch "
          f"{cfg.batch_size}, {torch.get_num_threads()} threads (ratios to the first, measured in this run)")
    for r in rows:
        print(f"  {r['option']:22}{r['tokens_per_s']:>12,.0f} tok/s{r['ratio']:>8.2f}x   mean loss "
              f"{r['mean_loss']:.4f} ({r['loss_difference']:+.4f})")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from gqa.benchmarks import training_throughput
    from gqa.config import sweep_configs

    configs = sweep_configs(_profile_section(args.profile, "sweep"))
    cfg = max(configs, key=lambda c: (c.layers * c.d_model, c.n_heads + c.n_kv_heads))
    if args.context:
        from dataclasses import replace as dc_replace

        cfg = dc_replace(cfg, context=args.context)
    if args.options:
        return _bench_options(args, cfg)
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
    print("fitting and search speed (synthetic runs, 21 head configurations x 8 sizes; *_figure2_*: whole "
          "processes on the paper's Figure 2 fits):")
    for key, value in r.items():
        print(f"  {key:28}{value:>10.2f} s")
    return 0


def _write_report(out: Path, report: dict) -> None:
    """A benchmark's record as JSON, written atomically (a temporary file renamed into place)."""
    import json

    from gqa.paths import display_path, write_text_atomic

    write_text_atomic(out, json.dumps(report, indent=1) + "\n")
    print(f"wrote {display_path(out)}", file=sys.stderr)


MAX_LOSS_GAP = 0.02  # nats: the two models' fitted losses may differ by at most this


def cmd_bench_decode(args: argparse.Namespace) -> int:
    """Decode throughput of the optimum against the baseline at equal loss, beside the cost model's ratio."""
    import json
    import statistics

    from gqa import profiles, search, sources
    from gqa.benchmarks import decode_throughput
    from gqa.machine import last_level_cache_bytes, read_bandwidth
    from gqa.runs import study_records
    from gqa.shapes import shapes_at_loss

    records, stores = study_records(profiles.load(args.profile).section("sweep"), args.profile)
    source = sources.source_from_records(records, resamples=0, label=stores)
    target = args.target_loss if args.target_loss is not None else statistics.median(r["val_loss"] for r in records)
    setting = search.CostSetting(head_dim=source.setting.head_dim, vocab=source.setting.vocab, dtype="fp32",
                                 anchors=source.setting.anchors)
    search.check_target(source.fits, target)
    cmp = search.compare(source.fits, target, args.context, tuple(args.baseline), setting)
    rows = {}
    shapes = {}
    for label, c in (("optimum", cmp.optimum), ("baseline", cmp.baseline)):
        law = source.fits[c.heads]
        shape = shapes[label] = shapes_at_loss(law.predict, target, *c.heads, head_dim=setting.head_dim,
                                               vocab=setting.vocab, anchors=setting.anchors)
        exact = search.cost_of_shape(shape, args.context, setting)
        rows[label] = {"heads": list(c.heads), "params_non_embedding": shape.params().non_embedding,
                       "params_star": c.params, "fitted_loss": float(law.predict(shape.params().non_embedding)),
                       "extrapolation": law.extrapolation(shape.params().non_embedding),
                       "layers": shape.layers, "d_model": shape.d_model,
                       "memory_bytes": exact.memory_bytes, "flops_per_token": exact.flops}
    gap = abs(rows["optimum"]["fitted_loss"] - rows["baseline"]["fitted_loss"])
    if gap > MAX_LOSS_GAP:
        raise ValueError(f"no buildable shapes within {MAX_LOSS_GAP} nat of each other at loss {target:.3f}: "
                         f"the fitted losses differ by {gap:.3f}")
    for label, row in rows.items():
        row.update(decode_throughput(shapes[label], args.context, steps=args.steps, backend=args.attention,
                                     device=args.device))
    opt, base = rows["optimum"], rows["baseline"]
    read = read_bandwidth(args.device)  # the floor: each step reads the weights and the KV cache once
    for row in rows.values():
        row["floor_share"] = (row["weights_bytes"] + row["kv_cache_bytes"]) / read / (row["step_ms_median"] / 1e3)
    report = {"fits": source.description, "target_loss": target, "context": args.context, "rows": rows,
              "loss_gap": gap, "read_bandwidth_gb_s": read / 1e9, "llc_bytes": last_level_cache_bytes(args.device),
              "measured_throughput_ratio": opt["tokens_per_s"] / base["tokens_per_s"],
              "predicted_by_memory": base["memory_bytes"] / opt["memory_bytes"],
              "predicted_by_flops": base["flops_per_token"] / opt["flops_per_token"],
              # KV bytes per token are 2·L·n_kv·d_h: their ratio is the KV heads' ratio (what GQA gives)
              # times the depths' ratio (what the two shapes give)
              "kv_ratio": base["kv_cache_bytes"] / opt["kv_cache_bytes"],
              "kv_ratio_from_heads": base["heads"][1] / opt["heads"][1],
              "kv_ratio_from_depth": base["layers"] / opt["layers"]}
    if args.out:  # a record for the book: where, when and how it was measured
        import platform
        import time

        import torch

        from gqa.machine import device_name

        report.update({"date": time.strftime("%Y-%m-%d"), "machine": platform.node(), "device": args.device,
                       "device_name": device_name(args.device), "torch": torch.__version__,
                       "profile": args.profile, "steps": args.steps, "attention": args.attention})
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        _write_report(out, report)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"decode at T = {format_tokens(args.context)}, loss {target:.3f} (fits: {source.description}), "
          f"{opt['threads']} threads, batch 1, fp32, {args.steps} steps after a {format_tokens(args.context)} prefill")
    for label, r in rows.items():
        print(f"  {label:9} ({r['heads'][0]}, {r['heads'][1]})  {r['shape']}, fitted loss {r['fitted_loss']:.3f}")
        print(f"            {r['tokens_per_s']:9.1f} tok/s (step {r['step_ms_median']:.2f} ms, 10-90% "
              f"{r['step_ms_p10']:.2f}-{r['step_ms_p90']:.2f})   {100 * r['floor_share']:.0f}% of the read floor   "
              f"memory {r['memory_bytes'] / 1e6:8.2f} MB   {r['flops_per_token'] / 1e6:8.2f} MFLOPs/token   "
              f"prefill {r['prefill_s']:.1f} s")
    print(f"  KV cache ratio {report['kv_ratio']:.1f}x = {report['kv_ratio_from_heads']:.1f}x from the KV heads "
          f"(GQA) x {report['kv_ratio_from_depth']:.2f}x from the depths")
    print(f"  throughput ratio optimum / baseline: measured {report['measured_throughput_ratio']:.2f}x; the cost "
          f"model predicts {report['predicted_by_memory']:.2f}x from memory (M), {report['predicted_by_flops']:.2f}x "
          "from FLOPs (C)")
    return 0


def cmd_bench_repeat(args: argparse.Namespace) -> int:
    """repeat against sdpa decode, under glibc's default allocator and with the heap only."""
    import time

    import torch

    from gqa import profiling
    from gqa.machine import device_name

    cfg = profiling.SweepConfig.from_dict(_profile_section(args.profile, "attention_profile"))
    out = Path(args.out) if args.out else profiling.allocator_path(cfg.device, args.profile)
    if not out.parent.is_dir():
        raise ValueError(f"--out {args.out}: folder {out.parent} does not exist")
    rows = profiling.repeat_allocator_rows(cfg, log=lambda msg: print(msg, file=sys.stderr))
    report = {"date": time.strftime("%Y-%m-%d"), "device": cfg.device, "device_name": device_name(cfg.device),
              "torch": torch.__version__, "threads": torch.get_num_threads(), "dtype": cfg.dtype,
              "n_heads": cfg.n_heads, "head_dim": cfg.head_dim, "batch": cfg.batch, "profile": args.profile,
              "rows": rows}
    _write_report(out, report)
    ratios = profiling.repeat_ratios(rows)
    print(f"repeat / sdpa decode time, {cfg.dtype}, n_h = {cfg.n_heads}, d_h = {cfg.head_dim}, "
          f"{torch.get_num_threads()} threads ({device_name(cfg.device)})")
    print(f"  {'n_kv':>4} {'T':>7} {'glibc default':>14} {'heap only':>10}")
    for r in ratios:
        print(f"  {r['n_kv']:>4} {format_tokens(r['context']):>7} {r['glibc default']:>13.2f}x {r['heap only']:>9.2f}x")
    return 0


def cmd_bench_real(args: argparse.Namespace) -> int:
    import tempfile

    import torch

    from gqa import real_models
    from gqa.machine import describe, device_slug
    from gqa.paths import PROFILES_DATA_DIR

    unknown = [m for m in args.models if m not in real_models.MODELS]
    if unknown:
        raise CliError(f"--models: unknown {', '.join(unknown)}; known: {', '.join(real_models.MODELS)}")
    out = Path(args.out) if args.out else PROFILES_DATA_DIR / f"real_models_{device_slug('cpu')}.csv"
    check_output(out)
    bandwidth = real_models.read_bandwidth()
    print(f"read bandwidth {bandwidth / 1e9:.1f} GB/s; {torch.get_num_threads()} threads; bf16 weights and cache")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name in args.models:
            rows += real_models.measure(name, args.contexts, decode_steps=args.steps, work=Path(work),
                                        bandwidth=bandwidth)
    real_models.write_csv(rows, out, {**describe(), "threads": torch.get_num_threads(),
                                      "command": "gqa bench real " + " ".join(args.models)})
    print(f"wrote {out}")
    return 0


def add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks that print figures")
    bsub = p.add_subparsers(dest="bench_command", required=True, metavar="BENCHMARK", parser_class=_Parser)
    t = bsub.add_parser(
        "train", help="tokens/s of gqa's training step vs a plain transformers eager loop",
        description="Time gqa's training step against a plain loop over transformers' "
                    "LlamaForCausalLM with eager attention: same shape (the profile's largest sweep "
                    "run), same batches, same device.")
    t.add_argument("--profile", default="cpu")
    t.add_argument("--steps", type=_positive_int, default=20, help="timed steps (after 3 warm-up)")
    t.add_argument("--context", type=_positive_tokens, help="override the profile's training context")
    t.add_argument("--options", action="store_true", help="instead, gqa's step under each option (fp32 with fused "
                   "or foreach AdamW, bf16 autocast, torch.compile) as ratios to what gqa train runs")
    t.set_defaults(func=cmd_bench)
    f = bsub.add_parser("fit", help="seconds to fit + bootstrap 21 configurations, fill the Table-4 "
                                    "grid, and run gqa plan",
                        description="Time the fitting and search path on synthetic runs: 21 head "
                                    "configurations x 1,000 bootstrap resamples, an 8 x 5 grid of "
                                    "(target loss, context), and a whole `gqa plan` process.")
    f.add_argument("--resamples", type=_positive_int, default=1000)
    f.set_defaults(func=cmd_bench_fit)
    d = bsub.add_parser(
        "decode", help="decode tokens/s of the cost-optimal configuration vs a baseline at equal loss",
        description="Step 3 on a profile's recorded study picks the optimum; the optimum and the baseline are "
                    "each built at the buildable shape (whole layers, any width, the paper's FFN rule) whose "
                    "fitted loss is closest to the target, searching depth and width together, and the command "
                    "refuses when the two fitted losses differ by more than 0.02 nat. Both get random weights, "
                    "are prefilled to the context and decode with their KV cache. Prints tokens/s (from the "
                    "median step), the step-time spread, the share of the read floor, the KV-cache ratio split "
                    "into the KV heads' part and the depths' part, and the measured throughput ratio beside the "
                    "ratio the cost model predicts from memory (Eq. 4) and from FLOPs (Eq. 3).")
    d.add_argument("--profile", default="cpu", help="whose recorded sweep to fit (default cpu)")
    d.add_argument("--context", type=_positive_tokens, default=32768, help="prefilled context (default 32k)")
    d.add_argument("--target-loss", type=_finite_float, help="the equal loss (default: the study's median)")
    d.add_argument("--baseline", type=_heads_pair, default=(8, 8), help="the baseline H (default 8,8)")
    d.add_argument("--steps", type=_positive_int, default=64, help="timed decode steps (after 4 warm-up)")
    d.add_argument("--attention", default="sdpa", help="attention backend (default sdpa)")
    d.add_argument("--device", default="cpu", help="cpu or cuda[:i] (default cpu)")
    d.add_argument("--json", action="store_true", help="print one JSON object")
    d.add_argument("--out", metavar="JSON", help="also write the report, with the machine and date, to this file "
                                                 "(the book reads data/profiles/decode_<device>_<profile>.json)")
    d.set_defaults(func=cmd_bench_decode)
    real = bsub.add_parser("real", help="real architectures (random weights from published configs) measured on "
                                        "this CPU beside gqa cost's predictions",
                           description="Build Qwen3-0.6B, Llama-3.2-1B and Gemma-3-1B (sliding windows) from their "
                                       "published configurations with random weights (no download), prefill and "
                                       "decode at each context, and record the cache bytes, the peak memory and "
                                       "the decode tokens/s beside what gqa cost predicts, in "
                                       "data/profiles/real_models_<machine>.csv.")
    real.add_argument("--models", nargs="+", default=["qwen3-0.6b", "llama-3.2-1b", "gemma-3-1b"])
    real.add_argument("--contexts", nargs="+", type=_positive_tokens, default=[1024, 2048, 4096, 8192, 16384])
    real.add_argument("--steps", type=_positive_int, default=4, help="timed decode steps per context")
    real.add_argument("--out", help="CSV path (default data/profiles/real_models_<machine>.csv)")
    real.set_defaults(func=cmd_bench_real)
    r = bsub.add_parser(
        "repeat", help="repeat vs sdpa decode time, with and without glibc's mmap of large blocks",
        description="Time one decode step of `repeat` (K/V repeated to n_h heads, as the paper's official "
                    "code does) and `sdpa` (native GQA) at the profile's attention sweep settings, cold, under "
                    "glibc's default allocator and with every allocation served from a heap that keeps freed "
                    "pages. By default a block above 32 MiB is mapped afresh on every step and its page faults "
                    "are paid each time: that part of repeat's cost is the allocator's. Writes "
                    "data/profiles/allocator_<device>_<profile>.json (chapter 2 reads it).")
    r.add_argument("--profile", default="cpu", help="whose attention_profile settings to use (default cpu)")
    r.add_argument("--out", metavar="JSON",
                   help="where to write (default data/profiles/allocator_<device>_<profile>.json)")
    r.set_defaults(func=cmd_bench_repeat)
