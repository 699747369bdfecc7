"""What a value must be to mean something, declared once: each rule returns the problem in words (or None).

Every entry point checks its values with these rules and names where the value came from (a flag, a
profile's key, a line of a file): profiles (`gqa.profiles`), fits files (`gqa.sources`), the paper's
tables (`gqa.paper`), run records (`gqa.runs`). A rule takes the value as read (a YAML or JSON scalar), so
a boolean is never a number and a float with a fraction is never a count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

Rule = Callable[[object], "str | None"]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def whole(low: int | None = None, high: int | None = None) -> Rule:
    """A whole number (an int, or a float without a fraction) in [low, high]."""
    def rule(value: object) -> str | None:
        ok = _is_number(value) and float(value).is_integer() and (low is None or value >= low) and (
            high is None or value <= high)
        span = (f" in [{low:,}, {high:,}]" if low is not None and high is not None else
                f" >= {low:,}" if low is not None else "")
        return None if ok else f"expected a whole number{span}, got {value!r}"
    return rule


def number(above: float | None = None, at_most: float | None = None, at_least: float | None = None,
           below: float | None = None) -> Rule:
    """A finite number, with optional bounds: > above, >= at_least, < below, <= at_most."""
    def rule(value: object) -> str | None:
        ok = _is_number(value) and (above is None or value > above) and (at_least is None or value >= at_least) \
            and (below is None or value < below) and (at_most is None or value <= at_most)
        if ok:
            return None
        bounds = [f"> {above:g}" if above is not None else "", f">= {at_least:g}" if at_least is not None else "",
                  f"< {below:g}" if below is not None else "", f"<= {at_most:g}" if at_most is not None else ""]
        span = " and ".join(b for b in bounds if b)
        return f"expected a finite number{' ' + span if span else ''}, got {value!r}"
    return rule


POSITIVE = number(above=0)
COUNT = whole(1)
NON_NEGATIVE_COUNT = whole(0)


def one_of(allowed: Iterable[str], what: str = "one of") -> Rule:
    allowed = list(allowed)

    def rule(value: object) -> str | None:
        return None if value in allowed else f"unknown {value!r}; {what}: {', '.join(map(str, allowed))}"
    return rule


def heads(value: object) -> str | None:
    """[n_h, n_kv]: whole numbers >= 1, n_kv dividing n_h."""
    if not (isinstance(value, (list, tuple)) and len(value) == 2):
        return f"expected [n_h, n_kv], got {value!r}"
    if any(COUNT(v) for v in value):
        return f"expected two whole numbers >= 1, got {value!r}"
    n_h, n_kv = value
    if n_h % n_kv:
        return f"n_h = {n_h} is not a multiple of n_kv = {n_kv} (each KV head serves n_h / n_kv query heads)"
    return None


def each(item: Rule, what: str) -> Rule:
    """A non-empty list whose items each pass `item`."""
    def rule(value: object) -> str | None:
        if not isinstance(value, list) or not value:
            return f"expected a non-empty list of {what}, got {value!r}"
        for v in value:
            if (p := item(v)) is not None:
                return f"every item must be {what}: {p}"
        return None
    return rule


def increasing(item: Rule, what: str) -> Rule:
    """A non-empty list whose items each pass `item`, strictly increasing."""
    items = each(item, what)

    def rule(value: object) -> str | None:
        if (p := items(value)) is not None:
            return p
        if any(b <= a for a, b in zip(value, value[1:])):
            return f"{what} must grow from left to right, got {value!r}"
        return None
    return rule


def low_high(item: Rule, what: str) -> Rule:
    """[low, high]: two values that pass `item`, low <= high."""
    def rule(value: object) -> str | None:
        if not (isinstance(value, list) and len(value) == 2):
            return f"expected [low, high] of {what}, got {value!r}"
        for v in value:
            if (p := item(v)) is not None:
                return f"expected [low, high] of {what}: {p}"
        if value[0] > value[1]:
            return f"inverted: low {value[0]:g} > high {value[1]:g}"
        return None
    return rule


def optional(rule: Rule) -> Rule:
    """None, or a value that passes `rule`."""
    return lambda value: None if value is None else rule(value)


def check(value: object, rule: Rule, where: str) -> None:
    """ValueError "where: problem" when `value` breaks `rule`."""
    problem = rule(value)
    if problem is not None:
        raise ValueError(f"{where}: {problem}")
