"""The book's exercises: answers computed by the library, checked by hand-derived numbers, each chapter's
questions and solutions in place, and `gqa exercise` telling right from wrong."""

import json
import math
import re
import sys
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
    cosine = 0.5 * (1 + math.cos(math.pi * 151 / 200))
    assert exercises.get("3.2").answer() == pytest.approx(floor + (peak - floor) * cosine)
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


def test_conceptual_questions_by_hand():
    # (32, 32) -> (32, 8): 4·T·L·d_h·n_h keeps n_h = 32, 2·T·L·d_h·n_kv falls fourfold: the KV cache only
    assert exercises.get("1.3").answer() == "b"
    # WSD: warm-up over the first 10%, constant, cosine decay over the last 20%: the rate falls at 80%
    assert exercises.get("3.3").answer() == "c"
    # (a/N)^b + E tends to E as N grows (option a); at N = a it is E + 1
    assert exercises.get("4.3").answer() == "a"
    # the paper's fits at loss 2.8: (8, 4) at 1K, (4, 1) with more parameters at 512K (Table 4's drift)
    assert exercises.get("5.3").answer() == "c"


def test_every_chapter_asks_a_conceptual_question_with_its_options():
    for stem in {e.chapter for e in exercises.EXERCISES.values()}:
        concept = [e for e in exercises.for_chapter(stem) if e.kind == "concept"]
        assert len(concept) == 1, stem
        e = concept[0]
        text = "".join("".join(c["source"]) for c in json.loads((NOTEBOOKS / f"{stem}.ipynb").read_text())["cells"]
                       if c["cell_type"] == "markdown")
        question = text[text.index(f"**{e.id}** (conceptual"):].split("```", 1)[0]
        assert all(f"({letter})" in question for letter in "abcd"), (stem, question)
        if not e.id.startswith("6."):
            assert e.answer() in "abcd" and len(e.answer()) == 1


@pytest.mark.parametrize("exercise_id", [e for e in exercises.EXERCISES if not e.startswith("6.")])
def test_the_check_never_prints_the_answer(exercise_id):
    e = exercises.get(exercise_id)
    want = e.answer()
    shown = exercises.format_answer(e).split()[0]  # the value as a solution prints it
    tries = [str(want)] if isinstance(want, str) else [f"{want:.6g}", str(want * 3), str(want / 3)]
    for given in tries + ["zz"] * isinstance(want, str):
        verdict = e.check(given)[1]
        for answer in {shown, f"{want}"}:
            assert not re.search(rf"(?<![\w.]){re.escape(answer)}(?![\w])", verdict), (given, verdict)


def test_answers_are_for_instructors(capsys):
    assert main(["exercise", "answer", "2.2"]) == 2
    err = capsys.readouterr().err
    assert "--instructor" in err and "gqa exercise check 2.2" in err and "8" not in err.replace("2.2", "")
    assert main(["exercise", "answer", "2.2", "--instructor"]) == 0
    assert capsys.readouterr().out.strip() == "2.2: 8 times"


def _chapter_markdown(stem: str) -> str:
    nb = json.loads((NOTEBOOKS / f"{stem}.ipynb").read_text())
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


def test_each_chapter_opens_with_objectives_prerequisites_and_a_reading_time():
    """The box under each chapter's title: three or more objectives, what it assumes, and a reading time
    within a factor of 1.6 of an estimate (200 words a minute, half a minute a figure)."""
    for path in sorted(NOTEBOOKS.glob("0[1-6]_*.ipynb")):
        text = _chapter_markdown(path.stem)
        box = text[text.index("```{admonition} In this chapter"):].split("\n```", 1)[0]
        assert text.index("```{admonition} In this chapter") < text.index("\n## "), path.stem  # before section 1
        learn = box[box.index("**You will learn to**"):box.index("**Before you start**")]
        assert len(re.findall(r"^- ", learn, re.M)) >= 3, path.stem
        stated = int(re.search(r"\*\*Reading time\*\*: about (\d+) minutes, and \{glue:text\}`ex_minutes` more", box)
                     .group(1))
        nb = json.loads(path.read_text())
        figures = sum("".join(c["source"]).count("record_panels(") for c in nb["cells"] if c["cell_type"] == "code")
        estimate = len(re.findall(r"[A-Za-z]+", text)) / 200 + 0.5 * figures
        assert estimate / 1.6 <= stated <= estimate * 1.6, (path.stem, stated, round(estimate, 1))


def test_the_teaching_plan_adds_up():
    """Two lectures whose segments add up to the lecture's length, every exercise set exactly once (in
    class or as homework), each from a chapter the lecture covers, and the in-class ones fitting their slot."""
    page = (NOTEBOOKS.parent / "book" / "teaching.md").read_text()
    lectures = re.split(r"^## (?=Lecture)", page, flags=re.M)[1:]
    assert len(lectures) == 2
    seen = []
    for lecture in lectures:
        length = int(re.search(r"\((\d+) minutes\)", lecture.splitlines()[0]).group(1))
        segments = [int(m) for m in re.findall(r"^- \*\*(\d+) min\*\*", lecture, re.M)]
        assert sum(segments) == length, (lecture.splitlines()[0], segments)
        in_class_line = next(line for line in lecture.splitlines() if "in class: exercises" in line)
        slot = int(re.search(r"\*\*(\d+) min\*\*", in_class_line).group(1))
        in_class = re.findall(r"\b(\d\.\d)\b", in_class_line.split("exercises", 1)[1])
        homework = re.findall(r"\b(\d\.\d)\b", next(line for line in lecture.splitlines()
                                                    if line.startswith("Homework: exercises")))
        assert sum(exercises.get(i).minutes for i in in_class) <= slot, in_class
        chapters = re.findall(r"\{doc\}`notebooks/(0\d)_", lecture.split("\n\n")[1])
        first, last = int(chapters[0]), int(chapters[-1])
        for i in in_class + homework:
            assert first <= int(i.split(".")[0]) <= last, (i, chapters)
        seen += in_class + homework
    assert sorted(seen) == sorted(exercises.EXERCISES), sorted(seen)


def test_teaching_recipe_runs_verbatim():
    import subprocess

    block = re.findall(r"```bash\n(.*?)```", (NOTEBOOKS.parent / "book" / "teaching.md").read_text(), re.S)
    assert len(block) == 1
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block[0]], cwd=NOTEBOOKS.parent, capture_output=True,
                          text=True, timeout=300, env={**__import__("os").environ,
                                                       "PATH": f"{Path(sys.executable).parent}:"
                                                               + __import__("os").environ["PATH"]})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "1.3: right" in proc.stdout and "1.3: b" in proc.stdout and "concept" in proc.stdout
