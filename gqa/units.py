"""Parsing and formatting of token counts, bytes and FLOPs.

Token suffixes are binary, as context lengths are quoted: 128k = 131072, 1m = 1048576.
Bytes are formatted in decimal units (GB = 1e9 bytes), as the paper's figures are.
"""

from __future__ import annotations

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
            f"invalid token count {text!r}: use an integer with an optional k/m suffix "
            "(128k = 131072)"
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


def _scaled(value: float, units: list[tuple[float, str]], digits: int) -> str:
    for size, name in units:
        if abs(value) >= size:
            return f"{value / size:.{digits}f} {name}".rstrip()
    return f"{value:.{digits}f} {units[-1][1]}".rstrip()


def format_bytes(n: float, digits: int = 2) -> str:
    return _scaled(n, [(1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1, "B")], digits)


def format_count(n: float, digits: int = 2) -> str:
    """Large counts with SI prefixes: 1.04e9 -> '1.04 G'."""
    return _scaled(n, [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, "")], digits)
