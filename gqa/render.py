"""`gqa render`: an executed notebook as one standalone HTML page that any browser opens.

A papermill run of a chapter (`papermill notebooks/06_paper_check.ipynb out.ipynb -p context 524288`)
holds its results as glued values and its prose as `{glue:text}` placeholders that only the book's Sphinx
build fills in. This module fills them in from the notebook's own glued values, renders the Markdown
(tables, math left as TeX), embeds the figures as data URIs, and keeps code out of the way (collapsed),
so the page reads like the book's chapter, without the book.
"""

from __future__ import annotations

import ast
import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from gqa.notebook import glued_outputs, with_used_values

# {glue:text}`name`, {glue:}`name`, {glue}`name`, and {glue:text}`name:.2f` (a format for a number)
GLUE_ROLE = re.compile(r"\{glue(?::text|:)?\}`([^`:]+)(?::([^`]*))?`")

STYLE = """
body { max-width: 52rem; margin: 2rem auto; padding: 0 1rem; font: 16px/1.55 system-ui, sans-serif; color: #222; }
img { max-width: 100%; height: auto; }
pre { background: #f6f8fa; padding: .6rem .8rem; overflow-x: auto; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: .6rem 0; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: right; }
th { background: #f3f3f3; }
details { margin: .4rem 0; color: #555; }
.math { font-family: ui-monospace, monospace; color: #333; }
.error { background: #fdecea; }
.missing { background: #fff3cd; }
footer { margin-top: 2rem; font-size: 13px; color: #666; }
"""


@dataclass
class Rendered:
    path: Path
    substituted: int
    missing: list[str] = field(default_factory=list)  # glue names the prose cites but the run never glued
    figures: int = 0


def glued_text(nb: dict) -> dict[str, object]:
    """Every value glued in an executed notebook, as the value (str, number) the book would show."""
    values = {}
    for name, text in glued_outputs(nb).items():
        try:
            values[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            values[name] = re.sub(r"^np\.\w+\((.*)\)$", r"\1", text)  # numpy's repr: np.float64(0.5)
    return values


def _text(value: object, fmt: str | None) -> str:
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        value = value.item()
    if fmt and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return value
    if fmt and isinstance(value, (int, float)):
        return format(value, fmt)
    return str(value)


def substitute(markdown: str, values: dict, tokens: dict | None = None) -> tuple[str, int, list[str]]:
    """Replace glue roles by their values: (text, how many replaced, names with no value). With `tokens`,
    each value goes in as a placeholder (recorded in `tokens`) for the caller to fill after rendering, so
    a value's `|`, `*` or `<` never turns into Markdown or HTML."""
    missing, count = [], 0

    def one(match: re.Match) -> str:
        nonlocal count
        name, fmt = match.group(1), match.group(2)
        if name not in values:
            missing.append(name)
            return f'<span class="missing">[{html.escape(name)}: not computed]</span>'
        count += 1
        text = _text(values[name], fmt)
        if tokens is None:
            return text
        token = f"GQAGLUEVALUE{len(tokens):05d}X"
        tokens[token] = text
        return token

    return GLUE_ROLE.sub(one, markdown), count, missing


def _markdown():
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    md.use(dollarmath_plugin, allow_space=True, double_inline=True)
    md.add_render_rule("math_inline", lambda self, tokens, idx, options, env:
                       f'<span class="math">{html.escape(tokens[idx].content)}</span>')
    md.add_render_rule("math_block", lambda self, tokens, idx, options, env:
                       f'<pre class="math">{html.escape(tokens[idx].content.strip())}</pre>\n')
    return md


def _output_html(out: dict, md) -> tuple[str, int]:
    """(HTML, figures) for one cell output; glue records are not shown (their values are in the prose)."""
    if out.get("metadata", {}).get("scrapbook"):
        return "", 0
    kind = out.get("output_type")
    if kind == "stream":
        return f"<pre>{html.escape(''.join(out.get('text', '')))}</pre>", 0
    if kind == "error":
        return f'<pre class="error">{html.escape(out.get("ename", ""))}: {html.escape(out.get("evalue", ""))}</pre>', 0
    data = out.get("data", {})
    join = lambda v: "".join(v) if isinstance(v, list) else v  # noqa: E731
    if "image/png" in data:
        return f'<p><img alt="figure" src="data:image/png;base64,{join(data["image/png"]).strip()}"></p>', 1
    if "image/svg+xml" in data:
        return join(data["image/svg+xml"]), 1
    if "text/html" in data:
        return join(data["text/html"]), 0
    if "text/markdown" in data:
        return md.render(join(data["text/markdown"])), 0
    if "text/plain" in data:
        return f"<pre>{html.escape(join(data['text/plain']))}</pre>", 0
    return "", 0


def render_html(notebook: Path, out: Path | None = None) -> Rendered:
    """Write `notebook` (executed) as a standalone HTML page; returns what was substituted and missed."""
    notebook = Path(notebook)
    try:
        nb = json.loads(notebook.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{notebook}: not a readable notebook ({e})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError(f"{notebook}: not a notebook (no list of cells)")
    if not any(c.get("outputs") for c in nb["cells"] if c.get("cell_type") == "code"):
        raise ValueError(f"{notebook}: has no outputs; render an executed notebook (papermill IN OUT, then "
                         "gqa render OUT)")
    out = Path(out) if out else notebook.with_suffix(".html")
    values, md = glued_text(nb), _markdown()
    used = nb.get("metadata", {}).get("papermill", {}).get("parameters") or {}
    tokens: dict[str, str] = {}  # placeholders put in before Markdown, values after: values are never Markdown
    parts, substituted, missing, figures, title = [], 0, [], 0, notebook.stem
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        source = "".join(cell.get("source", ""))
        if "remove-cell" in tags:
            continue
        if "injected-parameters" in tags:
            continue  # its values are shown in the parameters cell below
        if cell.get("cell_type") == "markdown":
            text, n, gone = substitute(source, values, tokens)
            substituted, missing = substituted + n, missing + gone
            heading = re.search(r"^#\s+(.+)$", text, re.M)
            if heading and title == notebook.stem:
                title = heading.group(1).strip()
            html_text = md.render(text)
            for token, value in tokens.items():
                html_text = html_text.replace(token, html.escape(value))
            parts.append(html_text)
            continue
        if cell.get("cell_type") != "code":
            continue
        if "parameters" in tags:
            shown = with_used_values(source, used)
            parts.append(f"<details open><summary>parameters of this run</summary><pre>{html.escape(shown)}</pre>"
                         "</details>")
        elif "remove-input" not in tags and source.strip():
            parts.append(f"<details><summary>code</summary><pre>{html.escape(source)}</pre></details>")
        if "remove-output" in tags:
            continue
        for output in cell.get("outputs", []):
            shown, n = _output_html(output, md)
            parts.append(shown)
            figures += n
    papermill = nb.get("metadata", {}).get("papermill", {})
    footer = f"Rendered by <code>gqa render</code> from <code>{html.escape(notebook.name)}</code>"
    if papermill.get("parameters"):
        footer += f"; papermill parameters: <code>{html.escape(json.dumps(papermill['parameters']))}</code>"
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join(p for p in parts if p) + f"\n<footer>{footer}.</footer>\n</body></html>\n")
    tmp = out.with_name(out.name + ".partial")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return Rendered(out, substituted, sorted(set(missing)), figures)
