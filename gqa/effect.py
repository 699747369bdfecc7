"""Does a study show the paper's effect: the cost-optimal head configuration moving to fewer KV heads as the
context grows?

The designed study (profile `study`) trains one seed per run; its pilot (profile `study-pilot`) measured how
far another seed moves one run's loss. This module fits the study's laws (at the pilot's size, each
configuration the pilot trained enters as the mean of its seeds), propagates that seed noise into them with a
parametric bootstrap (`scaling.seed_bootstrap`), computes Table 4's grid around the study's balance point and
at the paper's contexts, and decides.

Conventions. A grid's rows are target losses (nats per token, high to low), its columns contexts (tokens,
short to long). A row *moves to fewer KV heads* when the optimum's n_kv never grows along the row and falls
at least once; it *keeps* them when n_kv is the same in every cell; *more* and *both ways* (say 2, 1, 2) are
the rest. A row can *test* the effect only when its optimum at the shortest context has more KV heads than
the fewest any configuration has: a row already at the floor cannot move to fewer (Table 4's own rows at
3.0 and 2.9 nats are such rows). Query heads are not counted (the paper's n_h falls with the context too;
the words report where ours grows).

The verdict is stated only over the rows whose target every configuration's runs reached (inside all fits'
loss ranges), jointly, as one of OUTCOMES: "shows" when some testing row moves to fewer KV heads and no row
moves to more or both ways; "does not show" when a row moves to more or both ways, or testing rows exist
and none moves to fewer; "cannot test" when no row can. Its stability is the share of seed-noise resamples
whose grid gives the same outcome, at the pilot's seed noise and at the upper end of its 95% interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gqa import pilot, profiles, runs, sources
from gqa.config import sweep_configs
from gqa.pilot import PilotResult
from gqa.scaling import Bootstrap, PowerLaw, fit_family, seed_bootstrap
from gqa.search import CostSetting, Heads, balance_context_of_shape, grid, search
from gqa.shapes import anchors_from_shapes, record_shape
from gqa.units import count_phrase, format_count, format_number, format_tokens

MOVES = ("fewer", "same", "more", "both ways")
OUTCOMES = ("shows", "does not show", "cannot test")
CONTEXTS = (512, 1024, 2048, 4096, 8192, 32768, 131072)  # around the designed study's balance, and the paper's


def kv_move(optima: Sequence[Heads | None]) -> str:
    """How the optimum's KV heads change along a row of contexts (short to long), empty cells skipped: one
    of MOVES."""
    kv = np.array([h[1] for h in optima if h is not None])
    steps = np.diff(kv)
    if not np.any(steps):
        return "same"
    if np.all(steps <= 0):
        return "fewer"
    return "more" if np.all(steps >= 0) else "both ways"


def common_losses(fits: Mapping[Heads, PowerLaw]) -> tuple[float, float] | None:
    """(lowest, highest) loss that every configuration's runs reached, or None when their ranges do not
    overlap."""
    lo = max(f.loss_range[0] for f in fits.values())
    hi = min(f.loss_range[1] for f in fits.values())
    return (lo, hi) if lo < hi else None


def inside_targets(fits: Mapping[Heads, PowerLaw], n: int = 5) -> list[float]:
    """Up to `n` target losses evenly spaced strictly inside the common loss range (high to low), rounded to
    two decimals (those that rounding pushes out, or onto another, dropped); empty when the ranges do not
    overlap."""
    common = common_losses(fits)
    if common is None:
        return []
    lo, hi = common
    points = np.linspace(hi, lo, n + 2)[1:-1]
    return list(dict.fromkeys(t for t in (float(np.round(p, 2)) for p in points) if lo < t < hi))


@dataclass(frozen=True)
class Row:
    target: float  # nats per token
    optima: tuple[Heads | None, ...]  # one per context, short to long
    inside: bool  # every configuration's runs reached this loss
    move: str  # one of MOVES
    tests: bool  # its shortest-context optimum has more KV heads than the fewest trained: it can move to fewer


def rows(cells: Mapping[tuple[float, int], Heads | None], targets: Sequence[float], contexts: Sequence[int],
         common: tuple[float, float] | None, floor_kv: int) -> tuple[Row, ...]:
    """A grid's rows: each one's move, whether its target lies inside the common loss range, and whether it
    can test the effect (its first optimum above `floor_kv`, the fewest KV heads among the configurations)."""
    out = []
    for t in targets:
        optima = tuple(cells[(t, c)] for c in contexts)
        first = next((h for h in optima if h is not None), None)
        out.append(Row(t, optima, common is not None and common[0] < t < common[1], kv_move(optima),
                       first is not None and first[1] > floor_kv))
    return tuple(out)


def outcome(grid_rows: Sequence[Row]) -> str:
    """The verdict over the rows inside the common range (see the module's docstring): one of OUTCOMES."""
    inside = [r for r in grid_rows if r.inside]
    if any(r.move in ("more", "both ways") for r in inside):
        return "does not show"
    testing = [r for r in inside if r.tests]
    if any(r.move == "fewer" for r in testing):
        return "shows"
    return "does not show" if testing else "cannot test"


@dataclass(frozen=True)
class Verdict:
    contexts: tuple[int, ...]
    rows: tuple[Row, ...]  # every target of the grid, inside or not
    outcome: str  # one of OUTCOMES, over the rows inside the common loss range
    agreement: float  # share of seed-noise resamples whose grid gives the same outcome (nan: not resampled)
    agreement_high: float  # the same at the upper end of the seed noise's 95% interval (nan: not resampled)
    gaining_share: float  # share of resamples in which some inside row gains n_h · n_kv along the contexts
    resamples: int
    common: tuple[float, float] | None

    @property
    def inside(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.inside)

    def cells(self) -> dict[tuple[float, int], Heads | None]:
        """The grid as `search.grid` returns it: {(target, context): optimum}."""
        return {(r.target, c): h for r in self.rows for c, h in zip(self.contexts, r.optima)}


def assess(fits: Mapping[Heads, PowerLaw], boot: Bootstrap | None, targets: Sequence[float],
           contexts: Sequence[int], setting: CostSetting, boot_high: Bootstrap | None = None) -> Verdict:
    """The verdict of the point fits over a grid, and the share of each bootstrap's resamples (each a full
    set of laws) that reach the same outcome over the same inside targets (nan without a bootstrap)."""
    common = common_losses(fits)
    floor_kv = min(h[1] for h in fits)
    point_rows = rows(grid(fits, targets, contexts, setting), targets, contexts, common, floor_kv)
    verdict = outcome(point_rows)
    inside = [r.target for r in point_rows if r.inside]

    def resampled(b: Bootstrap | None) -> tuple[float, float]:
        if b is None:
            return float("nan"), float("nan")
        agree = gaining = 0
        for i in range(b.resamples):
            again = rows(grid(b.laws(i), inside, contexts, setting), inside, contexts, common, floor_kv)
            agree += outcome(again) == verdict
            gaining += any(_heads_grow(r.optima) for r in again)
        return agree / b.resamples, gaining / b.resamples

    agreement, gaining_share = resampled(boot)
    agreement_high, _ = resampled(boot_high)
    return Verdict(tuple(contexts), point_rows, verdict, agreement, agreement_high, gaining_share,
                   boot.resamples if boot is not None else 0, common)


def cost_gap(fits: Mapping[Heads, PowerLaw], target: float, context: int,
             setting: CostSetting) -> tuple[Heads, Heads, float] | None:
    """At one cell: (the optimum, the cheapest configuration with more KV heads than it, that one's Z over the
    optimum's), or None when no configuration with more KV heads reaches the target."""
    ranked = search(fits, target, context, setting)
    best = ranked[0]
    more = [c for c in ranked if c.heads[1] > best.heads[1]]
    if not more:
        return None
    return best.heads, more[0].heads, more[0].z / best.z


def z_ratio(fits: Mapping[Heads, PowerLaw], target: float, context: int, setting: CostSetting, heads: Heads,
            against: Heads) -> float:
    """Z of `heads` over Z of `against`, each at the size its law needs for the target, at one context."""
    ranked = {c.heads: c.z for c in search(fits, target, context, setting)}
    return ranked[heads] / ranked[against]


def pair(heads: Heads) -> str:
    """A head configuration as the prose writes it: "(8, 1)"."""
    return f"({heads[0]}, {heads[1]})"


def move_text(row: Row, contexts: Sequence[int]) -> str:
    """Where along a row the optimum changes, e.g. "(8, 8) at 512 tokens, (8, 2) from 2K, (8, 1) from 8K"."""
    parts, last = [], None
    for heads, context in zip(row.optima, contexts):
        if heads is not None and heads != last:
            parts.append(f"{pair(heads)} {'at' if last is None else 'from'} {format_tokens(context)}"
                         + (" tokens" if last is None else ""))
            last = heads
    return ", ".join(parts)


# --- The designed study, loaded and told -----------------------------------------------------------------
@dataclass
class Study:
    """A study's recorded runs, fitted per head configuration, with the seed noise its pilot measured."""

    profile: str
    records: list[dict]  # the runs recorded so far (seed 0 of every planned run)
    missing: list  # the planned TrainConfigs not recorded yet
    data: dict  # {H: (N, losses)} as `sources.fits_from_records` groups them
    fits: dict[Heads, PowerLaw]
    averaged: tuple[Heads, ...]  # configurations whose point at the pilot's size is the mean of its seeds
    boot: Bootstrap  # the seed bootstrap at the pilot's seed noise
    boot_high: Bootstrap  # the same at the upper end of that noise's 95% interval
    pilot: PilotResult  # several seeds at one size: the seed noise the bootstrap draws
    setting: CostSetting

    @property
    def sigma(self) -> float:
        """Nats: the pilot's pooled seed standard deviation of one run's loss."""
        return self.pilot.pooled_sd

    @property
    def pilot_size(self) -> tuple[int, int]:
        return self.pilot.size

    @property
    def training_context(self) -> int:
        """Tokens: the context the study's models were trained and evaluated at."""
        return int(self.records[0]["config"]["context"])

    @property
    def sigma_high(self) -> float:
        return sigma_interval(self.pilot)[1]

    def balance_span(self) -> tuple[float, float]:
        """The contexts (tokens) at which the trained models' KV cache weighs as much as their weights
        (Eq. 4, on their exact shapes): the smallest and the largest."""
        spans = [balance_context_of_shape(record_shape(r), self.setting) for r in self.records]
        return min(spans), max(spans)

    def curves(self, points: int = 60, level: float = 0.95) -> dict[Heads, tuple]:
        """Per configuration, over the sizes it was trained at: (N, fitted loss, lower, upper), the band
        the seed bootstrap's `level` interval."""
        out = {}
        for h, law in self.fits.items():
            n = np.geomspace(*law.n_range, points)
            out[h] = (n, law.predict(n), *self.boot.predict_interval(h, n, level))
        return out


def load(profile: str = "study", pilot_profile: str = "study-pilot", *, resamples: int = 1000, seed: int = 0,
         dtype: str = "bf16") -> Study | None:
    """Fit the runs a study profile has recorded so far and propagate its pilot's seed noise into the fits;
    None while some configuration has fewer than three sizes recorded (the law has three constants) or the
    pilot has no decision yet."""
    configs = sweep_configs(profiles.load(profile).section("sweep"))
    records, missing = runs.records_for(configs)
    result, _, _ = pilot.load(pilot_profile)
    if not records or result is None:
        return None
    data, implied = sources.fits_from_records(records)
    if min(len(set(n)) for n, _ in data.values()) < 3:
        return None
    data, scale = with_pilot_means(data, result)
    fits = fit_family(data)
    boot = seed_bootstrap(data, result.pooled_sd, resamples=resamples, seed=seed, point=fits, scale=scale)
    boot_high = seed_bootstrap(data, sigma_interval(result)[1], resamples=resamples, seed=seed, point=fits,
                               scale=scale)
    anchors = anchors_from_shapes(implied["sizes"])
    setting = CostSetting(head_dim=implied["head_dim"], vocab=implied["vocab"], dtype=dtype, anchors=anchors)
    return Study(profile, records, missing, data, fits, tuple(scale), boot, boot_high, result, setting)


def with_pilot_means(data: Mapping[Heads, tuple], result: PilotResult) -> tuple[dict, dict[Heads, list[float]]]:
    """The fit inputs with each configuration's point at the pilot's size replaced by the mean of the pilot's
    seeds there (the run a study records at that size is one of them), and per configuration the factor on
    σ of each point: 1/√k for a mean of k seeds, 1 elsewhere. Configurations the pilot did not train keep
    their one run."""
    out, scale = {h: (list(n), list(loss)) for h, (n, loss) in data.items()}, {}
    for c in result.configurations:
        if c.heads not in out:
            continue
        sizes, losses = out[c.heads]
        at = [i for i, n in enumerate(sizes) if n == c.non_embedding]
        if at:
            losses[at[0]] = c.mean
            scale[c.heads] = [1 / np.sqrt(len(c.losses)) if i == at[0] else 1.0 for i in range(len(sizes))]
    return out, scale


def sigma_interval(result: PilotResult, level: float = 0.95) -> tuple[float, float]:
    """The `level` interval of the seed noise σ from a pilot's pooled standard deviation, with the sum over
    configurations of (seeds − 1) degrees of freedom (chi-square; the seeds' losses taken as normal)."""
    from scipy.stats import chi2

    df = sum(len(c.losses) - 1 for c in result.configurations)
    s2 = result.pooled_sd ** 2
    return (float(np.sqrt(df * s2 / chi2.ppf((1 + level) / 2, df))),
            float(np.sqrt(df * s2 / chi2.ppf((1 - level) / 2, df))))


def default_targets(fits: Mapping[Heads, PowerLaw], inside: int = 4) -> list[float]:
    """Rows for the study's grid, high to low: `inside` targets inside the common loss range, then two below
    it (the fits extrapolate there for some configurations): the lowest loss any run reached, rounded down
    to 0.01, and one more step of the inside spacing below that."""
    targets = inside_targets(fits, inside)
    lowest = np.floor(100 * min(f.loss_range[0] for f in fits.values())) / 100
    step = (targets[0] - targets[-1]) / max(len(targets) - 1, 1) if targets else 0.1
    return targets + [float(lowest), float(np.round(lowest - step, 2))]


def _span(fits: Mapping[Heads, PowerLaw]) -> float:
    return max(f.n_range[1] for f in fits.values()) / min(f.n_range[0] for f in fits.values())


def progress_words(planned: Sequence, missing: Sequence, provisional: bool = True) -> str:
    """How far a study's sweep has come: runs recorded of those `planned`, and which are still to train
    (`missing`; both TrainConfigs)."""
    done = f"Of the {len(planned)} runs the study plans, {len(planned) - len(missing)} are recorded"
    if not missing:
        return done + "."
    sizes = sorted({(c.layers, c.d_model) for c in missing})
    largest = max((c.layers, c.d_model) for c in planned)
    where = "; ".join(f"L = {layers}, d = {d}" for layers, d in sizes)
    return (f"{done}; {'the one' if len(missing) == 1 else f'the {len(missing)}'} at {where}"
            + (", its largest size," if sizes == [largest] else "")
            + f" {'is' if len(missing) == 1 else 'are'} still training"
            + (", so what follows is provisional" if provisional else "") + ".")


def study_words(study: Study | None, profile: str = "study") -> dict[str, str]:
    """The sentences about a designed study itself: how far its sweep has come (`eff_progress`, `eff_status`),
    the sizes its fits span (`eff_span`), the seed noise propagated into them (`eff_noise`), the contexts at
    which its models' KV cache weighs as much as their weights (`eff_balance`), and why its table leaves out
    R² (`eff_exact`)."""
    planned = sweep_configs(profiles.load(profile).section("sweep"))
    _, missing = runs.records_for(planned)
    progress = progress_words(planned, missing, provisional=study is not None)
    status = (f"provisional: {len(missing)} of its {len(planned)} runs are still training" if missing else
              f"all {len(planned)} of its runs")
    if study is None:
        return {"eff_progress": progress + " The fits wait until every configuration has runs at three sizes and "
                "the pilot has decided.", "eff_span": "", "eff_noise": "", "eff_balance": "", "eff_exact": "",
                "eff_status": status}
    exact = all(len(set(n)) == 3 for n, _ in study.data.values())
    lo_n = min(f.n_range[0] for f in study.fits.values())
    hi_n = max(f.n_range[1] for f in study.fits.values())
    each = [f.n_range[1] / f.n_range[0] for f in study.fits.values()]
    low, high = study.balance_span()
    return {
        "eff_progress": progress,
        "eff_status": status,
        "eff_span": (f"{format_count(lo_n)} to {format_count(hi_n)} non-embedding parameters in all, each "
                     f"configuration's runs spanning {min(each):.1f}× to {max(each):.1f}× in size"),
        "eff_noise": (f"every run's loss is moved by a random draw of the seed noise, a normal with the pilot's "
                      f"pooled seed standard deviation σ = {study.sigma:.4f} nats (measured at L = "
                      f"{study.pilot_size[0]}, d = {study.pilot_size[1]} and assumed the same at every size), and "
                      f"the laws are refitted, {study.boot.resamples:,} times"
                      + (f"; at that size the configurations the pilot trained enter as the mean of its seeds, with "
                         f"σ/√{len(study.pilot.configurations[0].losses)}" if study.averaged else "")),
        "eff_balance": f"{low:,.0f} to {high:,.0f} tokens",
        "eff_exact": ("With three sizes per configuration and three constants per law, each law passes through its "
                      "runs exactly (R² is 1 by construction), so the table leaves out R² and the least-squares "
                      "check." if exact else ""),
    }


def verdict_words(study: Study | None, verdict: Verdict | None, daggers: bool = True) -> dict[str, str]:
    """The verdict in words (`eff_verdict`), why (`eff_why`), what the extrapolated rows would say and how far
    they reach (`eff_beyond`), and the one answer the first page and the takeaways give (`eff_headline`,
    `eff_takeaway`)."""
    if study is None or verdict is None:
        wait = "The verdict waits until every configuration has runs at three sizes and the pilot has decided."
        return {"eff_verdict": wait, "eff_stability": "", "eff_why": "", "eff_beyond": "", "eff_takeaway": wait,
                "eff_headline": "cannot test it yet: too few runs are recorded"}
    contexts = verdict.contexts
    first, last = format_tokens(contexts[0]), format_tokens(contexts[-1])
    stable = _stability(study, verdict)
    inside = verdict.inside
    floor_kv = min(h[1] for h in study.fits)
    runs_note = (f"{len(study.records)} of {len(study.records) + len(study.missing)} runs; the "
                 f"{len(study.missing)} still training may change that" if study.missing else
                 f"all {len(study.records)} runs")
    beyond = _beyond(study, verdict, daggers)
    if not inside:
        text = ("Cannot test: no target loss lies inside the losses every configuration reached, so every row "
                "extrapolates some fit.")
        headline = f"cannot test it yet: no target loss lies inside every configuration's losses ({runs_note})"
        return {"eff_verdict": text, "eff_stability": "", "eff_why": "", "eff_beyond": beyond,
                "eff_headline": headline, "eff_takeaway": f"Our designed study {headline}."}
    lo, hi = verdict.common
    over = (f"at the {_plural(len(inside), 'target loss', 'target losses')} inside the range every "
            "configuration's runs reached "
            f"({format_number(lo)} to {format_number(hi)} nats)")
    testing = [r for r in inside if r.tests]
    if verdict.outcome == "shows":
        moving = [r for r in testing if r.move == "fewer"]
        text = (f"Yes, {over}: the optimum moves to fewer KV heads as the context grows from {first} to {last} in "
                f"{count_phrase(len(moving), len(testing), 'row')} that can, and in none does it move to more.")
        why = " ".join(f"At {format_number(r.target)} nats: {move_text(r, contexts)}." for r in moving)
        answer = f"shows {{it}}: {over}, the optimum moves to fewer KV heads as the context grows"
    elif verdict.outcome == "cannot test":
        text = (f"Cannot test: {over}, the optimum already has the fewest KV heads trained, {floor_kv}, at "
                f"{first} tokens, the grid's shortest context, so it cannot move to fewer as the context grows "
                "from there; no row moves to more.")
        why = _floor_words(study, inside, contexts)
        answer = (f"cannot test {{it}} yet: {over}, the optimum already has {floor_kv} KV head"
                  f"{'s' if floor_kv > 1 else ''} at {first} tokens, so it cannot move to fewer")
    else:
        against = [r for r in inside if r.move in ("more", "both ways")]
        how = (f"the optimum moves to more KV heads (or both ways) as the context grows in "
               f"{_plural(len(against), 'row', 'rows')}" if against else
               f"{'the one row' if len(testing) == 1 else f'none of the {len(testing)} rows'} that can move to fewer "
               f"KV heads {'does not' if len(testing) == 1 else 'does'}")
        text = f"No, {over}: {how}."
        why = _gap_words(study, testing or inside, contexts)
        answer = f"does not show {{it}}: {over}, {how}"
    gaining = [r for r in inside if _heads_grow(r.optima)]
    if gaining:
        ratios = [z_ratio(study.fits, r.target, contexts[0], study.setting, _last(r.optima), r.optima[0])
                  for r in gaining]
        text += (f" The verdict counts KV heads only. In {_plural(len(gaining), 'row', 'rows')} of these the "
                 "optimum gains query heads "
                 "as the context grows ("
                 + "; ".join(f"at {format_number(r.target)} nats: {move_text(r, contexts)}" for r in gaining)
                 + "), against the paper's Table 4, where query heads too fall as the context grows; but the data "
                 f"do not resolve it: at {first} tokens the later optimum costs only {_pct_range(ratios)} more Z"
                 + (f", and some row gains heads in {_count(verdict.gaining_share, verdict.resamples)} seed-noise "
                    "refits." if verdict.resamples else "."))
    headline = f"{answer} ({runs_note})"
    if beyond and verdict.outcome != "shows" and any(r.move == "fewer" and r.tests for r in verdict.rows
                                                      if not r.inside):
        headline += (f"; at lower losses its fits extrapolate to the effect, with optima up to "
                     f"{_reach(study, verdict):.1f}× the largest size their configuration was trained at: an "
                     "extrapolation, not a result")
    takeaway = "Our designed study " + headline.format(it="the paper's effect") + "."
    return {"eff_verdict": text, "eff_stability": stable, "eff_why": why, "eff_beyond": beyond,
            "eff_headline": headline.format(it="it"), "eff_takeaway": takeaway}


def _stability(study: Study, verdict: Verdict) -> str:
    """How often seed-noise resamples reach the same outcome, at σ and at the upper end of its interval."""
    spreads = [c.spread for c in study.pilot.configurations]
    if not verdict.resamples:
        return ""
    count = _count(verdict.agreement, verdict.resamples)
    high = ("" if np.isnan(verdict.agreement_high) else
            f", and {_count(verdict.agreement_high, verdict.resamples)} at σ = {study.sigma_high:.4f}, the upper end "
            "of σ's 95% interval (a chi-square interval, which takes the configurations' seed variances as one; "
            f"their standard deviations run from {min(spreads):.4f} to {max(spreads):.4f})")
    return (f"Stability: {count[0].upper() + count[1:]} seed-noise refits reach the same verdict at σ = "
            f"{study.sigma:.4f} nats{high}. This measures how stable the verdict is under seed noise, not the "
            "chance that it is right: the missing runs and the form of the law are not in it.")


def _count(share: float, resamples: int) -> str:
    """A share of refits as a count, which never rounds 995 of 1,000 up to all: "995 of the 1,000"."""
    k = round(share * resamples)
    return f"all {resamples:,}" if k == resamples else f"{k:,} of the {resamples:,}"


def _gap_words(study: Study, grid_rows: Sequence[Row], contexts: Sequence[int]) -> str:
    """How much more Z the cheapest configuration with more KV heads costs than the optimum at the shortest
    context, over the given rows."""
    gaps = [g for g in (cost_gap(study.fits, r.target, contexts[0], study.setting) for r in grid_rows) if g]
    if not gaps:
        return ""
    ratios = [g[2] for g in gaps]
    others = sorted({g[1] for g in gaps}, key=lambda h: (-h[1], -h[0]))
    return (f"At {format_tokens(contexts[0])} tokens, the grid's shortest context, the cheapest configuration "
            f"with more KV heads, {' or '.join(pair(h) for h in others)}, costs {_pct_range(ratios)} more Z (the "
            "cost of Eq. 5) than the optimum.")


def _floor_words(study: Study, grid_rows: Sequence[Row], contexts: Sequence[int]) -> str:
    """Why rows sit at the fewest KV heads from the shortest context on: which configuration needs the fewest
    parameters for each target, what the optimum would be with no cache (a context of 1 token), and at which
    context the optimum reaches the fewest KV heads, with the Z gap at the shortest context."""
    floor_kv = min(h[1] for h in study.fits)
    fewest = {min(study.fits, key=lambda h: _size_or_inf(study.fits[h], r.target)) for r in grid_rows}
    bare = {search(study.fits, r.target, 1, study.setting)[0].heads for r in grid_rows}
    switches = [_first_context_at(study, r.target, floor_kv, contexts[0]) for r in grid_rows]
    order = lambda heads: sorted(heads, key=lambda h: (-h[1], -h[0]))  # noqa: E731
    more_kv_fewest = all(h[1] > floor_kv for h in fewest)
    parts = [f"At these losses {' or '.join(pair(h) for h in order(fewest))} needs the fewest parameters"
             + (", so the fits give more KV heads the lower loss per parameter" if more_kv_fewest else "")
             + f"; with no KV cache (a context of 1 token) the optimum would be "
             f"{' or '.join(pair(h) for h in order(bare))}."]
    if all(s is not None for s in switches):
        low, high = min(switches), max(switches)
        parts.append(f"The optimum has {floor_kv} KV head{'s' if floor_kv > 1 else ''} "
                     + (f"from {low:,} tokens on" if low == high else f"from between {low:,} and {high:,} tokens on")
                     + (f", below the {study.training_context:,} tokens the models were trained and evaluated at, "
                        "where no loss was measured." if high < study.training_context else "."))
        below = [[search(study.fits, r.target, c, study.setting)[0].heads for c in _doublings(contexts[0])]
                 for r in grid_rows]
        if all(kv_move(optima) == "fewer" for optima in below):
            parts.append(f"Below {contexts[0]:,} tokens, the fits do move the optimum to fewer KV heads as the context "
                         f"grows, in every one of these rows (at {format_number(grid_rows[0].target)} nats through "
                         + ", ".join(pair(h) for h in dict.fromkeys(below[0])) + "): the paper's effect"
                         + (", at contexts shorter than any this study measured."
                            if contexts[0] <= study.training_context else "."))
    return " ".join(parts + [_gap_words(study, grid_rows, contexts)])


def _doublings(upper: int) -> list[int]:
    """1, 2, 4, ... up to `upper` tokens, `upper` included."""
    out = [1]
    while out[-1] * 2 < upper:
        out.append(out[-1] * 2)
    return out + [upper]


def _size_or_inf(law: PowerLaw, target: float) -> float:
    return law.params_for_loss(target) if target > law.e else float("inf")


def _first_context_at(study: Study, target: float, kv: int, upper: int) -> int | None:
    """The shortest context (tokens, up to `upper`) at which the optimum for `target` has `kv` KV heads, by
    bisection (the optimum's KV heads fall with the context below `upper`); None when it has them already
    at 1 token or not yet at `upper`."""
    def at(context: int) -> bool:
        return search(study.fits, target, context, study.setting)[0].heads[1] <= kv

    if at(1) or not at(upper):
        return None
    low, high = 1, upper
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if at(mid) else (mid, high)
    return high


def _last(optima: Sequence[Heads | None]) -> Heads:
    return [h for h in optima if h is not None][-1]


def _pct(ratio: float) -> str:
    return f"{100 * (ratio - 1):.1f}%"


def _pct_range(ratios: Sequence[float]) -> str:
    low, high = _pct(min(ratios)), _pct(max(ratios))
    return low if low == high else f"{low} to {high}"


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _heads_grow(optima: Sequence[Heads | None]) -> bool:
    """Whether the optimum's n_h · n_kv grows anywhere along a row (the paper's Table 4 never does)."""
    total = [h[0] * h[1] for h in optima if h is not None]
    return any(b > a for a, b in zip(total, total[1:]))


def _reach(study: Study, verdict: Verdict) -> float:
    """How far the extrapolated rows' optima lie beyond the sizes their configuration was trained at: the
    largest N* over that configuration's largest trained N."""
    reach = 1.0
    for r in verdict.rows:
        if not r.inside:
            for h in {h for h in r.optima if h is not None}:
                law = study.fits[h]
                reach = max(reach, law.params_for_loss(r.target) / law.n_range[1])
    return reach


def _beyond(study: Study, verdict: Verdict, daggers: bool = True) -> str:
    """What the rows outside the common loss range show, labelled as extrapolation, with how far they reach
    and which configurations cannot reach their loss at all; `daggers`: the grid shown beside the words marks
    an extrapolated optimum with a dagger (the book's does, `gqa effect`'s table does not)."""
    outside = [r for r in verdict.rows if not r.inside]
    if not outside:
        return ""
    parts = [f"at {format_number(r.target)} nats the optimum would be {move_text(r, verdict.contexts)}"
             for r in outside]
    moving = sum(r.move == "fewer" and r.tests for r in outside)
    which = ("This row" if len(outside) == 1 else "Both rows" if moving == len(outside) == 2 else
             "All these rows" if moving == len(outside) else f"{moving} of these rows")
    shows = (f"{which} would show the effect, but {'it is' if len(outside) == 1 else 'they are'}" if moving else
             "These rows are")
    lowest = min(r.target for r in outside)
    unreachable = sorted((h for h, law in study.fits.items() if lowest <= law.e), key=lambda h: (-h[0], -h[1]))
    cannot = (" At " + format_number(lowest) + " nats " + " and ".join(
        f"{pair(h)} cannot reach the loss at all by its point fit (its fitted E is "
        f"{format_number(study.fits[h].e)}), though in {100 * np.mean(study.boot.samples[h][:, 2] < lowest):.0f}% of "
        "the seed-noise refits it can" for h in unreachable) + "." if unreachable else "")
    return ("At losses below the range every configuration reached, which need larger models than some "
            "configurations were trained at, the fits extrapolate"
            + (" (a dagger marks an optimum that does): " if daggers else ": ")
            + "; ".join(parts) + f". The optima there need up to {_reach(study, verdict):.1f}× the largest size "
            f"their configuration was trained at.{cannot} {shows} extrapolations, not results.")


def headline(profile: str = "study", pilot_profile: str = "study-pilot") -> str:
    """The verdict in one clause for the book's first page, from the point fits over the default grid (its
    stability is chapter 5's)."""
    study = load(profile, pilot_profile, resamples=1)
    verdict = None if study is None else assess(study.fits, None, default_targets(study.fits), CONTEXTS, study.setting)
    return verdict_words(study, verdict)["eff_headline"]
