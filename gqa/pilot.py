"""The pilot of a training study: is the head-count effect larger than the seed spread at one size?

A study that fits one loss law per head configuration can only rank configurations if the loss
differences between them, at one size, stand out of the noise of training with another seed. The pilot
(profile `study-pilot`) trains every head configuration of one backbone with several seeds; this module
reads its records and decides.

Conventions: losses are final validation losses in nats per token; `spread` is a configuration's sample
standard deviation over seeds (n − 1); `pooled_sd` pools the configurations' variances (equal seeds);
the effect is the difference of mean losses between the fewest and the most KV heads, its standard
error pooled_sd·sqrt(1/n_a + 1/n_b), and its signal-to-noise ratio their quotient. The decision rule,
fixed before the runs: GO when that ratio is at least `GO_RATIO` (= 3: the effect is three standard
errors from zero, so one seed per cell in the full sweep, whose noise is pooled_sd, still orders the
extremes correctly unless two seeds err by more than 1.5 standard errors each way) and the mean losses
fall monotonically with the KV heads; otherwise NO-GO, with the reason.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from gqa.search import Heads

GO_RATIO = 3.0


@dataclass(frozen=True)
class ConfigurationSpread:
    heads: Heads
    losses: tuple[float, ...]  # one per seed, in seed order
    seeds: tuple[int, ...]
    non_embedding: int

    @property
    def mean(self) -> float:
        return statistics.fmean(self.losses)

    @property
    def spread(self) -> float:
        """Sample standard deviation over seeds (nats); 0 with one seed."""
        return statistics.stdev(self.losses) if len(self.losses) > 1 else 0.0


@dataclass(frozen=True)
class PilotResult:
    size: tuple[int, int]  # (layers, d_model) of the backbone
    configurations: tuple[ConfigurationSpread, ...]  # most KV heads first
    pooled_sd: float  # seed noise of one run, nats
    effect: float  # mean loss of the fewest KV heads minus that of the most, nats
    standard_error: float  # of `effect`
    monotone: bool  # mean loss rises at every halving of the KV heads
    go: bool
    reason: str

    @property
    def ratio(self) -> float:
        return self.effect / self.standard_error if self.standard_error > 0 else math.inf


def analyse(records: Sequence[dict]) -> PilotResult:
    """The pilot's decision from its run records (one backbone, several head configurations and seeds).
    ValueError if the records span several backbones or a configuration has fewer than two seeds."""
    sizes = {(r["layers"], r["d_model"]) for r in records}
    if len(sizes) != 1:
        raise ValueError(f"a pilot trains one backbone; the records span {sorted(sizes)}")
    by_heads: dict[Heads, list[dict]] = defaultdict(list)
    for r in records:
        by_heads[(r["n_heads"], r["n_kv_heads"])].append(r)
    configurations = []
    for heads, runs in sorted(by_heads.items(), key=lambda kv: (-kv[0][1], -kv[0][0])):
        runs = sorted(runs, key=lambda r: r["seed"])
        seeds = tuple(r["seed"] for r in runs)
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"{heads}: seed recorded twice ({seeds})")
        if len(runs) < 2:
            raise ValueError(f"{heads}: one seed only; the pilot needs at least two per configuration")
        configurations.append(ConfigurationSpread(heads, tuple(r["val_loss"] for r in runs), seeds,
                                                  runs[0]["n_non_embedding"]))
    if len(configurations) < 2:
        raise ValueError("a pilot compares at least two head configurations")
    pooled = math.sqrt(statistics.fmean(c.spread ** 2 for c in configurations))
    most, fewest = configurations[0], configurations[-1]
    effect = fewest.mean - most.mean
    se = pooled * math.sqrt(1 / len(most.losses) + 1 / len(fewest.losses))
    monotone = all(b.mean > a.mean for a, b in zip(configurations, configurations[1:]))
    ratio = effect / se if se > 0 else math.inf
    if ratio >= GO_RATIO and monotone:
        go, reason = True, (f"the effect, {effect:.3f} nats, is {ratio:.1f} standard errors of the seed noise "
                            f"(pooled SD {pooled:.4f} nats) and the losses rise at every halving of the KV heads")
    elif not monotone:
        go, reason = False, "the mean losses do not rise monotonically as the KV heads are halved"
    else:
        go, reason = False, (f"the effect, {effect:.3f} nats, is only {ratio:.1f} standard errors of the seed "
                             f"noise (pooled SD {pooled:.4f} nats); at least {GO_RATIO:g} are needed")
    return PilotResult(sizes.pop(), tuple(configurations), pooled, effect, se, monotone, go, reason)


def recorded(profile: str = "study-pilot") -> tuple[list[dict], int]:
    """(the runs of a pilot profile's sweep recorded in any store of data/runs/, each checked as a fit's input
    is, the number of runs it plans)."""
    from gqa import profiles, runs
    from gqa.config import sweep_configs

    section = profiles.load(profile).section("sweep")
    if not section:
        raise ValueError(f"profile {profile!r} has no sweep section")
    planned = sweep_configs(section)
    by_id = runs.index()
    found = [by_id[c.run_id()] for c in planned if c.run_id() in by_id]
    for record, store in found:
        runs.check_record(record, f"data/runs/{store}.jsonl run {record.get('run_id')}", runs.FIT_FIELDS + ("seed",))
    return [record for record, _ in found], len(planned)


def load(profile: str = "study-pilot") -> tuple[PilotResult | None, list[dict], int]:
    """(the pilot's result, its recorded runs, the number planned) of a pilot profile; the result is None while
    a configuration has fewer than two seeds recorded."""
    records, planned = recorded(profile)
    try:
        return analyse(records), records, planned
    except ValueError:
        return None, records, planned


def table(result: PilotResult):
    """One row per head configuration: non-embedding parameters N, seeds, mean loss, seed SD (a DataFrame; each
    seed's loss is in the figure and in `gqa pilot`)."""
    import pandas as pd

    return pd.DataFrame([{"(n_h, n_kv)": f"({c.heads[0]}, {c.heads[1]})", "N": f"{c.non_embedding:,}",
                          "seeds": len(c.losses), "mean loss": round(c.mean, 4), "seed SD": round(c.spread, 4)}
                         for c in result.configurations]).set_index("(n_h, n_kv)")


def _seed_counts(result: PilotResult) -> str:
    counts = sorted({len(c.losses) for c in result.configurations})
    return f"{counts[0]} seeds" if len(counts) == 1 else f"{counts[0]} to {counts[-1]} seeds"


def words(result: PilotResult | None, records: Sequence[dict], planned: int) -> dict[str, str]:
    """The sentences chapter 3 quotes about the pilot, computed from its result and its records (what else
    differs between the configurations)."""
    from gqa.units import format_number

    if result is None:
        waiting = f"{len(records)} of its {planned} runs are recorded, too few to set the seeds against one another"
        return {"pilot_numbers": waiting, "pilot_decision": "The decision waits for the pilot's runs.",
                "pilot_caveats": "", "pilot_confound": ""}
    configs = result.configurations
    most, fewest = configs[0], configs[-1]
    numbers = (f"at L = {result.size[0]}, d = {result.size[1]}, the mean validation loss is {format_number(most.mean)} "
               f"nats with ({most.heads[0]}, {most.heads[1]}) and {format_number(fewest.mean)} with "
               f"({fewest.heads[0]}, {fewest.heads[1]}), a difference of {result.effect:+.3f} nats, while seeds "
               f"spread by {result.pooled_sd:.4f} nats (pooled standard deviation, {_seed_counts(result)} per "
               "configuration)")
    decision = ("Go: " if result.go else "No-go: ") + result.reason + "."
    if result.go:
        decision += (" The full study (profile study) follows with one seed per size; at this size, each "
                     "configuration the pilot trained enters it as the mean of the pilot's seeds.")
    spreads = [c.spread for c in configs]
    worst = result.effect / (max(spreads) * math.sqrt(1 / len(most.losses) + 1 / len(fewest.losses)))
    steps = [(b.mean - a.mean, a, b) for a, b in zip(configs, configs[1:])]
    step, a, b = min(steps, key=lambda s: s[0])
    caveats = (f"The seed spread is not one number: the configurations' standard deviations run from "
               f"{min(spreads):.4f} to {max(spreads):.4f} nats (with the largest alone the effect is still "
               f"{worst:.1f} standard errors). And the rule tests the easy contrast: the smallest step, from "
               f"({a.heads[0]}, {a.heads[1]}) to ({b.heads[0]}, {b.heads[1]}), is {step:.3f} nats, "
               f"{step / result.pooled_sd:.1f} pooled seed standard deviations, so with one seed per cell the full "
               "study can misorder neighbouring configurations at one size. Its loss laws, with as many sizes per "
               "configuration as the law has constants or one more, cannot average that noise away, so chapter 4 "
               "carries the pilot's seed noise into them as bands.")
    confound = ""
    by_heads = {(r["n_heads"], r["n_kv_heads"]): r for r in records}
    if most.heads in by_heads and fewest.heads in by_heads and "tokens" in by_heads[most.heads]:
        rich, lean = by_heads[most.heads], by_heads[fewest.heads]
        fewer = 100 * (1 - lean["n_non_embedding"] / rich["n_non_embedding"])
        fewer_tokens = 100 * (1 - lean["tokens"] / rich["tokens"])
        confound = (f"({fewest.heads[0]}, {fewest.heads[1]}) has {fewer:.0f}% fewer parameters than "
                    f"({most.heads[0]}, {most.heads[1]}) and, at 20 tokens per parameter, {fewer_tokens:.0f}% fewer "
                    "training tokens, so the difference is not the KV heads' alone")
    return {"pilot_numbers": numbers, "pilot_decision": decision, "pilot_caveats": caveats, "pilot_confound": confound}
