"""Does a study show the paper's effect: the cost-optimal head configuration moving to fewer KV heads as the
context grows?

The designed study (profile `study`) trains one seed per run; its pilot (profile `study-pilot`) measured how
far another seed moves one run's loss. This module fits the study's laws, propagates that seed noise into
them with a parametric bootstrap (`scaling.seed_bootstrap`), computes Table 4's grid around the study's
balance point and at the paper's contexts, and decides.

Conventions. A grid's rows are target losses (nats per token, high to low), its columns contexts (tokens,
short to long). A row *moves to fewer KV heads* when the optimum's n_kv never grows along the row and falls
at least once; it *keeps* them when n_kv is the same in every cell. The verdict is stated only over the rows
whose target every configuration's runs reached (inside all fits' loss ranges, so no optimum extrapolates a
fit), jointly: the study shows the effect when at least one such row moves to fewer KV heads and none moves
to more (or both ways). Its confidence is the share of seed resamples whose grid gives the same verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gqa import pilot, profiles, runs, sources
from gqa.config import sweep_configs
from gqa.optimum_words import kilo
from gqa.pilot import PilotResult
from gqa.scaling import Bootstrap, PowerLaw, fit_family, seed_bootstrap
from gqa.search import CostSetting, Heads, balance_context_of_shape, grid, search
from gqa.shapes import Shape, anchors_from_shapes
from gqa.units import format_count, format_number, format_tokens

MOVES = ("fewer", "same", "more", "both ways")
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
    """`n` target losses evenly spaced strictly inside the common loss range (high to low), rounded to three
    decimals inward; empty when the ranges do not overlap."""
    common = common_losses(fits)
    if common is None:
        return []
    lo, hi = common
    points = np.linspace(hi, lo, n + 2)[1:-1]
    return [t for t in (float(np.round(p, 3)) for p in points) if lo < t < hi]


@dataclass(frozen=True)
class Row:
    target: float  # nats per token
    optima: tuple[Heads | None, ...]  # one per context, short to long
    inside: bool  # every configuration's runs reached this loss
    move: str  # one of MOVES


def rows(cells: Mapping[tuple[float, int], Heads | None], targets: Sequence[float], contexts: Sequence[int],
         common: tuple[float, float] | None) -> tuple[Row, ...]:
    """A grid's rows, each with its move and whether its target lies inside the common loss range."""
    return tuple(Row(t, optima, common is not None and common[0] < t < common[1], kv_move(optima))
                 for t in targets for optima in [tuple(cells[(t, c)] for c in contexts)])


def shown(grid_rows: Iterable[Row]) -> bool:
    """The verdict over the rows inside the common range: some row moves to fewer KV heads, none the other way."""
    moves = {r.move for r in grid_rows if r.inside}
    return "fewer" in moves and not moves & {"more", "both ways"}


@dataclass(frozen=True)
class Verdict:
    contexts: tuple[int, ...]
    rows: tuple[Row, ...]  # every target of the grid, inside or not
    shown: bool  # over the rows inside the common loss range
    agreement: float  # share of seed resamples whose grid gives the same verdict
    resamples: int
    common: tuple[float, float] | None

    @property
    def inside(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.inside)

    def cells(self) -> dict[tuple[float, int], Heads | None]:
        """The grid as `search.grid` returns it: {(target, context): optimum}."""
        return {(r.target, c): h for r in self.rows for c, h in zip(self.contexts, r.optima)}


def assess(fits: Mapping[Heads, PowerLaw], boot: Bootstrap | None, targets: Sequence[float],
           contexts: Sequence[int], setting: CostSetting) -> Verdict:
    """The verdict of the point fits over a grid, and the share of the bootstrap's resamples (each a full set
    of laws) that reach the same verdict over the same inside targets (nan without a bootstrap)."""
    common = common_losses(fits)
    point_rows = rows(grid(fits, targets, contexts, setting), targets, contexts, common)
    verdict = shown(point_rows)
    if boot is None:
        return Verdict(tuple(contexts), point_rows, verdict, float("nan"), 0, common)
    inside = [r.target for r in point_rows if r.inside]
    agree = 0
    for i in range(boot.resamples):
        laws = boot.laws(i)
        agree += shown(rows(grid(laws, inside, contexts, setting), inside, contexts, common)) == verdict
    return Verdict(tuple(contexts), point_rows, verdict, agree / boot.resamples, boot.resamples, common)


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
    boot: Bootstrap  # the seed bootstrap
    pilot: PilotResult  # several seeds at one size: the seed noise the bootstrap draws
    setting: CostSetting

    @property
    def sigma(self) -> float:
        """Nats: the pilot's pooled seed standard deviation of one run's loss."""
        return self.pilot.pooled_sd

    @property
    def pilot_size(self) -> tuple[int, int]:
        return self.pilot.size

    def balance_span(self) -> tuple[float, float]:
        """The contexts (tokens) at which the trained models' KV cache weighs as much as their weights
        (Eq. 4, on their exact shapes): the smallest and the largest."""
        spans = [balance_context_of_shape(Shape(r["layers"], r["d_model"], r["n_heads"], r["n_kv_heads"],
                                                head_dim=r["head_dim"], d_ff=r["d_ff"], vocab=r["vocab"],
                                                tied=r["config"].get("tied", True)), self.setting)
                 for r in self.records]
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
    fits = fit_family(data)
    boot = seed_bootstrap(data, result.pooled_sd, resamples=resamples, seed=seed, point=fits)
    anchors = anchors_from_shapes(implied["sizes"])
    setting = CostSetting(head_dim=implied["head_dim"], vocab=implied["vocab"], dtype=dtype, anchors=anchors)
    return Study(profile, records, missing, data, fits, boot, result, setting)


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


def progress_words(recorded: int, missing: Sequence, profile: str = "study", provisional: bool = True) -> str:
    """How far a study's sweep has come: runs recorded of those planned, and which are still to train
    (`missing`: their TrainConfigs)."""
    done = f"{recorded} of the {recorded + len(missing)} runs profile {profile} plans are recorded"
    if not missing:
        return done + "."
    sizes = sorted({(c.layers, c.d_model) for c in missing})
    where = "; ".join(f"L = {layers}, d = {d}" for layers, d in sizes)
    return (f"{done}; {'the run' if len(missing) == 1 else f'the {len(missing)} runs'} at {where} "
            f"{'is' if len(missing) == 1 else 'are'} still training "
            f"(the command gqa sweep --profile {profile} resumes them)"
            + (", so what follows is provisional" if provisional else "") + ".")


def study_words(study: Study | None, profile: str = "study") -> dict[str, str]:
    """The sentences about a designed study itself: how far its sweep has come (`eff_progress`), the sizes its
    fits span (`eff_span`), the seed noise propagated into them (`eff_noise`) and the contexts at which its
    models' KV cache weighs as much as their weights (`eff_balance`)."""
    records, missing = runs.records_for(sweep_configs(profiles.load(profile).section("sweep")))
    progress = progress_words(len(records), missing, profile, provisional=study is not None)
    if study is None:
        return {"eff_progress": progress + " The fits wait until every configuration has runs at three sizes and "
                "the pilot has decided.", "eff_span": "", "eff_noise": "", "eff_balance": ""}
    lo_n = min(f.n_range[0] for f in study.fits.values())
    hi_n = max(f.n_range[1] for f in study.fits.values())
    low, high = study.balance_span()
    return {
        "eff_progress": progress,
        "eff_span": (f"{format_count(lo_n)} to {format_count(hi_n)} non-embedding parameters, "
                     f"{_span(study.fits):.1f}× in size"),
        "eff_noise": (f"every run's loss moved by a normal draw with the pilot's pooled seed standard deviation, "
                      f"{study.sigma:.4f} nats (measured at L = {study.pilot_size[0]}, d = {study.pilot_size[1]} "
                      f"and assumed the same at every size), {study.boot.resamples:,} resamples"),
        "eff_balance": f"{kilo(low)} to {kilo(high)} tokens",
    }


def verdict_words(study: Study | None, verdict: Verdict | None) -> dict[str, str]:
    """The verdict in words (`eff_verdict`), why (`eff_why`), what the extrapolated rows would say
    (`eff_beyond`), and the short forms for takeaways (`eff_takeaway`, `eff_short`)."""
    if study is None or verdict is None:
        wait = "The verdict waits until every configuration has runs at three sizes and the pilot has decided."
        return {"eff_verdict": wait, "eff_why": "", "eff_beyond": "", "eff_takeaway": wait,
                "eff_short": "not decided yet", "eff_headline": "has not decided yet: too few runs are recorded"}
    contexts = verdict.contexts
    first, last = format_tokens(contexts[0]), format_tokens(contexts[-1])
    agree = f"{100 * verdict.agreement:.0f}% of the {verdict.resamples:,} seed resamples reach the same verdict"
    inside = verdict.inside
    status = f"provisional: {len(study.missing)} runs still training" if study.missing else "every planned run"
    if not inside:
        text = ("No target loss lies inside the losses every configuration reached, so every row extrapolates "
                "some fit and the study cannot decide yet.")
        return {"eff_verdict": text, "eff_why": "", "eff_beyond": _beyond(verdict),
                "eff_takeaway": f"Our designed study cannot decide yet ({status}).", "eff_short": "cannot decide yet",
                "eff_headline": "cannot decide yet: no target loss lies inside every configuration's losses"}
    lo, hi = verdict.common
    over = (f"at the {len(inside)} target losses inside the range every configuration's runs reached "
            f"({format_number(lo)} to {format_number(hi)} nats)")
    if verdict.shown:
        moving = [r for r in inside if r.move == "fewer"]
        text = (f"Yes, {over}: the optimum moves to fewer KV heads as the context grows from {first} to {last} in "
                f"{len(moving)} of the {len(inside)} rows, and in none does it move to more; {agree}.")
        why = " ".join(f"At {format_number(r.target)} nats: {move_text(r, contexts)}." for r in moving)
        short = "shows the effect"
    else:
        if all(r.move == "same" for r in inside):
            kept = sorted({h[1] for r in inside for h in r.optima if h is not None})
            how = f"keeps n_kv = {', '.join(map(str, kept))} at every context from {first} to {last}"
        else:
            tally = {m: sum(r.move == m for r in inside) for m in MOVES}
            how = (f"moves to fewer KV heads as the context grows from {first} to {last} in {tally['fewer']} rows, "
                   f"keeps them in {tally['same']} and moves to more (or both ways) in "
                   f"{tally['more'] + tally['both ways']}")
        text = f"No, not within the sizes trained: {over}, the optimum {how}; {agree}."
        gaps = [g for g in (cost_gap(study.fits, r.target, contexts[0], study.setting) for r in inside) if g]
        why = ""
        if gaps:
            ratios = [g[2] for g in gaps]
            others = sorted({g[1] for g in gaps}, key=lambda h: (-h[1], -h[0]))
            why = (f"Even at {first} tokens, where the cache weighs least, the cheapest configuration with more KV "
                   f"heads, {' or '.join(pair(h) for h in others)}, costs {_pct(min(ratios))} to {_pct(max(ratios))} "
                   "more Z than the optimum: in these fits the loss that more KV heads buy does not repay the "
                   "parameters and cache they add.")
        short = "does not show the effect within the sizes trained"
    beyond = [r for r in verdict.rows if not r.inside and r.move == "fewer"]
    headline = (f"{short} so far ({len(study.records)} of {len(study.records) + len(study.missing)} runs, "
                f"{_span(study.fits):.1f}× in size)" if study.missing else
                f"{short} ({len(study.records)} runs, {_span(study.fits):.1f}× in size)")
    if beyond and not verdict.shown:
        headline += "; below the losses every configuration reached, its fits extrapolate to the effect"
    gaining = [r for r in inside if _heads_grow(r.optima)]
    if gaining:
        text += (f" In {len(gaining)} of these rows the optimum gains query heads as the context grows ("
                 + "; ".join(move_text(r, contexts) for r in gaining)
                 + "), against the paper's pattern of fewer heads at longer contexts.")
    takeaway = (f"Our designed study ({len(study.records)} runs, {_span(study.fits):.1f}× in size) "
                f"{short}: {agree} ({status}).")
    return {"eff_verdict": text, "eff_why": why, "eff_beyond": _beyond(verdict), "eff_takeaway": takeaway,
            "eff_short": short, "eff_headline": headline}


def _heads_grow(optima: Sequence[Heads | None]) -> bool:
    """Whether the optimum's n_h · n_kv grows anywhere along a row (the paper's pattern never does)."""
    total = [h[0] * h[1] for h in optima if h is not None]
    return any(b > a for a, b in zip(total, total[1:]))


def _pct(ratio: float) -> str:
    return f"{100 * (ratio - 1):.1f}%"


def _beyond(verdict: Verdict) -> str:
    """What the rows outside the common loss range show, labelled as extrapolation."""
    outside = [r for r in verdict.rows if not r.inside]
    if not outside:
        return ""
    parts = [f"at {format_number(r.target)} nats the optimum would be {move_text(r, verdict.contexts)}"
             for r in outside]
    return ("Outside the losses every configuration reached, some fits extrapolate (a dagger marks an optimum "
            "that does): " + "; ".join(parts) + ". These rows are extrapolations, not results.")


def headline(profile: str = "study", pilot_profile: str = "study-pilot") -> str:
    """The verdict in one clause for the book's first page, from the point fits over the default grid (no
    seed resamples, so no confidence: chapter 5 states that)."""
    study = load(profile, pilot_profile, resamples=1)
    verdict = None if study is None else assess(study.fits, None, default_targets(study.fits), CONTEXTS, study.setting)
    return verdict_words(study, verdict)["eff_headline"]
