"""What chapter 4 says about the loss laws fitted to a recorded study: the table of fits, where E sits at its
lower bound, the trained models costed at the chapter's context, and which configuration the fits size
cheapest at the study's median loss.

Records are run records (`gqa.runs`); fits are `scaling.PowerLaw` per head configuration H = (n_h, n_kv),
L(N) = (a/N)^b + E with N the non-embedding parameters; costs from `gqa.cost` at T tokens in the given dtype.
Counts are returned as ints (as the book glues them), everything else as text.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

import pandas as pd

from gqa import cost, search
from gqa.scaling import Bootstrap, PowerLaw, ols_check
from gqa.search import Heads
from gqa.shapes import record_shape
from gqa.study_limits import E_AT_BOUND, e_at_bound
from gqa.units import format_number


def _exact(sizes: Sequence[float], shared_e: bool) -> bool:
    """As many distinct sizes as free constants (b and a, and E unless shared): the fit passes through every
    point, so resampling gives no interval."""
    return len(set(sizes)) <= (2 if shared_e else 3)


def _bound(value: float) -> str:
    return "0" if abs(value) < E_AT_BOUND else format_number(value)


def fit_table(fits: Mapping[Heads, PowerLaw], boot: Bootstrap, data: Mapping, shared_e: bool,
              seed_noise: bool = False) -> pd.DataFrame:
    """One row per configuration (most heads first): runs, a, b and E with 95% bootstrap intervals ("n/a" for
    an exact fit when the bootstrap resamples runs; a seed bootstrap, `seed_noise`, gives every fit one; E at
    its bound written 0), R² and b from statsmodels' OLS on log(L − E) as a cross-check (both left out of a
    seed-noise table whose fits are all exact, where they say nothing, as is the runs column then)."""
    rows, sep = [], "\n" if seed_noise else " "
    for h in sorted(fits, key=lambda h: (-h[0], -h[1])):
        f, ci = fits[h], boot.interval(h)
        exact = _exact(data[h][0], shared_e) and not seed_noise

        def interval(name: str) -> str:  # on a line of its own in a seed-noise table (narrow enough for a phone)
            return " [n/a]" if exact else f"{sep}[{_bound(ci[name][0])}, {_bound(ci[name][1])}]"

        rows.append({"(n_h, n_kv)": f"({h[0]}, {h[1]})", "runs": f.n_points, "a": f"{format_number(f.a)}",
                     "b": f"{format_number(f.b)}{interval('b')}", "E": f"{_bound(f.e)}{interval('e')}",
                     "R²": f"{f.r2:.4f}", "b by OLS on log(L − E)": f"{format_number(ols_check(f, *data[h])['b'])}"})
    table = pd.DataFrame(rows).set_index("(n_h, n_kv)")
    if seed_noise and all(_exact(data[h][0], shared_e) for h in fits):  # R² is 1 and OLS repeats b by construction
        table = table.drop(columns=["runs", "R²", "b by OLS on log(L − E)"])  # and every row has three runs
    table = table.rename(columns={"a": "a (parameters)", "E": "E (nats/token)"})
    table.index.name, table.columns.name = None, "(n_h, n_kv)"  # one header row, its label in the corner
    return table


def fit_words(fits: Mapping[Heads, PowerLaw], boot: Bootstrap, data: Mapping, runs: int, shared_e: bool,
              resamples: int) -> dict[str, str | int]:
    """The fits in numbers and sentences: configurations, runs, the worst R², how many fits are exact, and
    which configurations' E sits at its lower bound (with their upper 95% limits where they have intervals)."""
    at_bound, uppers = e_at_bound(fits, boot)
    none_at_bound = "Every configuration's E lies above its lower bound."
    return {
        "n_configs": len(fits), "n_runs": runs, "min_r2": f"{min(f.r2 for f in fits.values()):.4f}",
        "resamples": resamples, "n_exact": sum(_exact(data[h][0], shared_e) for h in fits),
        "e_bound_short": (f"For {len(at_bound)} of the {len(fits)} configurations E sits at its lower bound, 0: pure "
                          "power laws with no floor, so sizes inverted from them are what the power law says."
                          if at_bound else none_at_bound),
        "e_bound_sentence": (
            f"E sits at its lower bound, 0, for {len(at_bound)} of the {len(fits)} configurations "
            f"({', '.join(f'({a}, {b})' for a, b in at_bound)}"
            + (f"; 95% intervals [0, {format_number(min(uppers))}] to [0, {format_number(max(uppers))}]"
               if uppers else "")
            + "): for them the law is a pure power law, L = (a/N)^b, with no floor, and every size N* inverted from "
            "it in the next chapter inherits that. The data cannot tell where the floor is." if at_bound
            else none_at_bound),
    }


def record_points(records: Sequence[dict], heads: Sequence[Heads], context: int,
                  dtype: str) -> dict[str, dict[Heads, tuple[list, list]]]:
    """Each trained model costed at `context` (its own shape, tied or not) against its validation loss, per
    quantity (memory_bytes, flops, z) and configuration: the dots of the chapter's Figure 2."""
    points: dict = {q: {} for q in ("memory_bytes", "flops", "z")}
    for h in heads:
        mine = [r for r in records if (r["n_heads"], r["n_kv_heads"]) == h]
        costs = [cost.inference_cost(record_shape(r), context, dtype=dtype) for r in mine]
        loss = [r["val_loss"] for r in mine]
        points["memory_bytes"][h] = ([c.bytes_total for c in costs], loss)
        points["flops"][h] = ([c.flops for c in costs], loss)
        points["z"][h] = ([c.z for c in costs], loss)
    return points


def fitted_curves(fits: Mapping[Heads, PowerLaw], boot: Bootstrap, data: Mapping, context: int,
                  setting: search.CostSetting):
    """The fitted curves of the chapter's Figure 2, from 0.7 x to 3 x the sizes each fit saw (dashed
    outside them)."""
    return search.fitted_curves(fits, boot, context, setting, lambda h, law: (min(data[h][0]) * 0.7,
                                                                             max(data[h][0]) * 3))


def median_check_words(fits: Mapping[Heads, PowerLaw], records: Sequence[dict], context: int,
                       setting: search.CostSetting) -> dict[str, str]:
    """At the study's median loss: the configuration the fits size with the least memory, the fewest FLOPs
    and the most parameters (configurations whose E lies at or above that loss cannot reach it)."""
    check_loss = float(statistics.median(r["val_loss"] for r in records))
    sized = {h: search.cost_at(h, law.params_for_loss(check_loss), context, setting)
             for h, law in fits.items() if law.e < check_loss}

    def named(c) -> str:
        return f"({c.heads[0]}, {c.heads[1]})"

    return {"check_loss": format_number(check_loss),
            "least_memory": named(min(sized.values(), key=lambda c: c.memory)),
            "least_flops": named(min(sized.values(), key=lambda c: c.flops)),
            "most_params": named(max(sized.values(), key=lambda c: c.params))}
