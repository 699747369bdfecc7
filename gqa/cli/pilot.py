"""`gqa pilot`: a study's pilot, read from its run records: the seed spread against the head-count effect."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from gqa.cli._common import CliError


def cmd_pilot(args: argparse.Namespace) -> int:
    from gqa.pilot import analyse, recorded

    records, planned = recorded(args.profile)
    if not args.partial and len(records) < planned:
        raise CliError(f"{planned - len(records)} of the {planned} runs of {args.profile}'s sweep are not recorded "
                       f"in data/runs/: run `gqa sweep --profile {args.profile}` (or analyse what is there: --partial)")
    try:
        result = analyse(records)
    except ValueError as e:
        raise CliError(f"{args.profile}: {e} ({len(records)} of {planned} runs recorded)") from None
    if args.json:
        print(json.dumps({**asdict(result), "ratio": result.ratio, "runs": len(records), "planned": planned,
                          "configurations": [{**asdict(c), "mean": c.mean, "spread": c.spread}
                                             for c in result.configurations]}, indent=2))
        return 0
    layers, d = result.size
    print(f"pilot of {args.profile}: L={layers}, d={d}, {len(records)} of {planned} runs recorded")
    print(f"{'(n_h, n_kv)':>12}  {'N non-emb.':>10}  {'seeds':>5}  {'mean loss':>9}  {'seed SD':>7}  losses")
    for c in result.configurations:
        print(f"{str(c.heads):>12}  {c.non_embedding:>10,}  {len(c.losses):>5}  {c.mean:>9.4f}  {c.spread:>7.4f}  "
              + ", ".join(f"{x:.4f}" for x in c.losses))
    print(f"effect (fewest minus most KV heads) {result.effect:+.4f} nats, standard error {result.standard_error:.4f}"
          f" ({result.ratio:.1f} SE); pooled seed SD {result.pooled_sd:.4f} nats")
    print(("GO: " if result.go else "NO-GO: ") + result.reason)
    return 0


def add_pilot(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pilot", help="a study's pilot: is the head-count effect larger than the seed spread?",
                       description="Read the runs of a pilot profile's sweep (one backbone, several head "
                                   "configurations and seeds) and state the go/no-go decision: GO when the loss "
                                   "difference between the fewest and the most KV heads is at least 3 standard "
                                   "errors of the seed noise and the loss rises at every halving of the KV heads.")
    p.add_argument("--profile", default="study-pilot", help="a pilot profile (default study-pilot)")
    p.add_argument("--partial", action="store_true", help="analyse the runs recorded so far (a sweep under way)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_pilot)
