"""What a chapter notebook calls besides the library: glue that remembers, and a closing summary.

`glue` is myst-nb's glue (the book substitutes the value into the prose) that also keeps the text, so
`summary()` can end the notebook with a visible table of every value the prose quotes: a papermill run
opened in any notebook viewer shows its results without the book. Prose whose truth depends on a result
is built by the library's `*_words` functions from the numbers and glued whole (`glue_all`), so no build
prints a false sentence. `text_problems` is what such prose must never show (checked over the book and over
a grid of parameters).
"""

from __future__ import annotations

import re

_GLUED: dict[str, str] = {}


def glue(name: str, value: object, display: bool = False) -> None:
    """myst_nb.glue, remembering the value for `summary`."""
    from myst_nb import glue as myst_glue

    _GLUED[name] = str(value)
    myst_glue(name, value, display=display)


def glue_all(values: dict[str, object]) -> None:
    """Glue each value under its name (not displayed): the sentences a library function computed."""
    for name, value in values.items():
        glue(name, value, display=False)


def glue_exercises(stem: str) -> None:
    """Glue what a chapter's exercises show: each answer (`ex_1_1`, for its hidden solution), each time
    (`ex_1_1_min`) and the chapter's total (`ex_minutes`), all computed by `gqa.exercises`."""
    from gqa import exercises

    mine = exercises.for_chapter(stem)
    for exercise in mine:
        key = "ex_" + exercise.id.replace(".", "_")
        glue(key, exercises.format_answer(exercise), display=False)
        glue(key + "_min", f"{exercise.minutes:g}", display=False)
    glue("ex_minutes", f"{sum(e.minutes for e in mine):g}", display=False)


def glued() -> dict[str, str]:
    """Every value glued so far in this kernel, as text, in the order glued."""
    return dict(_GLUED)


def summary(names: list[str] | None = None):
    """A table of the glued values (all, or `names` in that order): the notebook's visible summary."""
    import pandas as pd

    values = glued()
    names = list(values) if names is None else [n for n in names if n in values]
    return pd.DataFrame({"value": [values[n] for n in names]}, index=pd.Index(names, name="glued name"))


def with_used_values(source: str, params: dict) -> str:
    """A `parameters` cell's source with each assignment that `params` overrides showing the value used
    (annotation and comment kept): what a reader of an executed notebook should see."""
    lines = source.splitlines()
    for i, line in enumerate(lines):
        head, sep, comment = line.partition("  #")
        name = head.split("=")[0].split(":")[0].strip()
        if "=" in head and name in params:
            lines[i] = f"{head.split('=')[0].rstrip()} = {params[name]!r}" + (f"{sep}{comment}" if sep else "")
    return "\n".join(lines)


def glued_outputs(nb: dict) -> dict[str, str]:
    """The text/plain of every value an executed notebook (as JSON) glued with myst_nb.glue, by name."""
    values = {}
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get("scrapbook")
            text = out.get("data", {}).get(meta.get("mime_prefix", "") + "text/plain") if meta else None
            if text is not None:
                values[meta["name"]] = "".join(text) if isinstance(text, list) else text
    return values


def glued_values(notebook) -> dict[str, str]:
    """`glued_outputs` of an executed notebook file."""
    import json
    from pathlib import Path

    return glued_outputs(json.loads(Path(notebook).read_text()))


# --- What generated prose must never show ----------------------------------------------------------------

_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?:e-?\d+)?(?!\w|\.\d)")
_NONSENSE = (
    (re.compile(r"(?<![\w.])0(?:\.0+)? ?[×x](?!\w)"), "zero times"),
    (re.compile(r"\b(?:nan|NaN|inf|-inf|Infinity)\b"), "not a number"),
    (re.compile(r"(?<![\w.])-\d[\d,.]* (?:parameters|runs|models|readings|cells|tokens|sizes|configurations)\b"),
     "a negative count"),
    (re.compile(r"(?<![\w.])0?\.\d+ (?:non-embedding )?parameters\b|\babout 0 (?:non-embedding )?parameters\b"),
     "fewer than one parameter"),
    (re.compile(r"`|\*\*|\]\(|\{glue|\{doc\}|\{ref\}|\{numref\}|^#+ |<[a-z]+[ >]"), "raw Markdown or HTML"),
)


def significant_digits(number: str) -> int:
    """Significant digits a number as written shows: '0.6590' -> 4, '39.48' -> 4, '122,528' -> 0 (a whole
    number is a count, exact), '1.2e-05' -> 2."""
    text = number.replace(",", "").lstrip("-")
    if "." not in text:
        return 0
    mantissa = text.split("e")[0]
    digits = mantissa.replace(".", "").lstrip("0")
    return len(digits)


def text_problems(text: str, max_digits: int = 3) -> list[str]:
    """What a reader must never meet in generated prose (one line each): numbers with more than
    `max_digits` significant digits, '0.0×', nan or inf, negative counts, fewer than one parameter, and
    raw Markdown or HTML (backticks, bold markers, roles, links)."""
    problems = [f"{what}: {m.group(0)!r}" for pattern, what in _NONSENSE for m in pattern.finditer(text)]
    problems += [f"more than {max_digits} significant digits: {m.group(0)!r}" for m in _NUMBER.finditer(text)
                 if significant_digits(m.group(0)) > max_digits]
    return problems
