"""`gqa fit` and `gqa plan`: the paper's Steps 2 and 3 from run records, fits, or Figure 2."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gqa.cli._common import CliError, _heads_pair, _shape_pair, _tokens
from gqa.units import format_bytes, format_count, format_tokens


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


def add_fit_plan(sub: argparse._SubParsersAction) -> None:
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
