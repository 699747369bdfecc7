"""`gqa fit` and `gqa plan`: the paper's Steps 2 and 3 from run records, fits, or Figure 2."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from gqa.cli._common import (
    CliError,
    _finite_float,
    _heads_pair,
    _non_negative_int,
    _positive_int,
    _positive_tokens,
    _shape_pair,
    check_output,
)
from gqa.search import CostSetting
from gqa.units import format_bytes, format_count, format_duration, format_tokens


def _fit_source(args: argparse.Namespace):
    from gqa import sources

    if args.runs and args.fits:
        raise CliError("give --runs or --fits, not both")
    if args.fits:
        return sources.source_from_json(args.fits)
    if args.runs:
        path = Path(args.runs)
        if not path.exists():
            raise CliError(f"no run records at {path}: run `gqa sweep --profile cpu` or pass --fits")
        return sources.source_from_records(path, resamples=args.resamples, seed=args.seed)
    source = sources.figure2(resamples=args.resamples, seed=args.seed)
    source.description = f"default: {source.description}"
    return source


def cmd_fit(args: argparse.Namespace) -> int:
    if args.out:
        check_output(args.out)
    source = _fit_source(args)
    report = source.to_json()
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
        print(f"wrote {len(source.fits)} fits to {args.out}")
    else:
        print(text)
    return 0


@dataclass
class Baseline:
    """What the optimum is compared with, and on what grounds its loss is known."""

    model: object  # a head configuration (sized by its fit) or an exact Shape
    how: str
    loss: float | None  # its known loss; None: assumed to be the target (said in the output)


def _plan_baseline(args: argparse.Namespace, source) -> Baseline:
    """The baseline: an exact shape (from --baseline-shape or --baseline-config) or a fitted H; the paper's
    Figure 1 baseline for (32, 8) when the paper's fits (which lack it) are the source."""
    from gqa import fig2, paper
    from gqa.shapes import Shape

    setting = source.setting
    given_loss = args.baseline_loss
    if args.baseline_config:
        from gqa.hf_config import shape_from_config

        shape, _ = shape_from_config(args.baseline_config)
        how = f"{shape.name} ({shape.describe()}, from {args.baseline_config})"
        differs = [f"{name} {mine} (the fits' {theirs})" for name, mine, theirs in
                   (("head dim", shape.head_dim, setting.head_dim), ("vocabulary", shape.vocab, setting.vocab))
                   if mine != theirs]
        if differs:
            how += ("; its " + " and ".join(differs)
                    + " differ from the fitted family's, so its costs are not like for like")
        return Baseline(shape, how, given_loss)
    heads = tuple(args.baseline)
    if args.baseline_shape:
        layers, d_model = args.baseline_shape
        shape = Shape(layers, d_model, *heads, head_dim=setting.head_dim, vocab=setting.vocab)
        loss, why = given_loss, "its measured loss (--baseline-loss)"
        if loss is None and heads in source.fits:
            n = shape.params().non_embedding
            loss = float(source.fits[heads].predict(n))
            factor = source.fits[heads].extrapolation(n)
            why = f"its fit's prediction at N = {n:,}" + (f", {factor:.1f}x outside the sizes the fit saw"
                                                          if factor > 1 else ", inside the sizes the fit saw")
        how = f"{heads} with L = {layers}, d = {d_model}" + (f", at loss {loss:.4g} from {why}" if loss else "")
        return Baseline(shape, how, loss)
    if heads in source.fits:
        if given_loss is not None:
            raise CliError("--baseline-loss goes with --baseline-shape or --baseline-config: a fitted baseline "
                           "is sized to reach the target")
        return Baseline(heads, f"{heads} sized by its own fit to reach the target loss", None)
    if heads == fig2.BASELINE.heads and setting == fig2.FIG2_SETTING:
        reported = paper.claims()["ref_loss_llama3_1b"].value
        return Baseline(fig2.BASELINE, f"the paper's Figure 1 baseline {heads} at 1.2B (L = {fig2.BASELINE.layers}, "
                                       f"d = {fig2.BASELINE.d_model}), at loss {reported:g} as the paper reports it; "
                                       "Figure 2 has no fit for it",
                        given_loss if given_loss is not None else reported)
    raise CliError(f"no fit for the baseline H = {heads} in {source.description}; "
                   "give its size with --baseline-shape L,D (and its loss with --baseline-loss)")


def _implausible_loss(baseline: Baseline, source, tolerance: float = 0.05) -> str | None:
    """A warning when a loss given for an exact baseline differs from what its configuration's fit predicts
    for its size by more than `tolerance` nats (a typo, another model family, or a model off the fitted law)."""
    from gqa.shapes import Shape

    model = baseline.model
    if not isinstance(model, Shape) or baseline.loss is None or model.heads not in source.fits:
        return None
    n = model.params().non_embedding
    predicted = float(source.fits[model.heads].predict(n))
    if abs(predicted - baseline.loss) <= tolerance:
        return None
    return (f"the fit of {model.heads} predicts loss {predicted:.3f} for this baseline's N = {format_count(n)}; the "
            f"loss given ({baseline.loss:g}) is {abs(predicted - baseline.loss):.3f} "
            f"{'lower' if baseline.loss < predicted else 'higher'}: check --baseline-loss, or the model is not of the "
            "fitted family")


def _restrict(source, wanted: list[tuple[int, int]] | None):
    """The candidates: every fitted configuration, or those of --candidates (each must have a fit)."""
    fitted = sorted(source.fits, key=lambda h: (-h[0], -h[1]))
    names = ", ".join(f"({a}, {b})" for a, b in fitted)
    if not wanted:
        return dict(source.fits), (f"the {len(fitted)} configurations with a fit in the source: {names}; "
                                   "configurations without a fit are not considered")
    missing = [h for h in wanted if h not in source.fits]
    if missing:
        raise CliError(f"--candidates {missing[0][0]},{missing[0][1]} has no fit in the source; fitted: {names}")
    chosen = {h: source.fits[h] for h in wanted}
    return chosen, f"the {len(chosen)} configurations named by --candidates, of the {len(fitted)} fitted"


def _extrapolation_note(label: str, factor: float, n: float, law) -> str | None:
    if factor is not None and math.isnan(factor):
        return (f"{label}: its fit does not say which sizes it saw, so whether N = {format_count(n)} "
                "extrapolates is unknown")
    if factor is None or not math.isfinite(factor) or factor <= 1.0 + 1e-9:
        return None
    low, high = law.n_range
    side = f"{factor:.1f}x the largest model behind its fit ({format_count(high)})" if n > high else \
        f"1/{factor:.1f} of the smallest model behind its fit ({format_count(low)})"
    return f"{label}: N = {format_count(n)} is {side}: an extrapolation"


MAX_PARAMS = 1e15  # a thousand times the largest models trained today: a recommendation beyond it is no plan
OBJECTIVE_WORDS = {"z": "Z", "memory": "memory", "flops": "FLOPs", "time": "decode time"}


def _regime(args: argparse.Namespace, source) -> CostSetting:
    """The source's cost setting with the regime of the flags: accounting, batch, dtypes, Eq. 5's
    constants, objective and hardware. Every flag left out keeps the source's value (the paper's)."""
    from gqa import cost, hardware

    setting = source.setting
    changes = {"batch": args.batch, "objective": args.objective}
    if args.accounting:
        from gqa.readings import load_grid

        options = load_grid().points["cost_accounting"]
        counted = options[args.accounting].settings
        changes.update(params=counted["params"], flops_per=counted["flops_per"], z_memory=counted["z_memory"])
    if args.weights_dtype:
        changes["dtype"] = args.weights_dtype
    if args.kv_dtype:
        changes["kv_dtype"] = args.kv_dtype
    if args.hardware:
        try:
            changes["hardware"] = hardware.preset(args.hardware)
        except ValueError as e:
            raise CliError(f"--hardware: {e}") from None
    elif args.objective == "time":
        raise CliError("--objective time needs --hardware NAME (" + ", ".join(hardware.PRESETS) + ")")
    if {args.lam, args.alpha, args.beta} != {None}:
        hw = setting.hw
        try:
            changes["hw"] = cost.HardwareWeights(hw.lam if args.lam is None else args.lam,
                                                 hw.alpha if args.alpha is None else args.alpha,
                                                 hw.beta if args.beta is None else args.beta)
        except ValueError as e:
            raise CliError(f"--lambda/--alpha/--beta: {e}") from None
    for flag, dtype in (("--weights-dtype", args.weights_dtype), ("--kv-dtype", args.kv_dtype)):
        if dtype:
            try:
                cost.bytes_per_value(dtype)
            except ValueError as e:
                raise CliError(f"{flag}: {e}") from None
    return replace(setting, **changes)


def _baseline_name(model) -> str:
    if isinstance(model, tuple):
        return f"{model}"
    return model.name or f"{model.heads} at L = {model.layers}, d = {model.d_model}"


def _verdict(best, setting: CostSetting, n_fitted: int, context: int, confidence: dict | None, cmp=None,
             interval: dict | None = None, baseline_name: str = "", target: float | None = None) -> str:
    """Plan's first line: what to do, what it saves, how sure, whether it extrapolates; with a baseline that
    misses the target, what the target needs."""
    what = OBJECTIVE_WORDS[setting.objective]
    sure = ""
    if confidence:
        share = confidence.get(f"{best.heads[0]},{best.heads[1]}", 0.0)
        sure = f"; optimal in {100 * share:.0f}% of bootstrap resamples"
    far = (f"; an extrapolation ({best.extrapolation:.1f}x outside the sizes its fit saw)"
           if math.isfinite(best.extrapolation) and best.extrapolation > 1 + 1e-9 else "")
    where = f"at {format_tokens(context)}, batch {setting.batch}"
    if cmp is None:
        return (f"verdict: use {best.heads} with N* = {format_count(best.params)} non-embedding parameters "
                f"(d_h = {setting.head_dim}): the cheapest in {what} of {n_fitted} fitted configurations {where}"
                f"{sure}{far}")
    opt, saving = cmp.optimum, cmp.saving
    sure = ""
    far = (f"; an extrapolation ({opt.extrapolation:.1f}x outside the sizes its fit saw)"
           if math.isfinite(opt.extrapolation) and opt.extrapolation > 1 + 1e-9 else "")
    at_loss = f"at its loss {cmp.baseline_loss:g}"
    spread = ""
    if interval and interval.get("resamples"):
        cheaper = interval["baseline_at_least_as_cheap"]
        spread = (f" (the saving's 95% bootstrap interval {100 * interval['low']:+.0f}% to "
                  f"{100 * interval['high']:+.0f}%"
                  + (f"; the baseline at least as cheap in {100 * cheaper:.0f}% of resamples)" if cheaper else ")"))
    if confidence:
        sure = f"; optimal in {100 * confidence.get(f'{opt.heads[0]},{opt.heads[1]}', 0.0):.0f}% of resamples"
    misses = ""
    if target is not None and cmp.baseline_loss > target:
        misses = (f"; but the baseline's loss {cmp.baseline_loss:g} misses your target {target:g}, which the cheapest "
                  f"configuration, {best.heads}, reaches at N* = {format_count(best.params)}")
    if opt.heads == cmp.baseline.heads and abs(saving) < 1e-9:  # the baseline is the optimum itself
        return (f"verdict: keep your baseline {baseline_name}: it is the cheapest of the {n_fitted} fitted "
                f"configurations {at_loss} {where}{sure}{far}{misses}")
    if saving <= 0:
        return (f"verdict: keep your baseline {baseline_name}: {at_loss} it is already the cheapest {where}; "
                f"the best fitted configuration, {opt.heads}, costs {100 * -saving:.1f}% more {what}{spread}{far}"
                f"{misses}")
    if interval and interval.get("resamples") and interval["low"] <= 0:
        return (f"verdict: your baseline {baseline_name} is as cheap as the best fitted configuration within the "
                f"bootstrap's noise: {opt.heads} would save {100 * saving:.1f}% of {what} {at_loss}{spread}{far}"
                f"{misses}")
    return (f"verdict: use {opt.heads} at N* = {format_count(opt.params)} (d_h = {setting.head_dim}): "
            f"{100 * saving:.1f}% less {what} than your baseline {baseline_name} {at_loss} {where}{spread}{sure}{far}"
            f"{misses}")


def cmd_plan(args: argparse.Namespace) -> int:
    from gqa import search
    from gqa.shapes import shape_for_params

    if (args.baseline_shape or args.baseline_loss is not None) and not (args.baseline or args.baseline_config):
        raise CliError("--baseline-shape and --baseline-loss need --baseline N_H,N_KV")
    if args.baseline_config and (args.baseline or args.baseline_shape):
        raise CliError("give the baseline by --baseline (with --baseline-shape) or by --baseline-config, not both")
    if args.max_extrapolation is not None and args.max_extrapolation < 1:
        raise CliError(f"--max-extrapolation is a factor >= 1 (1: no extrapolation), got {args.max_extrapolation:g}")
    source = _fit_source(args)
    setting = _regime(args, source)
    fits, why = _restrict(source, args.candidates)
    search.check_target(fits, args.target_loss)
    ranked = search.search(fits, args.target_loss, args.context, setting, max_extrapolation=args.max_extrapolation)
    best = ranked[0]
    law = fits[best.heads]
    if best.params > MAX_PARAMS:
        raise CliError(f"target loss {args.target_loss:g} is {args.target_loss - law.e:.2g} above the irreducible loss "
                       f"of {best.heads} (E = {law.e:.4f}): even the cheapest configuration needs N* = "
                       f"{format_count(best.params)} parameters, beyond any model that can be built "
                       f"(10^{math.log10(MAX_PARAMS):.0f}); choose a higher target")
    buildable = shape_for_params(best.params, *best.heads, head_dim=setting.head_dim, vocab=setting.vocab,
                                 anchors=setting.anchors)
    flops_unit = "per token" if setting.flops_per == "token" else "per sequence of T tokens"
    if setting.batch > 1:
        flops_unit += f", times {setting.batch} sequences"
    warnings = [w for w in [_extrapolation_note(f"recommended {best.heads}", best.extrapolation, best.params, law)]
                if w]
    warnings += _too_big(f"recommended {best.heads}", best, setting)
    report = {"source": source.description, "context": args.context, "target_loss": args.target_loss,
              "regime": {"batch": setting.batch, "weights_dtype": setting.dtype,
                         "kv_dtype": setting.kv_dtype or setting.dtype, "objective": setting.objective,
                         "hardware": asdict(setting.hardware) if setting.hardware else None,
                         "lambda": setting.hw.lam, "alpha": setting.hw.alpha, "beta": setting.hw.beta,
                         "description": setting.describe()},
              "candidates": {"considered": [search.heads_text(h) for h in fits], "why": why,
                             "max_extrapolation": args.max_extrapolation},
              "recommended": {"n_heads": best.heads[0], "n_kv_heads": best.heads[1], "head_dim": setting.head_dim},
              "params_non_embedding": best.params,
              "extrapolation": {"factor": best.extrapolation if math.isfinite(best.extrapolation) else None,
                                "fit_params_range": law.n_range, "fit_loss_range": law.loss_range},
              "shape": {"layers": best.layers, "d_model": best.d_model, "head_dim": setting.head_dim,
                        "vocab": setting.vocab, "nearest_buildable": buildable.to_dict()},
              "cost_setting": {"params_in_cost": setting.params, "flops": flops_unit,
                               "z_on": f"memory in {setting.z_memory}", "dtype": setting.dtype},
              "memory_values": best.memory, "memory_bytes": best.memory_bytes, "kv_bytes": best.kv_bytes,
              "flops": best.flops, "z": best.z, "decode_step_s": best.time_s if math.isfinite(best.time_s) else None,
              "z_shares": search.z_shares(best, setting), "ranking": [c.to_dict() for c in ranked]}
    cmp = interval = baseline_name = implausible = None
    optima = (search.resampled_optima(source.boot, args.target_loss, args.context, setting, heads=list(fits),
                                      max_extrapolation=args.max_extrapolation) if source.boot is not None else None)
    if args.baseline or args.baseline_config:
        baseline = _plan_baseline(args, source)
        baseline_name = _baseline_name(baseline.model)
        cmp = search.compare(source.fits, args.target_loss, args.context, baseline.model, setting,
                             baseline_loss=baseline.loss, max_extrapolation=args.max_extrapolation, candidates=fits)
        if source.boot is not None:
            interval = search.saving_interval(
                source.boot, cmp.baseline_loss, args.context, baseline.model, setting, heads=list(fits),
                max_extrapolation=args.max_extrapolation,
                optima=optima if cmp.baseline_loss == args.target_loss else None)
        assumption = (f"ASSUMED: nothing measured or fitted says the baseline reaches loss {cmp.baseline_loss:g}; "
                      "give its measured loss with --baseline-loss" if cmp.baseline_loss_assumed else None)
        report["baseline"] = {"how": baseline.how, "assumption": assumption, **cmp.to_dict(),
                              "saving_interval": interval}
        if cmp.baseline_loss != args.target_loss:
            warnings.append(f"the baseline is compared at its own loss {cmp.baseline_loss:g}, not at the target "
                            f"{args.target_loss:g}: there the optimum is {cmp.optimum.heads}")
        if assumption:
            warnings.append(assumption)
        implausible = _implausible_loss(baseline, source)
        if implausible:
            warnings.append(implausible)
        warnings += _too_big("the baseline", cmp.baseline, setting)
        if cmp.optimum.heads != best.heads or cmp.baseline_loss != args.target_loss:
            note = _extrapolation_note(f"at the baseline's loss, {cmp.optimum.heads}", cmp.optimum.extrapolation,
                                       cmp.optimum.params, fits[cmp.optimum.heads])
            if note:
                warnings.append(note)
        if isinstance(baseline.model, tuple):
            note = _extrapolation_note(f"the baseline {baseline.model}", cmp.baseline.extrapolation,
                                       cmp.baseline.params, source.fits[baseline.model])
            if note:
                warnings.append(note)
        seen = search.losses_seen(source.fits)
        if seen and not seen[0] <= cmp.baseline_loss <= seen[1]:
            warnings.append(f"the baseline's loss {cmp.baseline_loss:g} lies outside every loss the fits saw "
                            f"({seen[0]:.3f} to {seen[1]:.3f}): the comparison extrapolates the fits")
        note = _extrapolation_note(f"at the baseline's {OBJECTIVE_WORDS[setting.objective]}, {cmp.optimum.heads}",
                                   cmp.equal_cost_extrapolation, cmp.params_at_equal_cost, fits[cmp.optimum.heads])
        if note:
            warnings.append(note)
    report["warnings"] = warnings
    report["confidence"] = ({search.heads_text(h): share for h, share in search.confidence(
        source.boot, args.target_loss, args.context, setting, optima=optima).items()} if optima is not None else None)
    same_loss = cmp is None or cmp.baseline_loss == args.target_loss  # the confidence is at the target
    report["verdict"] = _verdict(best, setting, len(fits), args.context, report["confidence"] if same_loss else None,
                                 cmp, interval, baseline_name, args.target_loss)
    if cmp is not None and implausible:
        report["verdict"] += ("; this rests on the baseline's loss as given, which its configuration's fit "
                              "contradicts (see the warning)")
    if args.json:
        print(json.dumps(report, indent=2, allow_nan=False))
        return 0
    print(report["verdict"])
    print(f"fits: {report['source']}" + (f" (costed here as --accounting {args.accounting} says: see the regime)"
                                          if args.accounting else ""))
    print(f"regime: {setting.describe()}")
    print(f"candidates: {why}")
    print(f"target loss {args.target_loss:g} at context {format_tokens(args.context)}: "
          f"use (n_h, n_kv) = {best.heads} with N* = {best.params:,.0f} non-embedding parameters")
    print(f"  shape: L = {best.layers:.2f}, d = {best.d_model:.1f}, d_h = {setting.head_dim} as in the fits "
          f"(nearest buildable: {buildable.describe()})")
    line = (f"  memory {format_bytes(best.memory_bytes)} (weights {setting.dtype}, KV cache "
            f"{format_bytes(best.kv_bytes)} in {setting.kv_dtype or setting.dtype}), {format_count(best.flops)} FLOPs "
            f"{flops_unit}, Z = {best.z:,.1f}")
    if math.isfinite(best.time_s):
        line += f", ideal decode step {format_duration(best.time_s)} on {setting.hardware.name}"
    print(line)
    shares = report["z_shares"]
    print(f"  Z's memory term carries {100 * shares['memory']:.1f}% of it and its FLOPs term "
          f"{100 * shares['flops']:.1f}%, "
          f"in these units (memory in {setting.z_memory}, FLOPs {flops_unit}): the units decide how much FLOPs matter")
    if cmp is not None:
        b = report["baseline"]
        gain = b["loss_gain"]
        what = OBJECTIVE_WORDS[setting.objective]
        direction = f"{abs(gain):.3f} {'below' if gain > 0 else 'above'} the baseline's {b['baseline_loss']:g}"
        print(f"  vs baseline: {b['how']}")
        print(f"    at the baseline's loss {b['baseline_loss']:g}: {cmp.optimum.heads} changes {what} by "
              f"{_change(cmp.saving)}, memory by {_change(b['memory_saving'])} and FLOPs by "
              f"{_change(b['flops_saving'])}")
        print(f"    at the baseline's {what}, {cmp.optimum.heads} reaches loss {b['loss_at_equal_cost']:.3f}, "
              f"{direction}")
    if report["confidence"]:
        shares = ", ".join(f"({k}) {100 * v:.0f}%" for k, v in list(report["confidence"].items())[:4])
        print(f"  optimal in bootstrap resamples: {shares}")
    print(f"  all candidates by {OBJECTIVE_WORDS[setting.objective]}: " + ", ".join(
        f"{c.heads} {_score_text(c.score, setting.objective)}"
        + (f" [{c.extrapolation:.1f}x outside its fit]" if c.extrapolation > 1 + 1e-9 else "")
        for c in ranked[:8]))
    for warning in warnings:
        print(f"  warning: {warning}")
    return 0


def _too_big(label: str, candidate, setting: CostSetting) -> list[str]:
    """A warning when a costed model does not fit in the memory of the setting's hardware (none without one)."""
    if setting.hardware is None or candidate.step_bytes <= setting.hardware.memory:
        return []
    return [f"{label} holds {format_bytes(candidate.step_bytes)} (weights with the embedding and {setting.batch} "
            f"caches), more than the {format_bytes(setting.hardware.memory)} of one {setting.hardware.name}"]


def _change(saving: float) -> str:
    """A saving as the signed change it is, '+0.0%' for none (never '-0.0%')."""
    value = -100 * saving
    return "+0.0%" if abs(value) < 0.05 else f"{value:+.1f}%"


def _score_text(score: float, objective: str) -> str:
    return {"z": f"{score:,.0f}", "memory": format_bytes(score), "flops": format_count(score),
            "time": format_duration(score)}[objective]


def _add_regime_args(p: argparse.ArgumentParser) -> None:
    from gqa.hardware import PRESETS

    g = p.add_argument_group("serving regime (defaults: the paper's, or the fits file's)")
    g.add_argument("--batch", type=_positive_int, default=1,
                   help="sequences decoded together: the KV cache and the FLOPs per step scale with it (1)")
    g.add_argument("--weights-dtype", metavar="DTYPE", help="dtype of the weights (bf16)")
    g.add_argument("--kv-dtype", metavar="DTYPE", help="dtype of the KV cache, e.g. fp8 (default: the weights')")
    g.add_argument("--accounting", choices=["figure2", "equations_as_written"],
                   help="how N, FLOPs and memory are counted: as Figure 2 plots them (N without embedding, FLOPs "
                        "per sequence, Z on bytes) or as Eq. 3-5 are written (N with it, per token, Z on values); "
                        "default: the source's")
    g.add_argument("--objective", choices=list(OBJECTIVE_WORDS), default="z",
                   help="what to minimise: z (Eq. 5), memory (bytes), flops, or time (ideal roofline decode step "
                        "on --hardware)")
    g.add_argument("--hardware", metavar="NAME", help="an accelerator for the decode time: " + ", ".join(PRESETS))
    g.add_argument("--lambda", dest="lam", type=_finite_float, help="Eq. 5 lambda, in [0, 1] (0.9)")
    g.add_argument("--alpha", type=_finite_float, help="Eq. 5 alpha, > 0 (0.5)")
    g.add_argument("--beta", type=_finite_float, help="Eq. 5 beta, > 0 (1/3)")


def cmd_table4(args: argparse.Namespace) -> int:
    """The paper's Table 4 grid recomputed from a fit source under a regime, the paper's cell beside ours."""
    from gqa import fig2, search

    source = _fit_source(args)
    setting = _regime(args, source)
    frame = fig2.table4_check(source.fits, setting, boot=source.boot)
    checkable = frame[frame.status != "not checkable"]
    agree = int((checkable.status == "reproduced").sum())
    cells = [{"target_loss": float(r.target_loss), "context": int(r.context), "paper": list(r.paper),
              "ours": list(r.ours) if r.ours else None, "status": r.status,
              "ours_share": None if math.isnan(r.ours_share) else float(r.ours_share),
              "paper_share": None if math.isnan(r.paper_share) else float(r.paper_share),
              "extrapolated": bool(r.extrapolated)} for r in frame.itertuples()]
    report = {"source": source.description, "regime": setting.describe(), "resamples": args.resamples,
              "cells": cells, "checkable": len(checkable), "agree": agree,
              "not_checkable": int((frame.status == "not checkable").sum()),
              "fitted": [search.heads_text(h) for h in source.fits]}
    if args.json:
        print(json.dumps(report, indent=2, allow_nan=False))
        return 0
    targets = list(dict.fromkeys(frame.target_loss))
    contexts = list(dict.fromkeys(frame.context))
    print(f"Table 4 recomputed: {agree} of {len(checkable)} checkable cells agree with the paper "
          f"({report['not_checkable']} not checkable: the paper's optimum has no fit here)")
    print(f"fits: {source.description}")
    seen = search.losses_seen(source.fits)
    if seen:
        low, high = seen
        outside = [t for t in targets if not low <= t <= high]
        if outside:
            print(f"note: {len(outside)} of the paper's {len(targets)} target losses lie outside the losses these fits "
                  f"saw ({low:.3f} to {high:.3f}): those rows extrapolate the fits"
                  + ("; and losses on other data than the paper's are not on its scale" if args.runs or args.fits
                     else ""))
    print(f"regime: {setting.describe()}")
    print("cell: ours, its share of bootstrap resamples, then the paper's: = agrees, x differs, "
          "? not checkable; † ours extrapolates its fit")
    width = 17
    print(f"{'L*':>6} " + "".join(f"{format_tokens(c):>{width}}" for c in contexts))
    by_cell = {(c["target_loss"], c["context"]): c for c in cells}
    for t in targets:
        row = []
        for c in contexts:
            cell = by_cell[(float(t), int(c))]
            ours = ("—" if cell["ours"] is None
                    else "{},{}".format(*cell["ours"]) + ("†" if cell["extrapolated"] else ""))
            share = f" {100 * cell['ours_share']:.0f}%" if cell["ours_share"] is not None and cell["ours"] else ""
            mark = {"reproduced": "=", "differs": "x", "not checkable": "?"}[cell["status"]]
            row.append(f"{ours}{share} {mark} {cell['paper'][0]},{cell['paper'][1]}")
        print(f"{t:>6g} " + "".join(f"{text:>{width}}" for text in row))
    return 0


def _add_fit_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", metavar="JSONL", help="run records to fit, e.g. data/runs/cpu.jsonl (default: the "
                                                  "paper's digitised Figure 2 points)")
    p.add_argument("--fits", metavar="JSON", help="fitted laws written by `gqa fit` instead of runs")
    p.add_argument("--resamples", type=_non_negative_int, default=1000,
                   help="bootstrap resamples (0: none; default 1000, 200 for table4)")
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
    p.add_argument("--context", "-T", type=_positive_tokens, required=True, help="expected context (128k = 131072)")
    p.add_argument("--target-loss", type=_finite_float, required=True,
                   help="target loss L* (nats/token), inside the losses the fits saw")
    p.add_argument("--baseline", type=_heads_pair, help="compare with this H, e.g. 32,8")
    p.add_argument("--baseline-shape", type=_shape_pair, metavar="L,D",
                   help="the baseline's layers and hidden size, when its H has no fit (a model you run)")
    p.add_argument("--baseline-loss", type=_finite_float, metavar="LOSS",
                   help="the baseline's measured loss (default: its fit's, the paper's, or assumed = target)")
    p.add_argument("--baseline-config", metavar="PATH",
                   help="the baseline as a Hugging Face config.json or model folder (read offline)")
    p.add_argument("--candidates", type=_heads_pair, nargs="+", metavar="N_H,N_KV",
                   help="consider only these fitted configurations (default: every fitted one)")
    p.add_argument("--max-extrapolation", type=_finite_float, metavar="X",
                   help="drop candidates whose N* lies more than X times outside the sizes their fit saw")
    _add_regime_args(p)
    _add_fit_source_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_plan)
    t = sub.add_parser(
        "table4", help="the paper's Table 4 grid recomputed for a serving regime, the paper's cells beside ours",
        description="Step 3 over the paper's Table 4 grid (its target losses x its contexts): the cost-optimal\n"
                    "(n_h, n_kv) of each cell from the fits (default: the paper's Figure 2), under a regime\n"
                    "(batch, KV dtype, Eq. 5's constants, objective), beside the paper's cell; each cell with the\n"
                    "share of bootstrap resamples that agree with it.",
        epilog="examples: gqa table4\n"
               "          gqa table4 --batch 16 --kv-dtype fp8\n"
               "          gqa table4 --objective time --hardware h100 --batch 128",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_regime_args(t)
    _add_fit_source_args(t)
    t.set_defaults(resamples=200)
    t.add_argument("--json", action="store_true", help="print one JSON object")
    t.set_defaults(func=cmd_table4)
