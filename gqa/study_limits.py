"""What a recorded tiny study can and cannot show, computed from its run records and fits.

Chapter 3's box "What the tiny study can and cannot show" (linked from chapters 4 and 5) states these
limits; each is a number here, so the box follows the records. Sizes N are non-embedding parameters;
losses in nats per token; contexts in tokens.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gqa.scaling import Bootstrap, PowerLaw
from gqa.search import Heads
from gqa.shapes import Shape
from gqa.units import format_number

E_AT_BOUND = 1e-6  # a fitted E at or below this sits at the fit's lower bound, 0: the law is a pure power law


def e_at_bound(fits: dict[Heads, PowerLaw], boot: Bootstrap | None) -> tuple[list[Heads], list[float]]:
    """The configurations whose fitted E sits at its lower bound (in the fits' order), and the upper 95%
    bootstrap limits of their E, leaving out exact fits (as many sizes as constants), which have none."""
    bound = [h for h, law in fits.items() if law.e <= E_AT_BOUND]
    uppers = [boot.interval(h)["e"][1] for h in bound] if boot is not None else []
    return bound, [u for u in uppers if u > E_AT_BOUND]


@dataclass(frozen=True)
class StudyLimits:
    runs: int
    train_contexts: tuple[int, ...]  # the contexts the runs were trained at
    seeds_per_model: int  # the most runs of one configuration at one size (different seeds)
    steps: tuple[int, int]  # fewest and most optimizer steps of a run
    learning_rates: tuple[float, ...]  # the peak learning rates used
    embedding_heavier: int  # runs whose embedding holds more parameters than the rest of the model
    vocab: int
    widest: int  # the largest d of the study
    max_heads: int  # the largest n_h of the study
    query_width: int  # n_h·d_h of its largest n_h
    head_growth: tuple[float, float]  # parameters added going from n_h = 1 to the largest n_h (n_kv = 1), over sizes
    paper_head_growth: float  # the same on the paper's 1.2B backbone (L = 36, d = 1536, d_h = 64)
    e_at_bound: tuple[Heads, ...]  # configurations whose fitted E sits at its lower bound
    e_upper: tuple[float, float]  # the range of their upper 95% bootstrap limits on E (nan: no interval)
    configurations: int
    median_loss: float
    most_params: Heads  # the configuration the fits size largest at the median loss
    fewest_params: Heads
    # With one KV head: N* of the most query heads over N* of the fewest at the median loss (the paper's premise
    # is that heads buy loss, so the ratio is below 1), and its 95% bootstrap interval (nan: no bootstrap)
    heads_pair: tuple[Heads, Heads] | None = None
    heads_ratio: float = float("nan")
    heads_ratio_interval: tuple[float, float] = (float("nan"), float("nan"))


def study_limits(records: Sequence[dict], fits: dict[Heads, PowerLaw], boot: Bootstrap | None) -> StudyLimits:
    """The limits of a study from its records (as `gqa.runs.study_records` returns them) and its fits."""
    if not records:
        raise ValueError("no run records: a study without runs has no limits to state")
    per_model = Counter((r["n_heads"], r["n_kv_heads"], r["layers"], r["d_model"]) for r in records)
    embedding = [r["n_total"] - r["n_non_embedding"] for r in records]
    head_dim = int(records[0]["head_dim"])
    max_heads = max(int(r["n_heads"]) for r in records)
    sizes = sorted({(int(r["layers"]), int(r["d_model"])) for r in records})
    growth = [Shape(L, d, max_heads, 1, head_dim=head_dim).params().non_embedding
              / Shape(L, d, 1, 1, head_dim=head_dim).params().non_embedding - 1 for L, d in sizes]
    paper = Shape(36, 1536, max_heads, 1).params().non_embedding / Shape(36, 1536, 1, 1).params().non_embedding - 1
    bound, uppers = e_at_bound(fits, boot)
    bound = tuple(sorted(bound, key=lambda h: (-h[0], -h[1])))
    median = statistics.median(r["val_loss"] for r in records)
    sized = {h: law.params_for_loss(median) for h, law in fits.items() if law.e < median}
    ones = sorted(h for h in sized if h[1] == 1)
    pair, ratio, interval = None, float("nan"), (float("nan"), float("nan"))
    if len(ones) >= 2 and ones[0][0] != ones[-1][0]:
        pair = (ones[-1], ones[0])
        ratio = sized[pair[0]] / sized[pair[1]]
        if boot is not None:
            drawn = [boot.laws(i) for i in range(boot.resamples)]
            ratios = [d[pair[0]].params_for_loss(median) / d[pair[1]].params_for_loss(median) for d in drawn
                      if d[pair[0]].e < median and d[pair[1]].e < median]
            if ratios:
                interval = tuple(float(x) for x in np.percentile(ratios, [2.5, 97.5]))
    return StudyLimits(
        runs=len(records),
        train_contexts=tuple(sorted({int(r["config"]["context"]) for r in records})),
        seeds_per_model=max(per_model.values()),
        steps=(min(int(r["steps"]) for r in records), max(int(r["steps"]) for r in records)),
        learning_rates=tuple(sorted({float(r["config"]["lr"]) for r in records})),
        embedding_heavier=sum(e > r["n_non_embedding"] for e, r in zip(embedding, records)),
        vocab=int(records[0]["vocab"]),
        widest=max(d for _, d in sizes), max_heads=max_heads, query_width=max_heads * head_dim,
        head_growth=(min(growth), max(growth)), paper_head_growth=paper,
        e_at_bound=bound, e_upper=(min(uppers), max(uppers)) if uppers else (float("nan"), float("nan")),
        configurations=len(fits), median_loss=median,
        most_params=max(sized, key=sized.get), fewest_params=min(sized, key=sized.get),
        heads_pair=pair, heads_ratio=ratio, heads_ratio_interval=interval)


LIMIT_KEYS = ("lim_context", "lim_seeds", "lim_steps", "lim_embedding", "lim_width", "lim_e", "lim_premise")


def words(lim: StudyLimits | None) -> dict[str, str]:
    """Each limit as the clause chapter 3's box states it (keys `lim_context` ... `lim_premise`); None, a study
    without runs, gives "no runs recorded" for each. The premise clause says whether the 95% bootstrap interval
    of the parameter ratio lies above 1 (more query heads need more parameters: the opposite of the paper's
    premise), below 1 (the premise holds) or around 1 (the study cannot tell)."""
    if lim is None:
        return dict.fromkeys(LIMIT_KEYS, "no runs recorded")
    rates = (f"one peak learning rate ({lim.learning_rates[0]:g}) for every size" if len(lim.learning_rates) == 1
             else f"peak learning rates {', '.join(f'{x:g}' for x in lim.learning_rates)}")
    e_interval = (f"; upper 95% limits {format_number(lim.e_upper[0])} to {format_number(lim.e_upper[1])}"
                  if lim.e_upper[0] == lim.e_upper[0] else "; as many sizes as constants, so no interval")
    return {
        "lim_context": (f"every run was trained at a context of {', '.join(map(str, lim.train_contexts))} tokens, but "
                        "chapters 4 and 5 cost the models at 8K to 128K: there only the cost model speaks, not the "
                        "training"),
        "lim_seeds": (f"{lim.seeds_per_model} seed per configuration and size ({lim.runs} runs), so a difference "
                      "between head configurations at one size cannot be set against seed noise"
                      if lim.seeds_per_model == 1 else
                      f"up to {lim.seeds_per_model} seeds per configuration and size ({lim.runs} runs)"),
        "lim_steps": f"{lim.steps[0]:,} to {lim.steps[1]:,} optimizer steps, with {rates}, not tuned per size",
        "lim_embedding": (f"the embedding (vocabulary {lim.vocab:,}, tied, counted once) holds more parameters "
                          f"than the rest of the model in {lim.embedding_heavier} of {lim.runs} runs; N counts only "
                          "the rest"),
        "lim_width": (f"the widest model has d = {lim.widest}, "
                      + ("below" if lim.widest < lim.query_width else "not above")
                      + f" n_h·d_h = {lim.query_width} at the largest n_h, so going from 1 to {lim.max_heads} query "
                      f"heads adds {100 * lim.head_growth[0]:.0f}–{100 * lim.head_growth[1]:.0f}% parameters at a "
                      f"fixed depth and width (from 1 to {lim.max_heads} on the paper's 1.2B backbone, "
                      f"{100 * lim.paper_head_growth:.0f}%)"),
        "lim_e": (f"E sits at its lower bound, 0, for {len(lim.e_at_bound)} of the {lim.configurations} configurations "
                  f"({', '.join(f'({a}, {b})' for a, b in lim.e_at_bound)}{e_interval}): these laws are pure power "
                  "laws with no floor, so every size N* inverted from them follows the power law to any target, "
                  "however low" if lim.e_at_bound else "no configuration's E sits at its lower bound"),
        "lim_premise": _premise(lim),
    }


def _premise(lim: StudyLimits) -> str:
    if not lim.heads_pair:
        return "the study has no two query-head counts with one KV head to compare"
    (many, few), (lo, hi) = lim.heads_pair, lim.heads_ratio_interval
    if lo <= 1 <= hi or lo != lo:
        verdict = (": the study cannot tell whether more query heads save parameters at equal loss, the paper's "
                   "premise, so it neither supports nor contradicts it")
    elif lo > 1:
        verdict = ": more query heads need more parameters here, the opposite of the paper's premise"
    else:
        verdict = ": more query heads save parameters here, as the paper's premise has it"
    return (f"at the study's median loss ({format_number(lim.median_loss)}) the fits need "
            f"{format_number(lim.heads_ratio)} times as many parameters for ({many[0]}, {many[1]}) as for "
            f"({few[0]}, {few[1]})" + (f" (95% bootstrap interval {format_number(lo)}–{format_number(hi)})"
                                       if lo == lo else "") + verdict)
