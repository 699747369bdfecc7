"""What a chapter notebook calls besides the library: glue that remembers, a closing summary, and
sentences chosen by the numbers they state.

`glue` is myst-nb's glue (the book substitutes the value into the prose) that also keeps the text, so
`summary()` can end the notebook with a visible table of every value the prose quotes: a papermill run
opened in any notebook viewer shows its results without the book. Prose whose truth depends on a result
is built here from the numbers (`signed`, `count_phrase`, `choose`) and glued whole, so no build prints a
false sentence.
"""

from __future__ import annotations

_GLUED: dict[str, str] = {}


def glue(name: str, value: object, display: bool = False) -> None:
    """myst_nb.glue, remembering the value for `summary`."""
    from myst_nb import glue as myst_glue

    _GLUED[name] = str(value)
    myst_glue(name, value, display=display)


def glued() -> dict[str, str]:
    """Every value glued so far in this kernel, as text, in the order glued."""
    return dict(_GLUED)


def summary(names: list[str] | None = None):
    """A table of the glued values (all, or `names` in that order): the notebook's visible summary."""
    import pandas as pd

    values = glued()
    names = list(values) if names is None else [n for n in names if n in values]
    return pd.DataFrame({"value": [values[n] for n in names]}, index=pd.Index(names, name="glued name"))


def choose(condition: bool, if_true: str, if_false: str) -> str:
    """One of two sentences, by a condition computed from the results."""
    return if_true if condition else if_false


def signed(value: float, *, lower: str, higher: str, same: str, fmt: str = "{:.3f}") -> str:
    """Words for a signed difference: `lower`/`higher` are templates with {} for the magnitude."""
    if value > 0:
        return lower.format(fmt.format(value))
    if value < 0:
        return higher.format(fmt.format(-value))
    return same


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
