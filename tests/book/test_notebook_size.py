"""Notebooks are parameters, calls, plots and glue: at most 120 code lines each and 25 per cell (comments and
blank lines not counted), the analysis in tested library functions (the chapters' `*_words` modules, `plots`)."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
MAX_LINES, MAX_CELL = 120, 25


def _code_lines(notebook: Path) -> list[int]:
    cells = [c for c in json.loads(notebook.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    return [sum(1 for line in "".join(c["source"]).splitlines() if line.strip() and not line.strip().startswith("#"))
            for c in cells]


@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_a_notebook_is_parameters_calls_plots_and_glue(notebook):
    lines = _code_lines(notebook)
    assert sum(lines) <= MAX_LINES, f"{notebook.stem}: {sum(lines)} code lines (at most {MAX_LINES})"
    assert max(lines) <= MAX_CELL, f"{notebook.stem}: a cell of {max(lines)} code lines (at most {MAX_CELL})"
