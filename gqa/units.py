"""Parsing and formatting of token counts, bytes, FLOPs and plain numbers: the one number formatter.

Token suffixes are binary, as context lengths are quoted: 128k = 131072, 1m = 1048576.
Bytes are formatted in decimal units (GB = 1e9 bytes), as the paper's figures are.
Every formatter shows three significant digits (`SIGNIFICANT`) unless its caller asks for more, which it
does only where a claim needs them (two values that differ in the fourth digit); counts that are exact
integers keep every digit.
"""

from __future__ import annotations

import math
import re

_TOKEN_SUFFIX = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}
_TOKEN_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)\s*$", re.IGNORECASE)


def parse_tokens(text: str | int) -> int:
    """'131072', '128k', '1m', '1.5k' -> tokens. Raises ValueError naming the bad value."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"invalid token count {text!r}: must be >= 0")
        return text
    if re.match(r"^\s*-\s*\d", str(text)):
        raise ValueError(f"invalid token count {text!r}: must be >= 0")
    match = _TOKEN_RE.match(str(text))
    if not match:
        raise ValueError(
            f"invalid token count {text!r}: use a number with an optional k/m suffix "
            "(128k = 131072, 1.5k = 1536)"
        )
    number, scale = match.group(1), _TOKEN_SUFFIX[match.group(2).lower()]
    if "." not in number:  # integers stay exact (no detour through float)
        return int(number) * scale
    whole, frac = number.split(".")
    numerator = int(whole + frac) * scale
    denominator = 10 ** len(frac)
    if numerator % denominator:
        raise ValueError(f"invalid token count {text!r}: not a whole number of tokens")
    return numerator // denominator


def format_tokens(tokens: int) -> str:
    """131072 -> '128K' when exact, else the integer with thousands separators."""
    for suffix, size in (("M", 2**20), ("K", 2**10)):
        if tokens >= size and tokens % size == 0:
            return f"{tokens // size}{suffix}"
    return f"{tokens:,}"


SIGNIFICANT = 3


def format_number(x: float | int | None, digits: int = SIGNIFICANT) -> str:
    """A number as prose shows it: `digits` significant digits, trailing zeros kept (0.230 is not 0.23),
    thousands separators from 10,000 on, no exponent between 1e-4 and 1e15; an int keeps every digit (it
    is a count); None is 'n/a'. A value is never rounded up to a power of ten it does not reach (0.9996 is
    '0.9996', not '1.00'; 99.96 is '99.96', not '100'). 0.65904 -> '0.659', 39.481 -> '39.5',
    122528.3 -> '123,000', 2.41e-5 -> '2.41e-05'."""
    import math

    if x is None:
        return "n/a"
    if hasattr(x, "item") and callable(x.item) and not isinstance(x, (int, float)):
        x = x.item()  # a numpy scalar
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if math.isnan(x) or math.isinf(x):
        return str(x)
    if x == 0:
        return "0"
    rounded = float(f"{x:.{digits}g}")
    while digits < 8 and abs(rounded) != abs(x) and math.log10(abs(rounded)).is_integer() and abs(x) < abs(rounded):
        digits += 1  # 0.9996 rounds to 1: show the digit that says it is below
        rounded = float(f"{x:.{digits}g}")
    if 1e4 <= abs(rounded) < 1e15:
        return f"{rounded:,.0f}"
    if 1e-4 <= abs(rounded) < 1e4:
        return _plain(x, digits)
    return f"{rounded:.{digits - 1}e}"


def format_duration(seconds: float) -> str:
    """A wall time in the unit that reads best: '25.3 ms', '31 s', '4.50 min', '2.25 h' (three significant
    digits; below a millisecond, µs)."""
    if seconds < 1e-3:
        return f"{format_number(seconds * 1e6)} µs"
    if seconds < 1:
        return f"{format_number(seconds * 1e3)} ms"
    if seconds < 120:
        return f"{format_number(float(seconds))} s"
    if seconds < 2 * 3600:
        return f"{format_number(seconds / 60)} min"
    return f"{format_number(seconds / 3600)} h"


def _scaled(value: float, units: list[tuple[float, str]], digits: int) -> str:
    """`value` in the largest unit it reaches, to `digits` significant digits: 17.179e9 B -> '17.2 GB'."""
    rounded = float(f"{value:.{digits}g}")  # 999.96e6 rounds to 1.00e9: said as 1.00 G, not 1,000 M
    if abs(rounded) >= units[0][0] * 1000:  # beyond the largest unit: a power of ten, not '124000000000 P'
        return f"{rounded:.{digits - 1}e} {units[-1][1]}".rstrip()
    if abs(value) < units[-1][0] * 1000 and value == int(value):
        return f"{int(value)} {units[-1][1]}".rstrip()  # a small whole count: 5 B, 12
    for size, name in units:
        if abs(rounded) >= size:
            return f"{_plain(rounded / size, digits)} {name}".rstrip()
    return f"{_plain(value, digits)} {units[-1][1]}".rstrip()


def _plain(x: float, digits: int) -> str:
    """`digits` significant digits in positional notation, keeping trailing zeros: 1.0 -> '1.00'."""
    if x == 0:
        return "0"
    import math

    decimals = max(0, digits - 1 - math.floor(math.log10(abs(float(f"{x:.{digits}g}")))))
    return f"{x:.{decimals}f}"


def format_bytes(n: float, digits: int = SIGNIFICANT) -> str:
    """Bytes in decimal units to `digits` significant digits: 17179869184 -> '17.2 GB'."""
    return _scaled(n, [(1e15, "PB"), (1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1, "B")], digits)


def format_count(n: float, digits: int = SIGNIFICANT) -> str:
    """Large counts with SI prefixes to `digits` significant digits: 1.04e9 -> '1.04 G', 605.03e6 -> '605 M'."""
    return _scaled(n, [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, "")], digits)


def json_safe(value):
    """A value as strict JSON holds it: nan and inf become None, numpy scalars Python numbers, tuples and
    arrays lists, mappings and lists converted item by item (keys kept). The package's one JSON encoder."""
    if hasattr(value, "tolist") and type(value).__module__ == "numpy":  # numpy scalars and arrays
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def count_phrase(k: int, n: int, noun: str) -> str:
    """'all 5 sizes', 'none of the 5 sizes', '3 of the 5 sizes', 'both sizes', 'the only size'."""
    if n == 1:
        return f"the only {noun}" if k == 1 else f"not the only {noun}"
    if n == 2 and k == 2:
        return f"both {noun}s"
    if k == n:
        return f"all {n} {noun}s"
    if k == 0:
        return f"none of the {n} {noun}s"
    return f"{k} of the {n} {noun}s"


def signed(value: float, *, lower: str, higher: str, same: str) -> str:
    """Words for a signed difference: `lower`/`higher` are templates with {} for the magnitude, written by
    `format_number`; a positive value reads as `lower` (a saving), a negative one as `higher`."""
    if value > 0:
        return lower.format(format_number(float(value)))
    if value < 0:
        return higher.format(format_number(float(-value)))
    return same


def and_list(items) -> str:
    """Items in words: 'a', 'a and b', 'a, b and c'."""
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
