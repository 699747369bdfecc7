"""`gqa readings`: every verdict about the paper under every reading the paper allows."""

from __future__ import annotations

import argparse
import json
import sys

from gqa.cli._common import _positive_int


def _value(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, int):  # counts (Table 4's cells)
        return str(v)
    return f"{v:.3f}" if abs(v) < 100 else f"{v:,.0f}"


def cmd_readings(args: argparse.Namespace) -> int:
    from gqa import readings

    grid = readings.load_grid(args.grid)
    n = len(grid.readings())

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty() or args.progress:
            print(f"\rgqa readings: {done}/{total} (fits x costings) evaluated", end="" if done < total else "\n",
                  file=sys.stderr, flush=True)

    report = readings.evaluate(grid, resamples=args.resamples, seed=args.seed, cache=not args.no_cache,
                               progress=progress)
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=1 if args.indent else None)
        print()
        return 0
    print(f"A sensitivity analysis over {n} readings of the paper "
          f"({', '.join(f'{len(o)} {p}' for p, o in grid.points.items())}), from {report.grid}. "
          f"Resample shares are over {args.resamples} bootstrap resamples of Figure 2's points, conditional on the "
          "reading named (it is chosen, not resampled).")
    print(f"default reading: {readings.reading_id(grid.default)}\n")
    header = f"{'claim':<38} {'paper':>7} {'tol':>11} {'default':>8} {'range over readings':>20}  reproduced in"
    print(header)
    print("-" * len(header))
    for v in report.verdicts:
        span = readings.range_text(v, _value)
        print(f"{v.label[:38]:<38} {_value(v.paper):>7} {v.tolerance[:11]:>11} "
              f"{_value(v.default_value):>8} {span:>20}  {v.reproduced_in}/{v.readings} ({v.verdict})")
    print("\nclaims that hang together, judged under one reading at once:")
    for j in report.joint:
        print(f"  {j.label:<44} {j.reproduced_in}/{j.readings} ({j.verdict})")
        for point, keys in readings.shared_options(report, j.which).items():
            print(f"      all of them take {point}: {', '.join(keys)}")
    print("\nclosest reading for each claim not reproduced under every reading, chosen claim by claim (these "
          "readings can contradict each other; the joint rows above do not):")
    for v in report.verdicts:
        if v.verdict == "every reading":
            continue
        changes = "; ".join(f"{p}: {label}" for p, label in v.closest_changes.items()) or "the default reading"
        share = ("" if v.closest_fragility is None else
                 f" (reproduces in {100 * v.closest_fragility:.0f}% of resamples under that reading)")
        print(f"  {v.label}: {_value(v.closest_value)} under {changes}{share}")
    return 0


def add_readings(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "readings", help="check every claim about the paper under every reading the paper allows",
        description="Evaluate each claim of data/paper/claims.csv that depends on how the paper is read "
                    "(E shared or not, fit objective, size-to-shape rule, the Llama-3-style baseline, cost "
                    "accounting; declared with their sources in data/paper/readings.yaml) under every "
                    "combination, on the fits of the digitised Figure 2, with bootstrap fragility (the share "
                    "of resamples that reproduce). Prints a verdict per claim: reproduced under every "
                    "reading, some, or none, and the closest reading. Results are cached in .cache/readings/.")
    p.add_argument("--json", action="store_true",
                   help="print the whole report as JSON: one object per reading (options, table4_agree, "
                        "table4_checkable, memory_saving, flops_saving, loss_gain, share_512k, claims) and the "
                        "verdicts")
    p.add_argument("--indent", action="store_true", help="indent the JSON")
    p.add_argument("--grid", metavar="FILE", help="a readings grid (default: data/paper/readings.yaml)")
    p.add_argument("--resamples", type=_positive_int, default=200, help="bootstrap resamples (default 200)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--no-cache", action="store_true", help="recompute even when a cached report exists")
    p.add_argument("--progress", action="store_true", help="print progress even when stderr is not a terminal")
    p.set_defaults(func=cmd_readings)
