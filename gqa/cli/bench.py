"""`gqa bench`: benchmarks that print figures."""

from __future__ import annotations

import argparse

from gqa.cli._common import _Parser, _positive_int, _positive_tokens, _profile_section


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
    t.set_defaults(func=cmd_bench)
    f = bsub.add_parser("fit", help="seconds to fit + bootstrap 21 configurations, fill the Table-4 "
                                    "grid, and run gqa plan",
                        description="Time the fitting and search path on synthetic runs: 21 head "
                                    "configurations x 1,000 bootstrap resamples, an 8 x 5 grid of "
                                    "(target loss, context), and a whole `gqa plan` process.")
    f.add_argument("--resamples", type=_positive_int, default=1000)
    f.set_defaults(func=cmd_bench_fit)
