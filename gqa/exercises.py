"""The book's exercises: each with the answer computed by the library, a tolerance, and a check.

Every chapter ends with exercises whose questions live in the chapter; this module holds what a check
needs: `gqa exercise check 1.1 122000` says whether an answer is right, `gqa exercise answer 1.1` reveals
it, and the chapter's hidden solution shows the same computed value. Each exercise states how long it
takes on a 2-core laptop. Answers are numbers (checked within a relative tolerance) or words (checked
exactly, case and spaces ignored).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Exercise:
    id: str  # "<chapter number>.<index>", as the chapter prints it
    chapter: str  # notebook stem
    summary: str
    unit: str
    minutes: float  # time on a 2-core laptop, reading included
    solve: Callable[[], float | str]
    rel_tol: float = 0.02  # numeric answers
    also: Callable[[], tuple[str, ...]] | None = None  # other spellings a word answer may take

    def answer(self) -> float | str:
        return self.solve()

    def check(self, given: str) -> tuple[bool, str]:
        """(right?, a one-line verdict). ValueError when a numeric exercise gets something not a number."""
        want = self.answer()
        if isinstance(want, str):
            ok = _words(given) in {_words(w) for w in (want, *(self.also() if self.also else ()))}
            return ok, "right" if ok else "not yet: compare your answer with the chapter's hint and try again"
        try:
            value = float(given.replace(",", "").replace("_", ""))
        except ValueError:
            raise ValueError(f"exercise {self.id} wants a number ({self.unit}), got {given!r}") from None
        ok = math.isfinite(value) and abs(value - want) <= self.rel_tol * abs(want)
        if ok:
            return True, f"right (within {100 * self.rel_tol:g}% of {want:.4g} {self.unit})"
        return False, f"not yet: {'too high' if value > want else 'too low'} by more than {100 * self.rel_tol:g}%"


def _words(text: str) -> str:
    return "".join(str(text).lower().split()).replace("(", "").replace(")", "")


# --- Answers, computed ---------------------------------------------------------------------------------


def _kv_equals_weights(preset: str, kv_dtype: str) -> float:
    """The context at which a preset's KV cache (in kv_dtype) weighs as much as its bf16 weights."""
    from gqa import cost
    from gqa.shapes import get_preset

    shape = get_preset(preset)
    weights = cost.inference_cost(shape, 1, dtype="bf16").bytes_weights
    per_token = cost.inference_cost(shape, 1, dtype="bf16", kv_dtype=kv_dtype).bytes_kv_cache
    return weights / per_token


def _decode_floor_ms(n_kv: int, context: int = 32768, gb_s: float = 40.0) -> float:
    """Time to read one decode step's K and V (n_h = 16 irrelevant, d_h = 64, fp32) at gb_s GB/s, in ms."""
    return 2 * n_kv * context * 64 * 4 / (gb_s * 1e9) * 1e3


def _train_tokens() -> float:
    from gqa.shapes import Shape

    return 20 * Shape(2, 64, 4, 1, head_dim=16, vocab=2048).params().non_embedding


def _lr_at(fraction: float, steps: int = 1000, max_lr: float = 3e-3) -> float:
    from gqa.train import wsd_lr

    return wsd_lr(int(fraction * steps), steps, max_lr)


def _fit_exponent() -> float:
    from gqa.scaling import fit_power_law

    sizes = [1e5, 3e5, 1e6, 3e6, 1e7, 3e7]
    losses = [4.19, 3.68, 3.23, 2.95, 2.71, 2.55]
    return fit_power_law(sizes, losses).b


def _head_law_gain() -> float:
    law = lambda n: 0.301 * n**-0.227 + 2.622  # noqa: E731  (Appendix I, 1.2B, 1K context)
    return law(8) - law(32)


def _n_star() -> float:
    from gqa.scaling import PowerLaw

    return PowerLaw(a=2.0e7, b=0.35, e=1.9).params_for_loss(2.6)


def _plan_at(target: float, context: int) -> str:
    from gqa import search, sources

    src = sources.figure2(resamples=0)
    heads = search.search(src.fits, target, context, src.setting)[0].heads
    return f"{heads[0]},{heads[1]}"


def _best_shape_rule_key() -> str:
    from gqa import readings

    frame = readings.evaluate(resamples=50).frame()
    return str(frame.groupby("size_to_shape").table4_agree.max().idxmax())


def _best_shape_rule() -> str:
    """The rule in plain words (its label in data/paper/readings.yaml); its key is accepted too."""
    from gqa import readings

    return readings.load_grid().points["size_to_shape"][_best_shape_rule_key()].label


def _flops_saving_readings() -> float:
    from gqa import readings

    return float(readings.evaluate(resamples=50).verdict("fig1_flops_saving")["reproduced_in"])


EXERCISES: dict[str, Exercise] = {e.id: e for e in (
    Exercise("1.1", "01_cost_model", "context at which Llama-3.1-8B's bf16 KV cache equals its weights", "tokens",
             10, lambda: _kv_equals_weights("llama-3.1-8b", "bf16")),
    Exercise("1.2", "01_cost_model", "the same with an fp8 KV cache", "tokens", 5,
             lambda: _kv_equals_weights("llama-3.1-8b", "fp8")),
    Exercise("2.1", "02_attention", "bytes-over-bandwidth floor of a decode step, n_kv = 1, T = 32K, 40 GB/s",
             "ms", 5, lambda: _decode_floor_ms(1)),
    Exercise("2.2", "02_attention", "how many times the KV cache `repeat` allocates for n_h = 16, n_kv = 2",
             "times", 5, lambda: 16 / 2, rel_tol=0.05),
    Exercise("3.1", "03_training", "tokens a 2-layer, d = 64, (4, 1), d_h = 16 model trains on at 20 per parameter",
             "tokens", 5, _train_tokens),
    Exercise("3.2", "03_training", "learning rate at 95% of a 1,000-step WSD run with max 3e-3", "", 5,
             lambda: _lr_at(0.95)),
    Exercise("4.1", "04_scaling_fits", "exponent b of the law fitted to six given points", "", 10, _fit_exponent,
             rel_tol=0.05),
    Exercise("4.2", "04_scaling_fits", "loss Appendix I's 1.2B law saves going from 8 to 32 query heads", "nats",
             5, _head_law_gain),
    Exercise("5.1", "05_cost_optimal", "N* of a law (a = 2e7, b = 0.35, E = 1.9) at target loss 2.6",
             "non-embedding parameters", 5, _n_star),
    Exercise("5.2", "05_cost_optimal", "the configuration `gqa plan` recommends at loss 2.8 and 32K",
             "n_h,n_kv", 5, lambda: _plan_at(2.8, 32768)),
    Exercise("6.1", "06_paper_check", "the size-to-shape rule under which Table 4 agrees in the most cells",
             "", 5, _best_shape_rule, also=lambda: (_best_shape_rule_key(),)),
    Exercise("6.2", "06_paper_check", "how many readings reproduce the FLOPs saving", "readings", 5,
             _flops_saving_readings, rel_tol=0.0),
)}


def for_chapter(stem: str) -> list[Exercise]:
    return [e for e in EXERCISES.values() if e.chapter == stem]


def get(exercise_id: str) -> Exercise:
    if exercise_id not in EXERCISES:
        raise ValueError(f"no exercise {exercise_id!r}; known: {', '.join(EXERCISES)}")
    return EXERCISES[exercise_id]


def format_answer(exercise: Exercise) -> str:
    """The computed answer as a chapter's solution shows it."""
    value = exercise.answer()
    if isinstance(value, str):
        return value
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return f"{text} {exercise.unit}".strip()
