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

E_AT_BOUND = 1e-6  # a fitted E at or below this sits at the fit's lower bound, 0: the law is a pure power law


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
    bound = tuple(sorted((h for h, law in fits.items() if law.e <= E_AT_BOUND), key=lambda h: (-h[0], -h[1])))
    uppers = [boot.interval(h)["e"][1] for h in bound] if boot is not None and bound else []
    uppers = [u for u in uppers if u > E_AT_BOUND]  # an exact fit (as many sizes as constants) has no interval
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
