"""`gqa render`: executed notebooks (papermill runs) as a small site rendered exactly as the book renders.

A papermill run of a chapter (`papermill notebooks/06_paper_check.ipynb out.ipynb -p context 524288`)
holds its results as glued values and its prose as MyST: `{glue:text}` placeholders, `{doc}` and `{ref}`
roles, labelled and numbered equations, figures with captions, solutions in dropdowns. Only myst-nb
renders all of that, so `render_site` builds the runs with the book's own Sphinx configuration (theme,
stylesheet, MathJax offline), execution off, into one folder: `index.html` opens the first run, and the
Notation page comes along so the chapters' symbols link somewhere. A reference to a chapter that was not
rendered becomes plain text (Sphinx's warning is counted, not fatal); a value the prose cites that the
run never glued is reported by name.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from gqa_book.notebook import glued_outputs

# {glue:text}`name`, {glue:}`name`, {glue}`name`, and {glue:text}`name:.2f` (a format for a number)
GLUE_ROLE = re.compile(r"\{glue(?::text|:)?\}`([^`:]+)(?::([^`]*))?`")


@dataclass
class Rendered:
    path: Path  # the site's index.html
    pages: list[Path]  # one page per run, in the order given
    substituted: int  # glue roles in the prose whose value the runs glued
    missing: list[str] = field(default_factory=list)  # glue names the prose cites but the run never glued
    figures: int = 0
    outside_references: int = 0  # references to pages this render does not hold, shown as plain text


def _executed(notebook: Path) -> dict:
    try:
        nb = json.loads(notebook.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{notebook}: not a readable notebook ({e})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError(f"{notebook}: not a notebook (no list of cells)")
    if not any(c.get("outputs") for c in nb["cells"] if c.get("cell_type") == "code"):
        raise ValueError(f"{notebook}: has no outputs; render an executed notebook (papermill IN OUT, then "
                         "gqa render OUT)")
    return nb


SCRIPT = re.compile(r"<script\b.*?(?:</script\s*>|$)", re.IGNORECASE | re.DOTALL)
HANDLER = re.compile(r"""\son[a-z]+\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)
SCRIPT_MIMES = ("application/javascript", "text/javascript", "application/x-javascript")


def without_scripts(nb: dict) -> int:
    """Remove what would run in a reader's browser from a run's notebook, in place: <script> elements and
    on...= handlers in its HTML outputs and markdown, and JavaScript outputs. A rendered run is someone's
    notebook, and its page may be opened by others. Returns how many were removed."""
    removed = 0

    def clean(text: str) -> str:
        nonlocal removed
        text, n = SCRIPT.subn("", text)
        text, m = HANDLER.subn("", text)
        removed += n + m
        return text

    for cell in nb["cells"]:
        if cell.get("cell_type") == "markdown":
            source = cell.get("source", "")
            cell["source"] = clean("".join(source) if isinstance(source, list) else source)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            for mime in [m for m in data if m in SCRIPT_MIMES or m.endswith("+javascript")]:
                del data[mime]
                removed += 1
            if "text/html" in data:
                html = data["text/html"]
                data["text/html"] = clean("".join(html) if isinstance(html, list) else html)
    return removed


def _cited(nb: dict) -> list[str]:
    return [m.group(1) for c in nb["cells"] if c.get("cell_type") == "markdown"
            for m in GLUE_ROLE.finditer("".join(c.get("source", "")))]


def render_site(notebooks: list[Path], out: Path | None = None) -> Rendered:
    """Build executed notebooks into the folder `out` (default: the first one's name + '_html'), written
    whole or not at all. ValueError for a file that is not an executed notebook, two runs with one name,
    or a build that fails."""
    import yaml

    from gqa.paths import BOOK_DIR
    from gqa_book import book, launch

    notebooks = [Path(n) for n in notebooks]
    if not notebooks:
        raise ValueError("no notebook to render")
    stems = [n.stem for n in notebooks]
    if len(set(stems)) != len(stems):
        raise ValueError(f"two runs share a name ({', '.join(sorted({s for s in stems if stems.count(s) > 1}))}): "
                         "rename one")
    runs = [_executed(n) for n in notebooks]
    out = Path(out) if out else notebooks[0].with_name(notebooks[0].stem + "_html")
    if out.exists() and not (out / "index.html").exists():
        raise ValueError(f"{out} exists and is not a site gqa render wrote; choose another --out")
    work = out.with_name(f".{out.name}.build")
    shutil.rmtree(work, ignore_errors=True)
    src = work / "src"
    (src / "notebooks").mkdir(parents=True)
    for path, nb in zip(notebooks, runs):
        staged = src / "notebooks" / f"{path.stem}.ipynb"
        without_scripts(nb)  # nothing of the run's own runs in the reader's browser
        book.responsive_figures(nb)  # stacked panels on a phone, as in the book (our own markup, no script)
        staged.write_text(json.dumps(nb), encoding="utf-8")
        used = nb.get("metadata", {}).get("papermill", {}).get("parameters") or {}
        book.show_used_parameters(staged, used)  # the parameters cell shows what the run used, as in the book
    shutil.copy(BOOK_DIR / "notation.md", src / "notation.md")
    shutil.copytree(BOOK_DIR / "_css", src / "_css")
    config = launch.staged_config(yaml.safe_load((BOOK_DIR / "_config.yml").read_text()), "")
    config["title"] = f"{config['title']}: {', '.join(stems)}"
    (src / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    toc = {"format": "jb-book", "root": f"notebooks/{stems[0]}",
           "chapters": [{"file": f"notebooks/{s}"} for s in stems[1:]] + [{"file": "notation"}]}
    (src / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    book.stage_static(src)
    proc = book.sphinx_build(src, work, strict=False)
    html = work / "_build" / "html"
    if proc.returncode != 0 or not (html / "index.html").exists():
        shutil.rmtree(work, ignore_errors=True)
        last = (proc.stderr or proc.stdout).strip().splitlines()
        reason = last[-1] if last else f"jupyter-book exited with {proc.returncode}"
        raise ValueError(f"rendering failed: {reason}")
    book.fix_root_redirect(html, config["title"])
    if out.exists():
        shutil.rmtree(out)
    html.rename(out)
    shutil.rmtree(work, ignore_errors=True)
    outside = len(re.findall(r"/notebooks/[^/:]+\.ipynb:\d+: WARNING: (?:unknown document|undefined label)",
                             proc.stderr))  # in the runs; the Notation page's own are not theirs
    cited = [(name, glued) for nb in runs for glued in (glued_outputs(nb),) for name in _cited(nb)]
    missing = sorted({name for name, glued in cited if name not in glued})
    substituted = sum(1 for name, glued in cited if name in glued)
    figures = sum(1 for nb in runs for c in nb["cells"] for o in c.get("outputs", [])
                  if "image/png" in o.get("data", {}))
    return Rendered(out / "index.html", [out / "notebooks" / f"{s}.html" for s in stems], substituted, missing,
                    figures, outside)
