"""`gqa effect`: does a designed study show the paper's effect? Its Table-4 grid and chapter 5's verdict."""

from __future__ import annotations

import argparse
import json

from gqa.cli._common import CliError, _positive_int, _positive_tokens, _profile_section


def cmd_effect(args: argparse.Namespace) -> int:
    from gqa import effect
    from gqa.units import format_tokens

    for name in (args.profile, args.pilot):  # a study and its pilot: each one a sweep
        _profile_section(name, "sweep")
    contexts = args.contexts or list(effect.CONTEXTS)
    if contexts != sorted(set(contexts)):
        raise CliError(f"--contexts must increase, got {', '.join(format_tokens(c) for c in contexts)}")
    study = effect.load(args.profile, args.pilot, resamples=args.resamples)
    said = effect.study_words(study, args.profile)
    verdict = None
    if study is not None:
        verdict = effect.assess(study.fits, study.boot, effect.default_targets(study.fits), contexts, study.setting,
                                study.boot_high)
    said |= effect.verdict_words(study, verdict, daggers=False)  # the table below marks inside rows, no daggers
    if args.json:
        print(json.dumps({"outcome": verdict.outcome if verdict else None,
                          "agreement": verdict.agreement if verdict else None,
                          "agreement_high": verdict.agreement_high if verdict else None,
                          "contexts": contexts,
                          "rows": [{"target": r.target, "inside": r.inside, "tests": r.tests, "move": r.move,
                                    "optima": [list(h) if h else None for h in r.optima]}
                                   for r in (verdict.rows if verdict else ())],
                          "words": said}, indent=2, ensure_ascii=False))
        return 0
    print(said["eff_progress"])
    if verdict is not None:
        print(f"\n{'L*':>6} " + "".join(f"{format_tokens(c):>7}" for c in contexts) + "   (* inside every "
              "configuration's losses)")
        for r in verdict.rows:
            print(f"{r.target:>6g}{'*' if r.inside else ' '}" + "".join(
                f"{(f'{h[0]},{h[1]}' if h else '-'):>7}" for h in r.optima) + f"   {r.move}")
    for key in ("eff_verdict", "eff_stability", "eff_why", "eff_beyond"):
        if said[key]:
            print("\n" + said[key])
    return 0


def add_effect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("effect", help="does a designed study show the paper's effect? (chapter 5's verdict)",
                       description="Fit a study's recorded runs, carry its pilot's seed noise into the fits, compute "
                                   "the cost-optimal (n_h, n_kv) over target losses and contexts, and say whether "
                                   "the optimum keeps fewer KV heads as the context grows, over the losses every "
                                   "configuration reached: shows, does not show, or cannot test, with its "
                                   "stability under seed noise.")
    p.add_argument("--profile", default="study", help="the study's profile (default study)")
    p.add_argument("--pilot", default="study-pilot", help="its pilot's profile, for the seed noise (default "
                                                          "study-pilot)")
    p.add_argument("--contexts", type=_positive_tokens, nargs="+", metavar="T",
                   help="contexts of the grid, increasing (e.g. 512 8K 128K; default 512 to 128K)")
    p.add_argument("--resamples", type=_positive_int, default=1000, help="seed-noise refits (default 1000)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_effect)
