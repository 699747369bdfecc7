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


@dataclass(frozen=True)
class Claim:
    id: str
    label: str
    value: float
    unit: str
    source: str
    description: str


def claims(path: Path | None = None) -> dict[str, Claim]:
    """Headline claims by id, from `data/paper/claims.csv`."""
    path = path or DATA_DIR / "claims.csv"
    if not path.exists():
        raise FileNotFoundError(f"paper data not found at {path}: run from a checkout of the repo")
    out = {}
    with path.open(newline="") as f:
        for line, row in enumerate(csv.DictReader(f), 2):
            try:
                out[row["id"]] = Claim(row["id"], row["label"], float(row["value"]), row["unit"], row["source"],
                                       row["description"])
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"{path}:{line}: not a claim row ({type(e).__name__}: {e})") from None
    return out


def compare(paper: float, ours: float, *, rel_tol: float = 0.0, abs_tol: float = 0.0) -> str:
    """'reproduced' when |ours - paper| <= max(rel_tol·|paper|, abs_tol), else 'differs'."""
    return "reproduced" if abs(ours - paper) <= max(rel_tol * abs(paper), abs_tol) else "differs"


def check_claim(claim: Claim, ours: float, *, rel_tol: float = 0.0, abs_tol: float = 0.0,
                how: str = "") -> dict:
    """One row of a paper-vs-ours table: the claim, both values, the status and how ours was got."""
    return {"claim": claim.label, "source": claim.source, "unit": claim.unit, "paper": claim.value,
            "ours": ours, "status": compare(claim.value, ours, rel_tol=rel_tol, abs_tol=abs_tol),
            "tolerance": f"±{100 * rel_tol:g}%" if rel_tol else f"±{abs_tol:g}", "ours, how": how}


def table(name: str) -> "pd.DataFrame":
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
    return frame


# Columns each table must hold as finite numbers (checked when the table is read).
NUMERIC_COLUMNS = {
    "fig2_points": ("n_h", "n_kv", "x", "loss"),
    "table4": ("target_loss", "context", "n_h", "n_kv"),
    "table7": ("layers", "d_model"),
    "table9": ("layers", "d_model", "max_lr"),
    "appendix_i_fits": ("train_context", "a", "b", "c"),
}
