"""A Sphinx extension for an offline book: drop Thebe's scripts.

Jupyter Book 1 always loads sphinx-thebe, which adds an inline script declaring `THEBE_JS_URL` (a CDN
address) and a loader. We do not use Thebe (launch buttons are off), the CDN is not reachable offline,
and under our build the inline script is added twice, a SyntaxError in every reader's console. This
extension removes both scripts from each page.
"""

from __future__ import annotations


def _is_thebe(script) -> bool:
    name = getattr(script, "filename", None) or str(script)
    body = (getattr(script, "attributes", None) or {}).get("body", "")
    return "thebe" in str(name).lower() or "THEBE_JS_URL" in body


def _drop_thebe(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if scripts:
        context["script_files"] = [s for s in scripts if not _is_thebe(s)]


def setup(app):
    app.connect("html-page-context", _drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
