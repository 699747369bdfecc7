"""The book's exercises: answers computed by the library, checked by hand-derived numbers, each chapter's
questions and solutions in place, and `gqa exercise` telling right from wrong."""

import json
import math
import re
from pathlib import Path

import pytest

from gqa import exercises
from gqa.cli import main

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def test_hand_derived_answers():
    # Llama-3.1-8B: 8,030,261,248 parameters less its 65·4096 norm weights; 2·32·128·8 cached values a token
    assert exercises.get("1.1").answer() == pytest.approx((8_030_261_248 - 65 * 4096) / (2 * 32 * 128 * 8))
    assert exercises.get("1.2").answer() == pytest.approx(2 * exercises.get("1.1").answer())
    assert exercises.get("2.1").answer() == pytest.approx(2 * 32768 * 64 * 4 / 40e9 * 1e3)
    # L = 2, d = 64, (4, 1), d_h = 16, d_ff = 192: 2·(4096 + 2048 + 4096 + 3·64·192) = 94,208 parameters
    assert exercises.get("3.1").answer() == 20 * 94_208
    floor, peak = 3e-4, 3e-3
    assert exercises.get("3.2").answer() == pytest.approx(floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * 151 / 200)))
    assert exercises.get("4.2").answer() == pytest.approx(0.301 * (8**-0.227 - 32**-0.227))
    assert exercises.get("5.1").answer() == pytest.approx(2e7 / 0.7 ** (1 / 0.35))


def test_every_chapter_asks_its_exercises_and_shows_their_solutions():
    stems = {e.chapter for e in exercises.EXERCISES.values()}
    assert stems == {p.stem for p in NOTEBOOKS.glob("0[1-6]_*.ipynb")}
    for stem in stems:
        nb = json.loads((NOTEBOOKS / f"{stem}.ipynb").read_text())
        text = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
        mine = exercises.for_chapter(stem)
        assert len(mine) >= 2
        for e in mine:
            key = "ex_" + e.id.replace(".", "_")
            assert f"**{e.id}**" in text and f"`{key}`" in text and f"`{key}_min`" in text, (stem, e.id)
        assert text.count(":class: dropdown") >= len(mine)  # solutions hidden until opened
    assert all(0 < e.minutes <= 30 for e in exercises.EXERCISES.values())


@pytest.mark.parametrize("exercise_id", [e for e in exercises.EXERCISES if not e.startswith("6.")])
def test_the_check_accepts_the_answer_and_rejects_others(exercise_id):
    e = exercises.get(exercise_id)
    want = e.answer()
    if isinstance(want, str):
        assert e.check(want.upper().replace(",", ", "))[0] and not e.check("1,1")[0]
    else:
        assert e.check(f"{want:,.6g}")[0]
        assert not e.check(str(want * (1 + 2 * e.rel_tol + 0.01)))[0]


def test_cli_exit_status_says_right_or_not(capsys):
    answer = exercises.get("2.2").answer()
    assert main(["exercise", "check", "2.2", str(answer)]) == 0
    assert main(["exercise", "check", "2.2", "4"]) == 1
    assert "not yet" in capsys.readouterr().out
    assert main(["exercise", "check", "2.2", "eight"]) == 2
    assert main(["exercise", "check", "9.9", "1"]) == 2
    assert "9.9" in capsys.readouterr().err
    assert main(["exercise", "list"]) == 0
    assert re.search(r"^1\.1 ", capsys.readouterr().out, re.M)


def test_a_figure_cell_shows_only_its_figure():
    """myst-nb wraps every rich output of a captioned cell in the figure: a second output (a table shown
    with display()) would repeat the figure's label, which fails the build under warnings-as-errors."""
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if (cell.get("metadata", {}).get("mystnb") or {}).get("figure"):
                source = "".join(cell["source"])
                assert "display(" not in source and ".style" not in source, (path.name, cell["id"])
