"""The paper's published numbers, loaded from `data/paper/` (typed, with provenance)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gqa.paths import PAPER_DATA_DIR

if TYPE_CHECKING:
    import pandas as pd

DATA_DIR = PAPER_DATA_DIR


TOLERANCE_KINDS = ("absolute", "relative", "upper_bound")


@dataclass(frozen=True)
class Claim:
    """One numeric claim of the paper with the tolerance within which ours counts as reproducing it:
    `absolute` (|ours − value| <= tolerance), `relative` (<= tolerance·|value|) or `upper_bound`
    (ours <= value + tolerance: "under 10%" is held to the same ±5 points as the other shares). Every
    chapter and `gqa readings` judge a claim by these, so they agree."""

    id: str
    label: str
    value: float
    unit: str
    source: str
    description: str
    tolerance_kind: str = "absolute"
    tolerance: float = 0.0

    def judge(self, ours: float) -> str:
        """'reproduced' or 'differs' under the claim's tolerance."""
        if self.tolerance_kind == "upper_bound":  # "under x": reproduced up to x plus the tolerance
            return "reproduced" if ours <= self.value + self.tolerance else "differs"
        if self.tolerance_kind == "relative":
            return compare(self.value, ours, rel_tol=self.tolerance)
        return compare(self.value, ours, abs_tol=self.tolerance)

    def band(self) -> tuple[float, float]:
        """The interval of values `judge` calls reproduced (an upper bound's from 0)."""
        if self.tolerance_kind == "upper_bound":
            return (0.0, self.value + self.tolerance)
        if self.tolerance_kind == "relative":
            return (self.value - self.tolerance * abs(self.value), self.value + self.tolerance * abs(self.value))
        return (self.value - self.tolerance, self.value + self.tolerance)

    def tolerance_text(self) -> str:
        """How the tolerance reads in a table: ±0.05, ±10%, or upper bound."""
        if self.tolerance_kind == "upper_bound":
            return f"≤ +{self.tolerance:g}" if self.tolerance else "upper bound"
        return f"±{100 * self.tolerance:g}%" if self.tolerance_kind == "relative" else f"±{self.tolerance:g}"


def claims(path: Path | None = None) -> dict[str, Claim]:
    """Headline claims by id, from `data/paper/claims.csv`."""
    path = path or DATA_DIR / "claims.csv"
    if not path.exists():
        raise FileNotFoundError(f"paper data not found at {path}: run from a checkout of the repo")
    out = {}
    with path.open(newline="") as f:
        for line, row in enumerate(csv.DictReader(f), 2):
            try:
                claim = Claim(row["id"], row["label"], float(row["value"]), row["unit"], row["source"],
                              row["description"], row["tolerance_kind"], float(row["tolerance"]))
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"{path}:{line}: not a claim row ({type(e).__name__}: {e})") from None
            if claim.tolerance_kind not in TOLERANCE_KINDS:
                raise ValueError(f"{path}:{line}: tolerance_kind must be one of {', '.join(TOLERANCE_KINDS)}, "
                                 f"got {claim.tolerance_kind!r}")
            if not claim.tolerance >= 0:
                raise ValueError(f"{path}:{line}: tolerance must be a number >= 0, got {row['tolerance']!r}")
            out[claim.id] = claim
    return out


def compare(paper: float, ours: float, *, rel_tol: float = 0.0, abs_tol: float = 0.0) -> str:
    """'reproduced' when |ours - paper| <= max(rel_tol·|paper|, abs_tol), else 'differs'."""
    return "reproduced" if abs(ours - paper) <= max(rel_tol * abs(paper), abs_tol) else "differs"


def check_claim(claim: Claim, ours: float, how: str = "") -> dict:
    """One row of a paper-vs-ours table: the claim, both values, the status under the claim's own
    tolerance (from claims.csv) and how ours was got."""
    return {"claim": claim.label, "source": claim.source, "unit": claim.unit, "paper": claim.value,
            "ours": ours, "status": claim.judge(ours), "tolerance": claim.tolerance_text(), "ours, how": how}


def table(name: str) -> pd.DataFrame:
    """A typed table of the paper from `data/paper/<name>.csv` (table4, table5, table7, table9,
    appendix_i_fits) or the digitised Figure 2 points (fig2_points)."""
    import pandas as pd

    path = DATA_DIR / f"{name}.csv"
    if not path.exists():
        known = sorted(p.stem for p in DATA_DIR.glob("*.csv"))
        raise FileNotFoundError(f"no paper table {name!r} at {path}; known: {', '.join(known)}")
    try:
        frame = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as e:  # pandas' ParserError and EmptyDataError are ValueErrors
        raise ValueError(f"{path}: not a readable CSV table ({str(e).splitlines()[0]})") from None
    if frame.empty:
        raise ValueError(f"{path}: holds no rows")
    for column in NUMERIC_COLUMNS.get(name, ()):
        if column not in frame.columns:
            raise ValueError(f"{path}: no column {column!r}")
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = frame[column][values.isna() | ~values.map(lambda v: v == v and abs(v) != float("inf"))]
        if len(bad):
            line = int(bad.index[0]) + 2  # the header is line 1
            raise ValueError(f"{path}:{line}: column {column!r} needs a finite number, got {bad.iloc[0]!r}")
        frame[column] = values
        if column in COLUMN_RANGES:
            low, integral = COLUMN_RANGES[column]
            wrong = (values <= low) | ((values != values.round()) if integral else False)
            if wrong.any():
                line = int(frame.index[wrong][0]) + 2
                want = ("a whole number" if integral else "a number") + f" > {low:g}"
                raise ValueError(f"{path}:{line}: column {column!r} needs {want}, got {frame[column][wrong].iloc[0]!r}")
    if {"n_h", "n_kv"} <= set(frame.columns):
        wrong = (frame.n_h % frame.n_kv != 0)
        if wrong.any():
            r = frame[wrong].iloc[0]
            raise ValueError(f"{path}:{int(frame.index[wrong][0]) + 2}: n_h = {r.n_h:g} is not a multiple of "
                             f"n_kv = {r.n_kv:g} (each KV head serves n_h / n_kv query heads)")
    return frame


# What a column's values mean, checked when a table is read: (exclusive lower bound, whole numbers only).
COLUMN_RANGES = {"n_h": (0, True), "n_kv": (0, True), "context": (0, True), "train_context": (0, True),
                 "layers": (0, True), "d_model": (0, True), "x": (0, False), "loss": (0, False),
                 "target_loss": (0, False), "max_lr": (0, False)}

# Columns each table must hold as finite numbers (checked when the table is read).
NUMERIC_COLUMNS = {
    "fig2_points": ("n_h", "n_kv", "x", "loss"),
    "table4": ("target_loss", "context", "n_h", "n_kv"),
    "table7": ("layers", "d_model"),
    "table9": ("layers", "d_model", "max_lr"),
    "appendix_i_fits": ("train_context", "a", "b", "c"),
}
