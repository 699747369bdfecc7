"""The book's exercises: each with the answer computed by the library, a tolerance, and a check.

Every chapter ends with exercises whose questions live in the chapter; this module holds what a check
needs: `gqa exercise check 1.1 122000` says whether an answer is right without ever printing the answer
(only "too high" or "too low" when it is not), `gqa exercise answer 1.1 --instructor` reveals it, and the
chapter's hidden solution shows the same computed value (a student build, `gqa book --profile student`,
leaves the solutions out). Each exercise states how long it takes on a 2-core laptop. Answers are numbers
(checked within a relative tolerance), words, or, for the conceptual questions (kind "concept", one per
chapter, multiple choice), the letter of the right option; words and letters are checked exactly, case,
spaces and parentheses ignored. A conceptual answer is computed where the library can decide it.
"""

from __future__ import annotations

import math
import re
import unicodedata
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
    kind: str = "numeric"  # "numeric" (a number or words) or "concept" (multiple choice: a letter)

    def answer(self) -> float | str:
        return self.solve()

    def check(self, given: str) -> tuple[bool, str]:
        """(right?, a one-line verdict). ValueError when a numeric exercise gets something not a number."""
        want = self.answer()
        if isinstance(want, str):
            spellings = [want, *(self.also() if self.also else ())]
            spellings += [re.sub(r"\s*\([^()]*\)\s*$", "", w) for w in spellings]  # without a closing "(...)"
            ok = bool(_words(given)) and _words(given) in {_words(w) for w in spellings}
            return ok, "right" if ok else "not yet: compare your answer with the chapter's hint and try again"
        try:
            value = float(given.replace(",", "").replace("_", ""))
        except ValueError:
            raise ValueError(f"exercise {self.id} wants a number ({self.unit}), got {given!r}") from None
        ok = math.isfinite(value) and abs(value - want) <= self.rel_tol * abs(want)
        if ok:
            return True, f"right (within {100 * self.rel_tol:g}% of the answer)"
        return False, f"not yet: {'too high' if value > want else 'too low'} by more than {100 * self.rel_tol:g}%"


def _words(text: str) -> str:
    """A word answer reduced to its letters and digits: case, spaces, punctuation, quotes (straight or
    curly) and symbols such as the middle dot ignored, and a leading "point: " label dropped, as the
    figures print it ("size to shape: Figure 2's family (d = 128·L)" -> "figure2sfamilyd128l")."""
    text = unicodedata.normalize("NFKC", str(text)).lower()
    text = re.sub(r"^[a-z ]+:\s*", "", text) if ":" in text[:20] else text
    return "".join(ch for ch in text if ch.isalnum())


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
    from gqa.config import wsd_lr

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
    return search.heads_text(search.search(src.fits, target, context, src.setting)[0].heads)


def _best_shape_rule_key() -> str:
    from gqa import readings

    frame = readings.evaluate(resamples=50).frame()
    return str(frame.groupby("size_to_shape").table4_agree.max().idxmax())


def _best_shape_rule() -> str:
    """The rule in plain words (its label in data/paper/readings.yaml); its key is accepted too."""
    from gqa import readings

    return readings.load_grid().points["size_to_shape"][_best_shape_rule_key()].label


def _which_term_shrinks() -> str:
    """1.3: from (32, 32) to (32, 8) on the paper's 1.2B backbone at 128K, which time-variant term shrinks:
    (a) the attention FLOPs, (b) the KV cache, (c) both, (d) neither."""
    from dataclasses import replace

    from gqa import cost
    from gqa.shapes import get_preset

    mha = replace(get_preset("paper-1.2b"), n_heads=32, n_kv_heads=32, head_dim=64)
    gqa = replace(mha, n_kv_heads=8)
    a, b = cost.inference_cost(mha, 131072), cost.inference_cost(gqa, 131072)
    flops, cache = b.flops_time_variant < a.flops_time_variant, b.memory_kv_cache < a.memory_kv_cache
    return {(True, False): "a", (False, True): "b", (True, True): "c", (False, False): "d"}[(flops, cache)]


def _decay_starts() -> str:
    """3.3: in a 1,000-step WSD run, after warm-up, the learning rate first falls below its maximum at
    (a) 10%, (b) 50%, (c) 80% or (d) 100% of the steps."""
    from gqa.config import wsd_lr

    peak = 3e-3
    first = next(step for step in range(200, 1000) if wsd_lr(step, 1000, peak) < peak)
    options = {"a": 100, "b": 500, "c": 800, "d": 1000}
    return min(options, key=lambda k: abs(options[k] - first))


def _what_e_is() -> str:
    """4.3: E in (a/N)^b + E is (a) the loss no size goes below, (b) the loss with no parameters, (c) the
    loss at N = a, (d) how fast the loss falls. Decided by the law itself: its loss at an enormous N, against E."""
    from gqa.scaling import PowerLaw

    law = PowerLaw(a=2.0e7, b=0.35, e=1.9)
    return "a" if abs(float(law.predict(1e40)) - law.e) < 1e-6 and float(law.predict(law.a)) == law.e + 1 else "c"


def _optimum_moves() -> str:
    """5.3: on the paper's Figure 2 fits at target loss 2.8, from 1K to 512K the optimum moves to (a) more
    KV heads and fewer parameters, (b) nowhere, (c) fewer heads and more parameters, (d) more query heads."""
    from gqa import search, sources

    src = sources.figure2(resamples=0)
    short, long = (search.search(src.fits, 2.8, t, src.setting)[0] for t in (1024, 524288))
    if short.heads == long.heads:
        return "b"
    if long.heads[1] > short.heads[1]:
        return "a"
    if long.heads[0] > short.heads[0]:
        return "d"
    return "c" if long.params > short.params else "?"


def _flops_saving_readings() -> float:
    from gqa import readings

    return float(readings.evaluate(resamples=50).verdict("fig1_flops_saving").reproduced_in)


EXERCISES: dict[str, Exercise] = {e.id: e for e in (
    Exercise("1.1", "01_cost_model", "context at which Llama-3.1-8B's bf16 KV cache equals its weights", "tokens",
             10, lambda: _kv_equals_weights("llama-3.1-8b", "bf16")),
    Exercise("1.2", "01_cost_model", "the same with an fp8 KV cache", "tokens", 5,
             lambda: _kv_equals_weights("llama-3.1-8b", "fp8")),
    Exercise("2.1", "02_attention", "bytes-over-bandwidth floor of a decode step, n_kv = 1, T = 32K, 40 GB/s",
             "ms", 5, lambda: _decode_floor_ms(1)),
    Exercise("2.2", "02_attention", "how many times the KV cache `repeat` allocates for n_h = 16, n_kv = 2",
             "times", 5, lambda: 16 // 2, rel_tol=0.05),
    Exercise("3.1", "03_training", "tokens a 2-layer, d = 64, (4, 1), d_h = 16 model trains on at 20 per parameter",
             "tokens", 5, _train_tokens),
    Exercise("3.2", "03_training", "learning rate at step 950 of a 1,000-step WSD run with max 3e-3", "", 5,
             lambda: _lr_at(0.95), rel_tol=0.03),  # 3%: the rate at step 950's start or end both pass
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
    # Conceptual questions, one per chapter: multiple choice, answered by a letter
    Exercise("1.3", "01_cost_model", "which time-variant term shrinks from (32, 32) to (32, 8)", "", 2,
             _which_term_shrinks, kind="concept"),
    Exercise("2.3", "02_attention", "what the `repeat` backend saves against MHA at decode", "", 2,
             lambda: "c", kind="concept"),
    Exercise("3.3", "03_training", "when a WSD schedule's learning rate starts to fall", "", 2, _decay_starts,
             kind="concept"),
    Exercise("4.3", "04_scaling_fits", "what E means in (a/N)^b + E", "", 2, _what_e_is, kind="concept"),
    Exercise("5.3", "05_cost_optimal", "where the optimum moves as the context grows", "", 2, _optimum_moves,
             kind="concept"),
    Exercise("6.3", "06_paper_check", "what a claim reproduced under some readings means", "", 2, lambda: "d",
             kind="concept"),
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
    from gqa.units import format_number

    return f"{format_number(value)} {exercise.unit}".strip()
